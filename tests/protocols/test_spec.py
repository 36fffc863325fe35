"""SPEC.md and the code cannot drift apart: generated sections and vectors are checked."""

from __future__ import annotations

import re

import pytest
from cobs import cobs

from protocols.catalogue import decode_any
from protocols.crc import CHECK_VALUE, crc32c, crc32c_bitwise
from protocols.framing import Deframer, Frame
from protocols.spec_tables import SECTIONS, SPEC_PATH, generated_section, vectors

SPEC = SPEC_PATH.read_text()


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_generated_sections_match_the_code(section: str) -> None:
    assert generated_section(SPEC, section) == SECTIONS[section](), (
        f"SPEC.md section {section!r} is stale: run `python -m protocols.spec_tables`"
    )


def _cobs_decode(data: bytes) -> bytes:
    """A second, minimal COBS decoder, independent of the library the code uses."""
    out = bytearray()
    i = 0
    while i < len(data):
        code = data[i]
        assert code != 0
        out += data[i + 1 : i + code]
        i += code
        if code != 0xFF and i < len(data):
            out.append(0)
    return bytes(out)


def test_crc_check_value_and_rfc3720_vectors() -> None:
    table = re.findall(r"^\| ([^|]+) \| 0x([0-9A-F]{8}) \| ([0-9a-f ]{11}) \|$", SPEC, re.M)
    inputs = {
        "ASCII `123456789`": b"123456789",
        "32 bytes of 0x00": bytes(32),
        "32 bytes of 0xFF": b"\xff" * 32,
        "bytes 0x00, 0x01, ... 0x1F": bytes(range(32)),
    }
    assert len(table) == len(inputs)
    for label, value, on_wire in table:
        data = inputs[label.strip()]
        assert crc32c(data) == crc32c_bitwise(data) == int(value, 16)
        assert crc32c(data).to_bytes(4, "little") == bytes.fromhex(on_wire)
    assert crc32c_bitwise(b"123456789") == CHECK_VALUE


def test_cobs_vectors() -> None:
    rows = re.findall(r"^\| ((?:[0-9A-F]{2} ?)+) \| ((?:[0-9A-F]{2} ?)+) \|$", SPEC, re.M)
    assert len(rows) == 5
    for data, encoded in rows:
        assert cobs.encode(bytes.fromhex(data)) == bytes.fromhex(encoded)
        assert _cobs_decode(bytes.fromhex(encoded)) == bytes.fromhex(data)
    block = bytes(range(1, 255))
    assert cobs.encode(block) == b"\xff" + block
    assert _cobs_decode(b"\xff" + block) == block


def test_frame_vectors_obey_the_spec_independently() -> None:
    lines = re.findall(r"^wire  ([0-9a-f ]+)$", generated_section(SPEC, "vectors"), re.M)
    assert len(lines) == len(vectors())
    for text, vector in zip(lines, vectors(), strict=True):
        wire = bytes.fromhex(text)
        assert wire == vector.wire
        assert wire[0] == wire[-1] == 0 and 0 not in wire[1:-1]
        frame = _cobs_decode(wire[1:-1])
        assert crc32c_bitwise(frame[:-4]).to_bytes(4, "little") == frame[-4:]
        assert frame[0] == 1 and frame[1] & 0xF8 == 0
        (item,) = Deframer().feed(wire)
        assert isinstance(item, Frame)
        decode_any(item)  # every vector is a valid message of its type
