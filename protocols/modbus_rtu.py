"""Modbus RTU as the simulated meter and `cupola decode` see it; the daemon's client is pymodbus.

    unit id u8 | function u8 | PDU | CRC-16/MODBUS (u16 little-endian)

Frames on RS-485 are separated by 3.5 character times of silence; a deframer without timing
finds them by the length each function implies and the CRC. The register maps are public
ones, cited in SPEC.md ("Modbus RTU"): the Eastron SDM120 meter (input registers, IEEE-754
floats, high word first) and an 8-channel Modbus RTU relay board (coils 0-7, as Waveshare's
"Modbus RTU Relay" documents it).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import NamedTuple

from construct import Bytes, Checksum, ConstructError, Int8ub, Int16ul, RawCopy, Struct, this

from protocols.errors import FramingError

MAX_ADU = 256


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc_table()


def crc16(data: bytes | bytearray) -> int:
    """CRC-16/MODBUS: reflected 0x8005, initial 0xFFFF."""
    crc = 0xFFFF
    for byte in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ byte) & 0xFF]
    return crc


ADU = Struct(
    "body"
    / RawCopy(Struct("unit" / Int8ub, "function" / Int8ub, "pdu" / Bytes(this._params.pdu_size))),
    "crc" / Checksum(Int16ul, crc16, this.body.data),
)


class Function(enum.IntEnum):
    READ_COILS = 0x01
    READ_DISCRETE_INPUTS = 0x02
    READ_HOLDING_REGISTERS = 0x03
    READ_INPUT_REGISTERS = 0x04
    WRITE_SINGLE_COIL = 0x05
    WRITE_SINGLE_REGISTER = 0x06
    WRITE_MULTIPLE_COILS = 0x0F
    WRITE_MULTIPLE_REGISTERS = 0x10


class ExceptionCode(enum.IntEnum):
    ILLEGAL_FUNCTION = 0x01
    ILLEGAL_DATA_ADDRESS = 0x02
    ILLEGAL_DATA_VALUE = 0x03
    SERVER_DEVICE_FAILURE = 0x04


class Adu(NamedTuple):
    unit: int
    function: int
    pdu: bytes
    offset: int = 0

    def name(self) -> str:
        code = self.function & 0x7F
        try:
            text = Function(code).name
        except ValueError:
            text = f"FC{code:02X}"
        return f"{text} EXCEPTION" if self.function & 0x80 else text


def encode(unit: int, function: int, pdu: bytes) -> bytes:
    if len(pdu) > MAX_ADU - 4:
        raise FramingError(f"PDU of {len(pdu)} bytes exceeds {MAX_ADU - 4}")
    if not (0 <= unit <= 0xFF and 0 <= function <= 0xFF):
        raise FramingError(f"unit {unit} / function {function} does not fit in a byte")
    body = bytes((unit, function)) + pdu  # ADU's layout (tests check it against construct)
    return body + crc16(body).to_bytes(2, "little")


def parse(raw: bytes) -> Adu:
    """One whole ADU, CRC checked by its construct declaration."""
    if len(raw) < 4:
        raise FramingError(f"{len(raw)} bytes is shorter than any RTU frame")
    try:
        parsed = ADU.parse(raw, pdu_size=len(raw) - 4)
    except ConstructError as exc:
        raise FramingError(f"not an RTU frame: {exc}") from exc
    body = parsed.body.value
    return Adu(body.unit, body.function, bytes(body.pdu))


def frame_size(buffer: bytes | bytearray, *, request: bool) -> int | None:
    """Bytes the frame at the start of `buffer` takes, None if more are needed to know."""
    if len(buffer) < 2:
        return None
    function = buffer[1]
    if function & 0x80:
        return 5
    if request:
        if function in (1, 2, 3, 4, 5, 6):
            return 8
        if function in (0x0F, 0x10):
            return 9 + buffer[6] if len(buffer) >= 7 else None
        return 0  # unknown: cannot be framed
    if function in (1, 2, 3, 4):
        return 5 + buffer[2] if len(buffer) >= 3 else None
    if function in (5, 6, 0x0F, 0x10):
        return 8
    return 0


class Rejected(NamedTuple):
    reason: str  # "crc" or "function"
    offset: int
    raw: bytes


class Deframer:
    """Bytes -> ADUs for one direction (requests or responses); a bad CRC costs one byte."""

    __slots__ = ("_buffer", "_offset", "frames", "rejected", "request")

    def __init__(self, *, request: bool) -> None:
        self.request = request
        self._buffer = bytearray()
        self._offset = 0
        self.frames = 0
        self.rejected = 0

    def reset(self) -> None:
        self._offset += len(self._buffer)
        self._buffer.clear()

    def feed(self, data: bytes) -> list[Adu | Rejected]:
        out: list[Adu | Rejected] = []
        buffer = self._buffer
        buffer += data
        while buffer:
            size = frame_size(buffer, request=self.request)
            if size is None:
                break
            if size == 0 or size > MAX_ADU:
                self._drop(out, "function")
                continue
            if len(buffer) < size:
                break
            if crc16(buffer[: size - 2]) != buffer[size - 2] | buffer[size - 1] << 8:
                self._drop(out, "crc")
                continue
            out.append(Adu(buffer[0], buffer[1], bytes(buffer[2 : size - 2]), self._offset))
            self.frames += 1
            del buffer[:size]
            self._offset += size
        return out

    def _drop(self, out: list[Adu | Rejected], reason: str) -> None:
        out.append(Rejected(reason, self._offset, bytes(self._buffer[:1])))
        del self._buffer[:1]
        self._offset += 1
        self.rejected += 1


# -- register maps --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FloatRegister:
    """An IEEE-754 float in two input registers, high word first (Eastron's layout)."""

    address: int
    name: str
    unit: str


SDM120 = (
    FloatRegister(0x0000, "voltage", "V"),
    FloatRegister(0x0006, "current", "A"),
    FloatRegister(0x000C, "active_power", "W"),
    FloatRegister(0x0046, "frequency", "Hz"),
    FloatRegister(0x0156, "total_active_energy", "kWh"),
)
RELAY_COILS = 8  # coils 0..7; FC05 writes 0xFF00 (on) or 0x0000 (off)
COIL_ON = 0xFF00
COIL_OFF = 0x0000
REGISTER_MAPS = {"eastron-sdm120": SDM120}


def float_registers(value: float) -> tuple[int, int]:
    high, low = struct.unpack(">HH", struct.pack(">f", value))
    return high, low


def registers_float(high: int, low: int) -> float:
    value: float = struct.unpack(">f", struct.pack(">HH", high, low))[0]
    return value
