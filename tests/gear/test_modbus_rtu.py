"""Modbus RTU frames for the simulator and the decoder, checked against pymodbus's own CRC."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymodbus.framer.rtu import FramerRTU

from protocols import modbus_rtu as m
from protocols.errors import FramingError


def test_read_input_registers_vector() -> None:
    """Unit 1, FC04, registers 0-9: the CRC bytes 70 0D as every Modbus tutorial prints them."""
    assert m.encode(1, 4, bytes.fromhex("0000000a")) == bytes.fromhex("01 04 00 00 00 0a 70 0d")


@given(st.binary(max_size=252))
def test_crc_agrees_with_pymodbus(data: bytes) -> None:
    """pymodbus returns the two CRC bytes in wire order as a big-endian number."""
    assert m.crc16(data).to_bytes(2, "little") == FramerRTU.compute_CRC(data).to_bytes(2, "big")


@given(st.integers(0, 247), st.integers(1, 127), st.binary(max_size=252))
def test_round_trip(unit: int, function: int, pdu: bytes) -> None:
    assert m.parse(m.encode(unit, function, pdu))[:3] == (unit, function, pdu)


def test_bad_crc_refused() -> None:
    with pytest.raises(FramingError):
        m.parse(bytes.fromhex("01 04 00 00 00 0a 70 0e"))


def test_deframer_slides_past_noise_in_both_directions() -> None:
    request = m.encode(1, 4, bytes.fromhex("0000000a"))
    response = m.encode(1, 4, bytes([4]) + bytes(4))
    out = m.Deframer(request=True).feed(b"\x01\x04\xff" + request)
    assert [a.pdu for a in out if isinstance(a, m.Adu)] == [bytes.fromhex("0000000a")]
    out = m.Deframer(request=False).feed(b"\x55" + response + m.encode(2, 0x84, b"\x02"))
    assert [a.name() for a in out if isinstance(a, m.Adu)] == [
        "READ_INPUT_REGISTERS",
        "READ_INPUT_REGISTERS EXCEPTION",
    ]


@given(st.floats(width=32, allow_nan=False))
def test_eastron_float_words(value: float) -> None:
    assert m.registers_float(*m.float_registers(value)) == value


@given(st.integers(0, 247), st.integers(1, 127), st.binary(max_size=252))
def test_encoder_is_the_declared_adu(unit: int, function: int, pdu: bytes) -> None:
    value = {"unit": unit, "function": function, "pdu": pdu}
    declared = m.ADU.build({"body": {"value": value}, "crc": None}, pdu_size=len(pdu))
    assert m.encode(unit, function, pdu) == declared
