"""PDU: measures what its loads really draw, switches them, trips on over-current."""

from __future__ import annotations

import random
import statistics

from hil.models.base import ManualClock
from hil.models.pdu import PduModel, PduParams


class Load:
    def __init__(self, watts: float) -> None:
        self.watts = watts
        self.powered = True

    def draw_w(self) -> float:
        return self.watts if self.powered else 0.0

    def set_powered(self, powered: bool) -> None:
        self.powered = powered


def test_channel_readings_are_the_loads_plus_noise() -> None:
    pdu = PduModel(PduParams(), ManualClock(), random.Random(4))
    pdu.wire(0, Load(23.5))
    pdu.wire(0, Load(10.0))
    pdu.wire(1, Load(80.0))
    readings = [pdu.read() for _ in range(2000)]
    mean0 = statistics.fmean(r[0].power_w for r in readings)
    mean1 = statistics.fmean(r[1].power_w for r in readings)
    assert abs(mean0 - 33.5) < 0.05 and abs(mean1 - 80.0) < 0.05
    assert statistics.stdev(r[1].power_w for r in readings) > 0.1  # it is a measurement
    first = readings[0][1]
    assert abs(first.voltage_v * first.current_a - first.power_w) < 1e-9
    assert first.voltage_v < PduParams().bus_voltage_v  # bus droop under load


def test_switching_a_channel_off_powers_its_loads_down() -> None:
    pdu = PduModel(PduParams(), ManualClock(), random.Random(1))
    load = Load(40.0)
    pdu.wire(3, load)
    pdu.set_channel(3, False)
    assert not load.powered and pdu.read()[3].power_w == 0.0
    pdu.set_channel(3, True)
    assert load.powered


def test_over_current_trips_the_channel_until_switched_on_again() -> None:
    pdu = PduModel(PduParams(trip_w=100.0), ManualClock(), random.Random(1))
    load = Load(150.0)
    pdu.wire(2, load)
    reading = pdu.read()[2]
    assert reading.tripped and not reading.on and not load.powered
    load.watts = 50.0
    pdu.set_channel(2, True)
    assert not pdu.read()[2].tripped and load.powered
