"""The generated parts of SPEC.md: catalogue, body layouts, enumerations, test vectors.

`python -m protocols.spec_tables` rewrites the marked sections of protocols/SPEC.md from the
code; the test suite fails while the two differ, so the spec cannot drift from the code.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from construct import SizeofError

from protocols.catalogue import (
    CLEAR_ERROR,
    COMMANDS,
    EVENTS,
    HEARTBEAT,
    LIGHT_SET,
    LIGHT_STATUS,
    PING,
    RECORD_START,
    encode_event,
    encode_nack,
    encode_reply,
    encode_request,
)
from protocols.messages.camera import (
    CameraError,
    CameraState,
    Codec,
    RecordStart,
)
from protocols.messages.common import (
    DeviceClass,
    Empty,
    EventCode,
    Heartbeat,
    Nack,
    NackCode,
    Ping,
    Severity,
)
from protocols.messages.light import LightFault, LightSet, LightStatus
from protocols.records import ArrayOf, DocIntEnum, RecordCodec, codec_of, describe_field
from protocols.timecode import FrameRate

SPEC_PATH = Path(__file__).with_name("SPEC.md")

UNITS = {
    "_mw": "mW",
    "_mv": "mV",
    "_ma": "mA",
    "_cdeg": "0.01 degC",
    "_permille": "0.1 %",
    "_k": "K",
    "_ms": "ms",
    "_us": "us",
    "_kbps": "kbit/s",
    "_bytes": "bytes",
    "_decideg": "0.1 deg",
}


def _unit(name: str) -> str:
    for suffix, unit in UNITS.items():
        if name.endswith(suffix):
            return unit
    return ""


def _classes(classes: Iterable[DeviceClass]) -> str:
    if set(classes) == set(DeviceClass):
        return "all"
    return ", ".join(c.name.lower() for c in sorted(classes))


def render_catalogue() -> str:
    lines = [
        "| type | name | request body | reply body | devices | flags | purpose |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for code, command in sorted(COMMANDS.items()):
        flags = []
        if command.hazardous:
            flags.append("hazardous")
        if not command.changes_state:
            flags.append("read-only")
        lines.append(
            f"| 0x{code:02X} | {command.code.name} | {command.request.__name__} | "
            f"{command.reply.__name__} | {_classes(command.classes)} | "
            f"{', '.join(flags)} | {command.doc} |"
        )
    lines += [
        "",
        "Unsolicited frames (kind EVENT, device to host):",
        "",
        "| type | name | body | devices | notes |",
        "| --- | --- | --- | --- | --- |",
    ]
    for code, event in sorted(EVENTS.items()):
        lines.append(
            f"| 0x{code:02X} | {event.code.name} | {event.body.__name__} | "
            f"{_classes(event.classes)} | {event.doc} |"
        )
    lines += [
        "",
        "Reply frames of kind REPLY carry either the request's type and its reply body, or",
        "type 0x02 NACK with a Nack body.",
    ]
    return "\n".join(lines)


def _bodies() -> list[type[Any]]:
    seen: list[type[Any]] = []

    def add(cls: type[Any]) -> None:
        for field in codec_of(cls).fields:
            if isinstance(field.meta, ArrayOf):
                add(field.meta.item)
        if cls not in seen:
            seen.append(cls)

    for command in COMMANDS.values():
        add(command.request)
        add(command.reply)
    add(Nack)
    for event in EVENTS.values():
        add(event.body)
    return seen


def _body_table(codec: RecordCodec) -> list[str]:
    if not codec.fields:
        return ["No fields: the payload is empty."]
    lines = [
        "| offset | field | type | values | unit | meaning |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    offset: int | None = 0
    for field in codec.fields:
        wire, allowed = describe_field(field)
        where = str(offset) if offset is not None else "+"
        doc = getattr(field.meta, "doc", "")
        lines.append(
            f"| {where} | {field.name} | {wire} | {allowed} | {_unit(field.name)} | {doc} |"
        )
        try:
            size = field.subcon.sizeof()
        except SizeofError:  # variable-length field
            size = None
        offset = offset + size if offset is not None and size is not None else None
    total = "fixed, " + str(offset) + " bytes" if offset is not None else "variable length"
    lines.append("")
    lines.append(f"Layout: {total}.")
    return lines


def render_bodies() -> str:
    lines: list[str] = []
    for cls in _bodies():
        lines.append(f"#### {cls.__name__}")
        lines.append("")
        doc = cls.__doc__ or ""
        if doc and not doc.startswith(cls.__name__ + "("):  # dataclass's generated signature
            lines.append(doc.strip().splitlines()[0])
            lines.append("")
        lines.extend(_body_table(codec_of(cls)))
        lines.append("")
    return "\n".join(lines).rstrip()


def _enum_table(cls: type[enum.IntEnum]) -> list[str]:
    lines = [f"#### {cls.__name__}", "", "| value | name | meaning |", "| --- | --- | --- |"]
    for member in cls:
        meaning = member.doc if isinstance(member, DocIntEnum) else ""
        if cls is FrameRate:
            meaning = f"{FrameRate(member).fps:.3f} fps, timebase {FrameRate(member).timebase}"
        lines.append(f"| {int(member)} | {member.name} | {meaning} |")
    lines.append("")
    return lines


def render_enums() -> str:
    lines: list[str] = []
    for cls in (
        DeviceClass, NackCode, Severity, EventCode, CameraState, CameraError, Codec, FrameRate,
    ):  # fmt: skip
        lines.extend(_enum_table(cls))
    lines += ["#### LightFault (bit flags)", "", "| bit | name |", "| --- | --- |"]
    lines += [f"| 0x{int(m):02X} | {m.name} |" for m in LightFault]
    return "\n".join(lines)


@dataclass(frozen=True)
class Vector:
    title: str
    wire: bytes


def vectors() -> list[Vector]:
    """Frames a device implementation must produce and accept byte for byte."""
    light = LightStatus(
        on=True,
        intensity_permille=625,
        cct_k=4300,
        target_intensity_permille=625,
        target_cct_k=4300,
        fade_remaining_ms=0,
        output_limit_permille=1000,
        draw_mw=47_250,
        temperature_cdeg=3850,
        faults=LightFault(0),
    )
    return [
        Vector(
            "PING request, seq 1, token 0x12345678",
            encode_request(PING, Ping(token=0x12345678), 1),
        ),
        Vector(
            "the same PING retransmitted (RETRY flag set)",
            encode_request(PING, Ping(token=0x12345678), 1, retry=True),
        ),
        Vector("PING reply, seq 1", encode_reply(PING, Ping(token=0x12345678), 1)),
        Vector(
            "NACK NO_SESSION answering CAMERA_STATUS (0x20), seq 0x0102",
            encode_nack(0x20, 0x0102, NackCode.NO_SESSION, "send HELLO"),
        ),
        Vector(
            "LIGHT_SET request: 62.5 %, 4300 K, 2 s fade, seq 7",
            encode_request(
                LIGHT_SET, LightSet(intensity_permille=625, cct_k=4300, fade_ms=2000), 7
            ),
        ),
        Vector(
            "LIGHT_STATUS reply, seq 8 (a 32-byte frame)",
            encode_reply(LIGHT_STATUS, light, 8),
        ),
        Vector(
            "RECORD_START request: scene 12A, take 3, roll A007, on frame 1 620 000, seq 9",
            encode_request(
                RECORD_START,
                RecordStart(scene="12A", take=3, roll="A007", start_timecode=1_620_000),
                9,
            ),
        ),
        Vector(
            "CLEAR_ERROR request (empty body), seq 10", encode_request(CLEAR_ERROR, Empty(), 10)
        ),
        Vector(
            "NACK OVER_TEMPERATURE answering CLEAR_ERROR (0x2C), seq 10: still too hot",
            encode_nack(CLEAR_ERROR.code, 10, NackCode.OVER_TEMPERATURE, "64.3 C; cool below 60 C"),
        ),
        Vector(
            "HEARTBEAT event, event seq 0, boot id 0xCAFEF00D, uptime 1.5 s",
            encode_event(HEARTBEAT, Heartbeat(boot_id=0xCAFEF00D, uptime_ms=1500), 0),
        ),
    ]


def _hex(data: bytes) -> str:
    return " ".join(f"{b:02x}" for b in data)


def render_vectors() -> str:
    lines = []
    for vector in vectors():
        lines += [f"{vector.title}:", "", "```", f"wire  {_hex(vector.wire)}", "```", ""]
    return "\n".join(lines).rstrip()


SECTIONS = {
    "catalogue": render_catalogue,
    "bodies": render_bodies,
    "enums": render_enums,
    "vectors": render_vectors,
}


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- generated:{name} -->", f"<!-- end generated:{name} -->"


def generated_section(text: str, name: str) -> str:
    begin, end = _markers(name)
    start = text.index(begin) + len(begin)
    return text[start : text.index(end)].strip("\n")


def regenerate(text: str) -> str:
    for name, render in SECTIONS.items():
        begin, end = _markers(name)
        start = text.index(begin) + len(begin)
        stop = text.index(end)
        text = text[:start] + "\n" + render() + "\n" + text[stop:]
    return text


def main() -> int:
    text = SPEC_PATH.read_text()
    updated = regenerate(text)
    if updated != text:
        SPEC_PATH.write_text(updated)
        print(f"updated {SPEC_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
