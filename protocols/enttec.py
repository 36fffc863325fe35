"""Enttec DMX USB Pro widget messages: the framing between a host and the USB serial widget.

    0x7E | label u8 | data length u16 little-endian (0-600) | data | 0xE7

(the end byte is 0xE7; one public Go README says 0x7E, which is wrong). Source: Enttec's
"DMX USB Pro Widget API Specification" v1.44, cross-checked with OLA's usbpro plugin
(BaseUsbProWidget, EnttecUsbProWidget); see SPEC.md, "Enttec DMX USB Pro".
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple

from construct import Bytes, Const, ConstructError, Int8ub, Int16ul, Struct, this

from protocols.errors import FramingError, MessageError

START = 0x7E
END = 0xE7
MAX_DATA = 600
DMX_SLOTS = 512

MESSAGE = Struct(
    "start" / Const(bytes([START])),
    "label" / Int8ub,
    "length" / Int16ul,
    "data" / Bytes(this.length),
    "end" / Const(bytes([END])),
)
HEADER_SIZE = 4


class Label(enum.IntEnum):
    GET_WIDGET_PARAMS = 3  # request: user config size u16; reply: firmware, timings, config
    SET_WIDGET_PARAMS = 4
    RECEIVED_DMX = 5  # widget -> host: status byte, then start code and slots (RDM replies too)
    SEND_DMX = 6  # output-only send: start code 0x00 then up to 512 slots
    SEND_RDM = 7  # start code 0xCC then the RDM packet; the reply comes back as RECEIVED_DMX
    RECEIVE_DMX_ON_CHANGE = 8
    CHANGE_OF_STATE = 9
    GET_SERIAL = 10  # reply: 4 bytes, BCD, little-endian
    SEND_RDM_DISCOVERY = 11  # a DISC_UNIQUE_BRANCH request; any answer as RECEIVED_DMX
    RDM_TIMEOUT = 12  # widget -> host: the RDM exchange is over (always after discovery)
    MANUFACTURER = 77  # reply: ESTA id u16 LE + name
    DEVICE = 78  # reply: device id u16 LE + name


WIDGET_PARAMS = Struct(
    "firmware_lsb" / Int8ub,
    "firmware_msb" / Int8ub,  # OLA enables RDM from firmware 2.4 (msb 4, lsb... see SPEC)
    "break_time" / Int8ub,  # units of 10.67 us
    "mab_time" / Int8ub,  # units of 10.67 us
    "rate" / Int8ub,  # packets per second, 0 = fastest
)


class Message(NamedTuple):
    label: int
    data: bytes
    offset: int = 0

    def name(self) -> str:
        try:
            return Label(self.label).name
        except ValueError:
            return f"LABEL_{self.label}"


def encode(label: int, data: bytes = b"") -> bytes:
    if len(data) > MAX_DATA:
        raise FramingError(f"{len(data)} bytes: a widget message carries at most {MAX_DATA}")
    if not 0 <= label <= 0xFF:
        raise FramingError(f"label {label} does not fit in a byte")
    # MESSAGE's layout (the tests check it against construct's own build)
    return bytes((START, label, len(data) & 0xFF, len(data) >> 8)) + data + bytes((END,))


def parse(raw: bytes) -> Message:
    """One whole message, checked by its construct declaration."""
    try:
        parsed = MESSAGE.parse(raw)
    except ConstructError as exc:
        raise FramingError(f"not a widget message: {exc}") from exc
    if len(raw) != parsed.length + HEADER_SIZE + 1:
        raise FramingError(f"{len(raw)} bytes for a message of {parsed.length + HEADER_SIZE + 1}")
    if parsed.length > MAX_DATA:
        raise FramingError(f"length {parsed.length} exceeds {MAX_DATA}")
    return Message(parsed.label, bytes(parsed.data))


def dmx(levels: bytes, start_code: int = 0) -> bytes:
    """SEND_DMX: start code and up to 512 slot levels."""
    if len(levels) > DMX_SLOTS:
        raise FramingError(f"{len(levels)} slots: DMX512 has at most {DMX_SLOTS}")
    return encode(Label.SEND_DMX, bytes([start_code]) + levels)


def serial_number(serial: int) -> bytes:
    """GET_SERIAL reply data: the serial as 8 BCD digits, least significant byte first."""
    digits = f"{serial:08d}"
    if len(digits) != 8:
        raise MessageError(f"serial {serial} has more than 8 digits")
    return bytes(int(digits[i : i + 2], 16) for i in (6, 4, 2, 0))


def decode_serial(data: bytes) -> int:
    if len(data) != 4:
        raise MessageError(f"a serial number is 4 bytes, got {len(data)}")
    return int("".join(f"{b:02x}" for b in reversed(data)))


@dataclass(frozen=True, slots=True)
class WidgetParams:
    firmware: tuple[int, int]  # (major = msb, minor = lsb)
    break_time: int
    mab_time: int
    rate: int


def widget_params(params: WidgetParams) -> bytes:
    built: bytes = WIDGET_PARAMS.build(
        {
            "firmware_lsb": params.firmware[1],
            "firmware_msb": params.firmware[0],
            "break_time": params.break_time,
            "mab_time": params.mab_time,
            "rate": params.rate,
        }
    )
    return built


def decode_widget_params(data: bytes) -> WidgetParams:
    """GET_WIDGET_PARAMS reply: its first five bytes (user configuration may follow)."""
    if len(data) < WIDGET_PARAMS.sizeof():
        raise MessageError(f"widget parameters need 5 bytes, got {len(data)}")
    parsed = WIDGET_PARAMS.parse(data)
    return WidgetParams(
        (parsed.firmware_msb, parsed.firmware_lsb), parsed.break_time, parsed.mab_time, parsed.rate
    )


class Rejected(NamedTuple):
    reason: str  # "start" (not a 0x7E), "length" (over 600), "end" (no 0xE7 where due)
    offset: int
    raw: bytes


@dataclass(slots=True)
class DeframerStats:
    messages: int = 0
    rejected: int = 0
    bytes_in: int = 0
    bytes_discarded: int = 0
    resyncs: int = 0


class Deframer:
    """Bytes -> widget messages: noise before a 0x7E is skipped, a message whose end byte is
    not 0xE7 costs its start byte only, so a message inside garbage is still found."""

    __slots__ = ("_buffer", "_in_error", "_offset", "stats")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._offset = 0
        self._in_error = False
        self.stats = DeframerStats()

    def reset(self) -> None:
        self._offset += len(self._buffer)
        self._buffer.clear()

    def feed(self, data: bytes) -> list[Message | Rejected]:
        out: list[Message | Rejected] = []
        self.stats.bytes_in += len(data)
        buffer = self._buffer
        buffer += data
        while buffer:
            if buffer[0] != START:
                at = buffer.find(START)
                self._drop(out, len(buffer) if at < 0 else at, "start")
                continue
            if len(buffer) < HEADER_SIZE:
                break
            length = buffer[2] | buffer[3] << 8
            if length > MAX_DATA:
                self._drop(out, 1, "length")
                continue
            size = HEADER_SIZE + length + 1
            if len(buffer) < size:
                break
            if buffer[size - 1] != END:
                self._drop(out, 1, "end")
                continue
            out.append(Message(buffer[1], bytes(buffer[HEADER_SIZE : size - 1]), self._offset))
            self.stats.messages += 1
            if self._in_error:
                self._in_error = False
                self.stats.resyncs += 1
            del buffer[:size]
            self._offset += size
        return out

    def _drop(self, out: list[Message | Rejected], count: int, reason: str) -> None:
        out.append(Rejected(reason, self._offset, bytes(self._buffer[:count])))
        del self._buffer[:count]
        self._offset += count
        self.stats.rejected += 1
        self.stats.bytes_discarded += count
        self._in_error = True
