"""RDM (ANSI E1.20): request/response packets on a DMX512 line, discovery, the parameters
Cupola reads (device info, sensors, status messages).

Packet (all integers big-endian):

    0xCC | 0x01 | message length (24 + PDL) | destination UID (6) | source UID (6) |
    transaction | port id (request) / response type (response) | message count |
    sub-device (2) | command class | parameter id (2) | PDL | parameter data | checksum (2)

The checksum is the 16-bit sum of every byte from the start code to the end of the data.
A DISC_UNIQUE_BRANCH answer has no packet layout: up to 7 x 0xFE, 0xAA, then the UID and its
checksum each byte sent twice (b | 0xAA, b | 0x55), so colliding answers garble each other.
Parameter ids, sensor types, units, status ids and NACK reasons: E1.20-2010 tables A-3 to
A-17, B-2 (as OLA's RDMEnums.h lists them); see SPEC.md, "RDM".
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import NamedTuple

from construct import (
    Bytes,
    Checksum,
    Const,
    ConstructError,
    Int8ub,
    Int16sb,
    Int16ub,
    Int32ub,
    PaddedString,
    RawCopy,
    Struct,
    this,
)

from protocols.errors import FramingError, MessageError

START_CODE = 0xCC
SUB_START_CODE = 0x01
HEADER_SIZE = 24  # start code .. PDL
MAX_PDL = 231
BROADCAST = 0xFFFF_FFFF_FFFF
UID_MAX = 0xFFFF_FFFF_FFFE

PACKET = Struct(
    "body"
    / RawCopy(
        Struct(
            "start_code" / Const(bytes([START_CODE])),
            "sub_start_code" / Const(bytes([SUB_START_CODE])),
            "length" / Int8ub,
            "destination" / Bytes(6),
            "source" / Bytes(6),
            "transaction" / Int8ub,
            "port_or_response" / Int8ub,
            "message_count" / Int8ub,
            "sub_device" / Int16ub,
            "command_class" / Int8ub,
            "pid" / Int16ub,
            "pdl" / Int8ub,
            "data" / Bytes(this.pdl),
        )
    ),
    "checksum" / Checksum(Int16ub, lambda raw: sum(raw) & 0xFFFF, this.body.data),
)


class CommandClass(enum.IntEnum):
    DISCOVERY = 0x10
    DISCOVERY_RESPONSE = 0x11
    GET = 0x20
    GET_RESPONSE = 0x21
    SET = 0x30
    SET_RESPONSE = 0x31


class ResponseType(enum.IntEnum):
    ACK = 0x00
    ACK_TIMER = 0x01
    NACK_REASON = 0x02
    ACK_OVERFLOW = 0x03


class Pid(enum.IntEnum):
    DISC_UNIQUE_BRANCH = 0x0001
    DISC_MUTE = 0x0002
    DISC_UN_MUTE = 0x0003
    QUEUED_MESSAGE = 0x0020
    STATUS_MESSAGES = 0x0030
    SUPPORTED_PARAMETERS = 0x0050
    DEVICE_INFO = 0x0060
    DEVICE_MODEL_DESCRIPTION = 0x0080
    MANUFACTURER_LABEL = 0x0081
    DEVICE_LABEL = 0x0082
    SOFTWARE_VERSION_LABEL = 0x00C0
    DMX_PERSONALITY = 0x00E0
    DMX_START_ADDRESS = 0x00F0
    SENSOR_DEFINITION = 0x0200
    SENSOR_VALUE = 0x0201
    IDENTIFY_DEVICE = 0x1000


class Nack(enum.IntEnum):
    UNKNOWN_PID = 0x0000
    FORMAT_ERROR = 0x0001
    HARDWARE_FAULT = 0x0002
    WRITE_PROTECT = 0x0004
    UNSUPPORTED_COMMAND_CLASS = 0x0005
    DATA_OUT_OF_RANGE = 0x0006
    SUB_DEVICE_OUT_OF_RANGE = 0x0009


class SensorType(enum.IntEnum):
    TEMPERATURE = 0x00
    VOLTAGE = 0x01
    CURRENT = 0x02
    POWER = 0x05


class Unit(enum.IntEnum):
    NONE = 0x00
    CENTIGRADE = 0x01
    VOLTS_AC_RMS = 0x04
    AMPERE_AC_RMS = 0x07
    WATT = 0x0A


class StatusType(enum.IntEnum):
    NONE = 0x00
    GET_LAST_MESSAGE = 0x01
    ADVISORY = 0x02
    WARNING = 0x03
    ERROR = 0x04


class StatusId(enum.IntEnum):
    OVERTEMP = 0x0021  # data 1: sensor number, data 2: temperature (deg C)
    WATTS = 0x0043  # data 1: watts


PRODUCT_CATEGORY_FIXTURE_FIXED = 0x0101


def uid_bytes(uid: int) -> bytes:
    return uid.to_bytes(6, "big")


def uid_of(raw: bytes) -> int:
    return int.from_bytes(raw, "big")


def format_uid(uid: int) -> str:
    """OLA's notation: manufacturer:device in hex."""
    return f"{uid >> 32:04x}:{uid & 0xFFFF_FFFF:08x}"


def parse_uid(text: str) -> int:
    manufacturer, _, device = text.partition(":")
    try:
        value = int(manufacturer, 16) << 32 | int(device, 16)
    except ValueError as exc:
        raise MessageError(f"{text!r} is not a UID (write MMMM:DDDDDDDD in hex)") from exc
    if not device or int(manufacturer, 16) > 0xFFFF or int(device, 16) > 0xFFFF_FFFF:
        raise MessageError(f"{text!r} is not a UID (write MMMM:DDDDDDDD in hex)")
    return value


class Packet(NamedTuple):
    destination: int
    source: int
    transaction: int
    port_or_response: int  # port id in a request, ResponseType in a response
    message_count: int
    sub_device: int
    command_class: int
    pid: int
    data: bytes = b""

    @property
    def is_response(self) -> bool:
        return self.command_class & 0x01 == 1

    def describe(self) -> str:
        try:
            cc = CommandClass(self.command_class).name
        except ValueError:
            cc = f"CC_{self.command_class:02X}"
        try:
            pid = Pid(self.pid).name
        except ValueError:
            pid = f"PID_{self.pid:04X}"
        return f"{cc} {pid} {format_uid(self.source)}->{format_uid(self.destination)}"


_HEADER = struct.Struct(">BBB6s6sBBBHBHB")  # PACKET's header, as declared above
_CHECKSUM = struct.Struct(">H")


def encode(packet: Packet) -> bytes:
    """The packet from its start code to its checksum (PACKET's layout; the tests check this
    path against construct's own build, byte for byte)."""
    if len(packet.data) > MAX_PDL:
        raise FramingError(f"{len(packet.data)} bytes of parameter data: at most {MAX_PDL}")
    try:
        body = _HEADER.pack(
            START_CODE, SUB_START_CODE, HEADER_SIZE + len(packet.data),
            uid_bytes(packet.destination), uid_bytes(packet.source), packet.transaction & 0xFF,
            packet.port_or_response, packet.message_count, packet.sub_device,
            packet.command_class, packet.pid, len(packet.data),
        ) + packet.data  # fmt: skip
    except (struct.error, OverflowError) as exc:
        raise FramingError(f"RDM field out of range: {exc}") from exc
    return body + _CHECKSUM.pack(sum(body) & 0xFFFF)


def decode(raw: bytes) -> Packet:
    """A packet starting at its start code; bytes after the checksum are ignored."""
    if len(raw) < HEADER_SIZE + 2:
        raise FramingError(f"{len(raw)} bytes: an RDM packet has at least {HEADER_SIZE + 2}")
    (start, sub, length, dest, src, transaction, port, count, sub_device, cc, pid,
     pdl) = _HEADER.unpack_from(raw)  # fmt: skip
    if start != START_CODE or sub != SUB_START_CODE:
        raise FramingError(f"start codes {start:02x} {sub:02x}, not cc 01")
    if length != HEADER_SIZE + pdl:
        raise FramingError(f"message length {length} disagrees with PDL {pdl}")
    if len(raw) < length + 2:
        raise FramingError(f"{len(raw)} bytes for a packet of {length + 2}")
    if sum(raw[:length]) & 0xFFFF != _CHECKSUM.unpack_from(raw, length)[0]:
        raise FramingError("RDM checksum mismatch")
    return Packet(uid_of(dest), uid_of(src), transaction, port, count, sub_device, cc, pid,
                  bytes(raw[HEADER_SIZE:length]))  # fmt: skip


def response_to(
    request: Packet, data: bytes = b"", *, nack: Nack | None = None, message_count: int = 0
) -> Packet:
    """The responder's answer: source and destination swapped, class + 1."""
    if nack is not None:
        data, response = int(nack).to_bytes(2, "big"), ResponseType.NACK_REASON
    else:
        response = ResponseType.ACK
    return Packet(
        destination=request.source,
        source=request.destination,
        transaction=request.transaction,
        port_or_response=response,
        message_count=message_count,
        sub_device=request.sub_device,
        command_class=request.command_class + 1,
        pid=request.pid,
        data=data,
    )


# -- discovery ------------------------------------------------------------------------------

DUB_PREAMBLE = b"\xfe" * 7 + b"\xaa"


def dub_response(uid: int) -> bytes:
    """A responder's answer to DISC_UNIQUE_BRANCH: preamble, then UID and checksum doubled."""
    raw = uid_bytes(uid)
    check = sum(b | 0xAA for b in raw) + sum(b | 0x55 for b in raw)
    out = bytearray(DUB_PREAMBLE)
    for byte in raw + (check & 0xFFFF).to_bytes(2, "big"):
        out += bytes((byte | 0xAA, byte | 0x55))
    return bytes(out)


def decode_dub_response(raw: bytes) -> int:
    """The UID in a DISC_UNIQUE_BRANCH answer; a collision fails its checksum."""
    at = raw.find(0xAA)
    if at < 0 or at > 7 or any(b != 0xFE for b in raw[:at]):
        raise FramingError("no discovery preamble")
    body = raw[at + 1 : at + 17]
    if len(body) != 16:
        raise FramingError(f"discovery answer of {len(body)} bytes, 16 expected")
    decoded = bytes(body[i] & body[i + 1] for i in range(0, 16, 2))
    if sum(body[:12]) & 0xFFFF != int.from_bytes(decoded[6:], "big"):
        raise FramingError("discovery answer checksum mismatch (collision?)")
    return uid_of(decoded[:6])


def branch_bounds(data: bytes) -> tuple[int, int]:
    if len(data) != 12:
        raise MessageError(f"DISC_UNIQUE_BRANCH data is 12 bytes, got {len(data)}")
    return uid_of(data[:6]), uid_of(data[6:])


# -- parameter data -------------------------------------------------------------------------

DEVICE_INFO = Struct(
    "protocol_version" / Int16ub,  # 0x0100
    "model_id" / Int16ub,
    "product_category" / Int16ub,
    "software_version" / Int32ub,
    "footprint" / Int16ub,
    "personality" / Int8ub,
    "personality_count" / Int8ub,
    "start_address" / Int16ub,
    "sub_device_count" / Int16ub,
    "sensor_count" / Int8ub,
)

SENSOR_DEFINITION = Struct(
    "sensor" / Int8ub,
    "type" / Int8ub,
    "unit" / Int8ub,
    "prefix" / Int8ub,
    "range_min" / Int16sb,
    "range_max" / Int16sb,
    "normal_min" / Int16sb,
    "normal_max" / Int16sb,
    "recorded_support" / Int8ub,
    "description" / PaddedString(32, "ascii"),
)
SENSOR_DEFINITION_FIXED = 13

SENSOR_VALUE = Struct(
    "sensor" / Int8ub,
    "present" / Int16sb,
    "lowest" / Int16sb,
    "highest" / Int16sb,
    "recorded" / Int16sb,
)

STATUS_MESSAGE = Struct(
    "sub_device" / Int16ub,
    "type" / Int8ub,
    "message_id" / Int16ub,
    "data1" / Int16sb,
    "data2" / Int16sb,
)


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    model_id: int
    footprint: int
    start_address: int
    sensor_count: int
    personality: int = 1
    personality_count: int = 1
    software_version: int = 1
    product_category: int = PRODUCT_CATEGORY_FIXTURE_FIXED


def encode_device_info(info: DeviceInfo) -> bytes:
    built: bytes = DEVICE_INFO.build(
        {
            "protocol_version": 0x0100,
            "model_id": info.model_id,
            "product_category": info.product_category,
            "software_version": info.software_version,
            "footprint": info.footprint,
            "personality": info.personality,
            "personality_count": info.personality_count,
            "start_address": info.start_address,
            "sub_device_count": 0,
            "sensor_count": info.sensor_count,
        }
    )
    return built


def decode_device_info(data: bytes) -> DeviceInfo:
    try:
        parsed = DEVICE_INFO.parse(data)
    except ConstructError as exc:
        raise MessageError(f"DEVICE_INFO: {exc}") from exc
    return DeviceInfo(
        model_id=parsed.model_id,
        footprint=parsed.footprint,
        start_address=parsed.start_address,
        sensor_count=parsed.sensor_count,
        personality=parsed.personality,
        personality_count=parsed.personality_count,
        software_version=parsed.software_version,
        product_category=parsed.product_category,
    )


@dataclass(frozen=True, slots=True)
class SensorDefinition:
    sensor: int
    type: SensorType
    unit: Unit
    range_min: int
    range_max: int
    normal_min: int
    normal_max: int
    description: str


def encode_sensor_definition(d: SensorDefinition) -> bytes:
    built: bytes = SENSOR_DEFINITION.build(
        {
            "sensor": d.sensor,
            "type": d.type,
            "unit": d.unit,
            "prefix": 0,
            "range_min": d.range_min,
            "range_max": d.range_max,
            "normal_min": d.normal_min,
            "normal_max": d.normal_max,
            "recorded_support": 0x02,  # lowest/highest kept
            "description": d.description,
        }
    )
    # the description is variable length: no padding on the wire
    return built[: SENSOR_DEFINITION_FIXED + len(d.description.encode("ascii"))]


def decode_sensor_definition(data: bytes) -> SensorDefinition:
    padded = data + bytes(SENSOR_DEFINITION_FIXED + 32 - len(data))
    try:
        parsed = SENSOR_DEFINITION.parse(padded)
        return SensorDefinition(
            parsed.sensor,
            SensorType(parsed.type),
            Unit(parsed.unit),
            parsed.range_min,
            parsed.range_max,
            parsed.normal_min,
            parsed.normal_max,
            parsed.description,
        )
    except (ConstructError, ValueError) as exc:
        raise MessageError(f"SENSOR_DEFINITION: {exc}") from exc


@dataclass(frozen=True, slots=True)
class SensorValue:
    sensor: int
    present: int
    lowest: int
    highest: int
    recorded: int = 0


_SENSOR_VALUE = struct.Struct(">Bhhhh")  # SENSOR_VALUE's layout


def encode_sensor_value(v: SensorValue) -> bytes:
    try:
        return _SENSOR_VALUE.pack(v.sensor, v.present, v.lowest, v.highest, v.recorded)
    except struct.error as exc:
        raise MessageError(f"SENSOR_VALUE: {exc}") from exc


def decode_sensor_value(data: bytes) -> SensorValue:
    if len(data) != _SENSOR_VALUE.size:
        raise MessageError(f"SENSOR_VALUE data is {_SENSOR_VALUE.size} bytes, got {len(data)}")
    return SensorValue(*_SENSOR_VALUE.unpack(data))


@dataclass(frozen=True, slots=True)
class StatusMessage:
    type: StatusType
    message_id: int
    data1: int
    data2: int


def encode_status_messages(messages: list[StatusMessage]) -> bytes:
    return b"".join(
        STATUS_MESSAGE.build(
            {
                "sub_device": 0,
                "type": m.type,
                "message_id": m.message_id,
                "data1": m.data1,
                "data2": m.data2,
            }
        )
        for m in messages
    )


def decode_status_messages(data: bytes) -> list[StatusMessage]:
    if len(data) % 9:
        raise MessageError(f"STATUS_MESSAGES data of {len(data)} bytes is not 9-byte entries")
    out = []
    for at in range(0, len(data), 9):
        p = STATUS_MESSAGE.parse(data[at : at + 9])
        try:
            kind = StatusType(p.type)
        except ValueError as exc:
            raise MessageError(f"status type {p.type} unknown") from exc
        out.append(StatusMessage(kind, p.message_id, p.data1, p.data2))
    return out
