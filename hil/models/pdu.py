"""A power distribution unit: per-channel switches that really power the loads behind them.

Each channel measures the sum of what its loads draw at that instant, plus measurement
noise, and trips open above its current limit. Switching a channel off powers its loads
down (they stop answering the link and lose volatile state).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from hil.models.base import ModelEvent
from protocols.messages.common import EventCode, Severity


class PoweredLoad(Protocol):
    def draw_w(self) -> float: ...

    def set_powered(self, powered: bool) -> None: ...


class Clock(Protocol):
    def now(self) -> float: ...


@dataclass
class PduParams:
    model: str = "SimPDU 8"
    firmware: str = "1.1.0"
    channels: int = 8
    bus_voltage_v: float = 28.0  # Russian-segment style 28 V DC bus
    source_resistance_ohm: float = 0.02  # bus droop under load
    noise_w: float = 0.15  # standard deviation of the power reading
    noise_fraction: float = 0.005  # plus this fraction of the reading
    trip_w: float = 150.0  # per-channel over-current limit, as power at nominal voltage
    own_draw_w: float = 2.0  # the PDU's controller, fed upstream of its channels
    channels_start_on: bool = True  # False: a cold start, the daemon powers the loads up
    heartbeat_ms: int = 1000


@dataclass
class Reading:
    channel: int
    on: bool
    tripped: bool
    voltage_v: float
    current_a: float
    power_w: float


@dataclass
class _Channel:
    on: bool = True
    tripped: bool = False
    loads: list[PoweredLoad] = field(default_factory=list)


class PduModel:
    def __init__(self, params: PduParams, clock: Clock, rng: random.Random | None = None) -> None:
        self.params = params
        self.clock = clock
        self.rng = rng or random.Random()
        self.channels = [_Channel(on=params.channels_start_on) for _ in range(params.channels)]
        self.events: list[ModelEvent] = []
        self.powered = True
        self.on_switch: Callable[[int, bool], None] | None = None

    def advance(self) -> None:
        """Readings are taken on demand; nothing accumulates between polls."""

    def draw_w(self) -> float:
        return self.params.own_draw_w if self.powered else 0.0

    def reset(self) -> None:
        """Channel relays latch: a controller reset leaves every channel as it was."""

    def set_powered(self, powered: bool) -> None:
        self.powered = powered

    def wire(self, channel: int, load: PoweredLoad) -> None:
        self.channels[channel].loads.append(load)
        load.set_powered(self.channels[channel].on)

    def true_power_w(self, channel: int) -> float:
        ch = self.channels[channel]
        return sum(load.draw_w() for load in ch.loads) if ch.on else 0.0

    def bus_voltage_v(self) -> float:
        total = sum(self.true_power_w(i) for i in range(len(self.channels)))
        return self.params.bus_voltage_v - self.params.source_resistance_ohm * (
            total / self.params.bus_voltage_v
        )

    def read(self) -> list[Reading]:
        """One measurement of every channel, tripping channels over their limit."""
        volts = self.bus_voltage_v()
        readings = []
        for index, ch in enumerate(self.channels):
            power = self.true_power_w(index)
            if ch.on and power > self.params.trip_w:
                self.set_channel(index, False)
                ch.tripped = True
                self.events.append(
                    ModelEvent(
                        EventCode.CHANNEL_TRIPPED, Severity.CRITICAL, index,
                        f"channel {index} tripped at {power:.0f} W", self.clock.now(),
                    )
                )  # fmt: skip
                power = 0.0
            if ch.on:
                sigma = self.params.noise_w + self.params.noise_fraction * power
                power = max(0.0, power + self.rng.gauss(0.0, sigma))
            readings.append(
                Reading(index, ch.on, ch.tripped, volts if ch.on else 0.0, power / volts, power)
            )
        return readings

    def set_channel(self, channel: int, on: bool) -> None:
        ch = self.channels[channel]
        if on:
            ch.tripped = False
        if ch.on == on:
            return
        ch.on = on
        for load in ch.loads:
            load.set_powered(on)
        if self.on_switch is not None:
            self.on_switch(channel, on)
        self.events.append(
            ModelEvent(
                EventCode.CHANNEL_SWITCHED, Severity.INFO, channel,
                f"channel {channel} {'on' if on else 'off'}", self.clock.now(),
            )
        )  # fmt: skip

    def describe(self) -> dict[str, object]:
        return {
            "bus_voltage_v": round(self.bus_voltage_v(), 3),
            "channels": [
                {
                    "channel": i,
                    "on": ch.on,
                    "tripped": ch.tripped,
                    "power_w": round(self.true_power_w(i), 3),
                }
                for i, ch in enumerate(self.channels)
            ],
        }
