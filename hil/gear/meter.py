"""A Modbus RTU power meter and relay board on one RS-485 bus, over the PDU's physics.

Unit 1 is an Eastron SDM120-style meter on the feed: voltage, current, active power,
frequency and total energy as float input registers. Unit 2 is an 8-relay board whose coils
switch the PDU model's channels, powering the loads behind them. The meter measures the
whole feed only: what each load draws is not reported, and the daemon models it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hil.gear.base import GearDevice
from hil.models.pdu import PduModel
from protocols import modbus_rtu as mb
from protocols.messages.common import DeviceClass

BAUD = 9600  # 8N1; SDM120 supports 2400-9600
ANSWER_S = 0.005  # the meter's processing time before it answers
METER_UNIT = 1
RELAY_UNIT = 2


class ModbusMeterPdu(GearDevice):
    device_class = DeviceClass.PDU
    protocol = "modbus-rtu"
    model: PduModel

    def __init__(
        self,
        name: str,
        model: PduModel,
        path: Path,
        *,
        meter_unit: int = METER_UNIT,
        relay_unit: int = RELAY_UNIT,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("baud", BAUD)
        super().__init__(name, model, path, **kwargs)
        self.meter_unit = meter_unit
        self.relay_unit = relay_unit
        self.deframer = mb.Deframer(request=True)
        self.energy_kwh = 0.0
        self._energy_t = model.clock.now()

    def on_reboot(self) -> None:
        self.deframer.reset()

    def handle(self, data: bytes) -> list[bytes]:
        replies = []
        for item in self.deframer.feed(data):
            if isinstance(item, mb.Rejected):
                continue  # a slave stays silent on a bad CRC; the master times out
            self.requests_handled += 1
            reply = self._adu(item)
            if reply is not None and item.unit != 0:
                replies.append(reply)
        return replies

    def answer(self, reply: bytes, extra_s: float = 0.0) -> None:
        super().answer(reply, extra_s + ANSWER_S)

    def total_power_w(self) -> float:
        """What the meter on the feed reads: every channel's measured draw and the board's own."""
        return sum(r.power_w for r in self.model.read()) + self.model.draw_w()

    def registers(self) -> dict[int, int]:
        self._integrate()
        volts = self.model.bus_voltage_v()
        power = self.total_power_w()
        values = {
            "voltage": volts,
            "current": power / volts if volts else 0.0,
            "active_power": power,
            "frequency": 0.0,  # a DC bus
            "total_active_energy": self.energy_kwh,
        }
        out = {}
        for reg in mb.SDM120:
            out[reg.address], out[reg.address + 1] = mb.float_registers(values[reg.name])
        return out

    def _integrate(self) -> None:
        now = self.model.clock.now()
        power = sum(self.model.true_power_w(i) for i in range(len(self.model.channels)))
        self.energy_kwh += power * (now - self._energy_t) / 3.6e6
        self._energy_t = now

    def _adu(self, adu: mb.Adu) -> bytes | None:
        if adu.unit == self.meter_unit:
            return self._meter(adu)
        if adu.unit in (self.relay_unit, 0):
            return self._relays(adu)
        return None  # nobody else on the bus

    def _error(self, adu: mb.Adu, code: mb.ExceptionCode) -> bytes:
        self.errors_answered += 1
        return mb.encode(adu.unit, adu.function | 0x80, bytes([code]))

    def _meter(self, adu: mb.Adu) -> bytes:
        if adu.function != mb.Function.READ_INPUT_REGISTERS:
            return self._error(adu, mb.ExceptionCode.ILLEGAL_FUNCTION)
        if len(adu.pdu) != 4:
            return self._error(adu, mb.ExceptionCode.ILLEGAL_DATA_VALUE)
        start, count = int.from_bytes(adu.pdu[:2], "big"), int.from_bytes(adu.pdu[2:], "big")
        if not 1 <= count <= 80:
            return self._error(adu, mb.ExceptionCode.ILLEGAL_DATA_VALUE)
        image = self.registers()
        if any(a not in image for a in range(start, start + count)):
            return self._error(adu, mb.ExceptionCode.ILLEGAL_DATA_ADDRESS)
        words = b"".join(image[a].to_bytes(2, "big") for a in range(start, start + count))
        return mb.encode(adu.unit, adu.function, bytes([len(words)]) + words)

    def _relays(self, adu: mb.Adu) -> bytes:
        channels = self.model.channels
        fn = adu.function
        if fn == mb.Function.READ_COILS and len(adu.pdu) == 4:
            start, count = int.from_bytes(adu.pdu[:2], "big"), int.from_bytes(adu.pdu[2:], "big")
            if count < 1 or start + count > len(channels):
                return self._error(adu, mb.ExceptionCode.ILLEGAL_DATA_ADDRESS)
            bits = sum(1 << i for i in range(count) if channels[start + i].on)
            raw = bits.to_bytes((count + 7) // 8, "little")
            return mb.encode(adu.unit, fn, bytes([len(raw)]) + raw)
        if fn == mb.Function.WRITE_SINGLE_COIL and len(adu.pdu) == 4:
            coil, value = int.from_bytes(adu.pdu[:2], "big"), int.from_bytes(adu.pdu[2:], "big")
            if coil >= len(channels):
                return self._error(adu, mb.ExceptionCode.ILLEGAL_DATA_ADDRESS)
            if value not in (mb.COIL_ON, mb.COIL_OFF):
                return self._error(adu, mb.ExceptionCode.ILLEGAL_DATA_VALUE)
            self._integrate()
            self.model.set_channel(coil, value == mb.COIL_ON)
            return mb.encode(adu.unit, fn, adu.pdu)
        if fn == mb.Function.WRITE_MULTIPLE_COILS and len(adu.pdu) >= 5:
            start, count = int.from_bytes(adu.pdu[:2], "big"), int.from_bytes(adu.pdu[2:4], "big")
            raw = adu.pdu[5:]
            if start + count > len(channels) or len(raw) != (count + 7) // 8:
                return self._error(adu, mb.ExceptionCode.ILLEGAL_DATA_ADDRESS)
            self._integrate()
            bits = int.from_bytes(raw, "little")
            for i in range(count):
                self.model.set_channel(start + i, bool(bits >> i & 1))
            return mb.encode(adu.unit, fn, adu.pdu[:4])
        return self._error(adu, mb.ExceptionCode.ILLEGAL_FUNCTION)

    def describe(self) -> dict[str, object]:
        return super().describe() | {"total_power_w": round(self.total_power_w(), 2)}
