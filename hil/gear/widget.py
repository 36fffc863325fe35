"""An Enttec DMX USB Pro widget with DMX/RDM fixtures on its line.

Host side: widget messages over USB serial (no baud: a USB link), answered as the widget's
API and OLA's driver expect: parameters, serial number, DMX sent on to the fixtures, RDM
requests answered through RECEIVED_DMX, an RDM_TIMEOUT message after every discovery and
after any request nobody answered. Line side: a DMX512 transaction takes its real time at
250 kbit/s, 11 bits a slot, with break and mark-after-break, so RDM answers come back when
they would.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from hil.gear.base import GearDevice
from hil.gear.fixture import DmxFixture
from hil.models.base import ModelEvent
from protocols import enttec, rdm
from protocols.errors import ProtocolError
from protocols.messages.common import DeviceClass

DMX_SLOT_S = 11 / 250_000  # 44 us
BREAK_MAB_S = 176e-6 + 12e-6
TURNAROUND_S = 200e-6  # a responder starts answering within 176 us..2 ms (E1.20 timing)
ESTA_ENTTEC = 0x454E
FIRMWARE = (2, 4)  # OLA enables RDM from 2.4
DEFAULT_SERIAL = 12345678


class WidgetModel:
    """The widget itself draws from USB, not from the film's power; its fixtures are apart."""

    def __init__(self, fixtures: list[DmxFixture]) -> None:
        self.fixtures = fixtures
        self.powered = True
        self.events: list[ModelEvent] = []

    def advance(self) -> None:
        for fixture in self.fixtures:
            fixture.model.advance()
            fixture.model.events.clear()

    def draw_w(self) -> float:
        return 0.0

    def reset(self) -> None:
        """A widget reset loses nothing the fixtures hold."""

    def set_powered(self, powered: bool) -> None:
        self.powered = powered

    def describe(self) -> dict[str, object]:
        return {
            f.name: {
                "address": f.address,
                "uid": rdm.format_uid(f.uid) if f.uid is not None else None,
                "levels": f.levels.hex(),
                "output_permille": round(f.model.output_permille(), 1),
                "draw_w": round(f.draw_w(), 3),
                "temperature_c": round(f.model.temperature_c, 2),
                "powered": f.powered,
                "muted": f.muted,
            }
            for f in self.fixtures
        }


class EnttecWidget(GearDevice):
    device_class = DeviceClass.LIGHT
    protocol = "enttec-dmx"
    model: WidgetModel

    def __init__(
        self,
        name: str,
        fixtures: list[DmxFixture],
        path: Path,
        *,
        serial: int = DEFAULT_SERIAL,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("baud", None)
        super().__init__(name, WidgetModel(fixtures), path, **kwargs)
        self.fixtures = fixtures
        self.serial = serial
        self.deframer = enttec.Deframer()
        self.universe = bytes(enttec.DMX_SLOTS)
        self.dmx_frames = 0
        self.dmx_seen = asyncio.Event()  # set at every DMX frame, for whoever waits on one
        self.rdm_requests = 0
        self.params = enttec.widget_params(enttec.WidgetParams(FIRMWARE, 9, 1, 40))

    def on_reboot(self) -> None:
        self.deframer.reset()

    def handle(self, data: bytes) -> list[bytes]:
        replies: list[bytes] = []
        for item in self.deframer.feed(data):
            if isinstance(item, enttec.Rejected):
                continue  # the widget drops what it cannot frame; it has no NAK
            self.requests_handled += 1
            replies += self._message(item)
        return replies

    def _message(self, message: enttec.Message) -> list[bytes]:
        label, data = message.label, message.data
        if label == enttec.Label.GET_WIDGET_PARAMS:
            size = int.from_bytes(data[:2], "little") if len(data) >= 2 else 0
            return [enttec.encode(label, self.params + bytes(min(size, 508)))]
        if label == enttec.Label.SET_WIDGET_PARAMS:
            if len(data) >= 5:
                self.params = self.params[:2] + data[2:5]
            return []
        if label == enttec.Label.GET_SERIAL:
            return [enttec.encode(label, enttec.serial_number(self.serial))]
        if label == enttec.Label.MANUFACTURER:
            return [enttec.encode(label, ESTA_ENTTEC.to_bytes(2, "little") + b"ENTTEC")]
        if label == enttec.Label.DEVICE:
            return [enttec.encode(label, (1).to_bytes(2, "little") + b"DMX USB PRO")]
        if label == enttec.Label.SEND_DMX:
            if data and data[0] == 0:
                self.send_dmx(data[1:])
            return []
        if label == enttec.Label.SEND_RDM:
            self._rdm(data, discovery=False)
            return []
        if label == enttec.Label.SEND_RDM_DISCOVERY:
            self._rdm(data, discovery=True)
            return []
        return []

    def send_dmx(self, slots: bytes) -> None:
        self.universe = slots[: enttec.DMX_SLOTS].ljust(enttec.DMX_SLOTS, b"\x00")
        self.dmx_frames += 1
        for fixture in self.fixtures:
            fixture.dmx(self.universe)
        self.dmx_seen.set()

    def _rdm(self, data: bytes, *, discovery: bool) -> None:
        self.rdm_requests += 1
        line_s = BREAK_MAB_S + len(data) * DMX_SLOT_S + TURNAROUND_S
        timeout = enttec.encode(enttec.Label.RDM_TIMEOUT)
        try:
            request = rdm.decode(data) if data[:1] == bytes([rdm.START_CODE]) else None
        except ProtocolError:
            request = None
        if request is None:
            self.answer(timeout, line_s)
            return
        if discovery and request.pid == rdm.Pid.DISC_UNIQUE_BRANCH:
            lower, upper = rdm.branch_bounds(request.data)
            answers = [
                rdm.dub_response(f.uid or 0) for f in self.fixtures if f.in_branch(lower, upper)
            ]
            if answers:
                garbled = answers[0]
                if len(answers) > 1:  # several drivers on one line: what arrives is garbage
                    for other in answers[1:]:
                        garbled = bytes(a & b for a, b in zip(garbled, other, strict=True))
                    garbled = garbled[:-1] + bytes((garbled[-1] ^ 0xFF,))  # never a valid UID
                line_s += len(garbled) * DMX_SLOT_S
                self.answer(enttec.encode(enttec.Label.RECEIVED_DMX, b"\x00" + garbled), line_s)
            self.answer(timeout, line_s)
            return
        responses = [r for f in self.fixtures if (r := f.respond(request)) is not None]
        if len(responses) == 1:
            wire = rdm.encode(responses[0])
            line_s += BREAK_MAB_S + len(wire) * DMX_SLOT_S
            self.answer(enttec.encode(enttec.Label.RECEIVED_DMX, b"\x00" + wire), line_s)
        else:
            self.answer(timeout, line_s)

    def describe(self) -> dict[str, object]:
        return super().describe() | {
            "dmx_frames": self.dmx_frames,
            "rdm_requests": self.rdm_requests,
        }
