"""Enttec widget framing and RDM packets: vectors, round trips, resync, discovery encoding."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import enttec, rdm
from protocols.errors import FramingError, MessageError


def test_widget_message_layout() -> None:
    """0x7E, label, length LSB MSB, data, 0xE7 (Enttec's widget API; not 0x7E at the end)."""
    assert enttec.encode(enttec.Label.GET_SERIAL) == bytes.fromhex("7e 0a 00 00 e7")
    dmx = enttec.dmx(bytes([255, 128]) + bytes(510))
    assert dmx[:4] == bytes.fromhex("7e 06 01 02") and dmx[4:7] == b"\x00\xff\x80"
    assert dmx[-1] == 0xE7 and len(dmx) == 4 + 513 + 1


def test_serial_number_is_bcd_least_significant_first() -> None:
    assert enttec.serial_number(12345678) == bytes.fromhex("78 56 34 12")
    assert enttec.decode_serial(bytes.fromhex("78 56 34 12")) == 12345678


def test_refuses_oversize() -> None:
    with pytest.raises(FramingError):
        enttec.encode(6, bytes(601))
    with pytest.raises(FramingError):
        enttec.dmx(bytes(513))


messages = st.tuples(st.integers(0, 255), st.binary(max_size=enttec.MAX_DATA))


@given(st.lists(messages, max_size=5), st.binary(max_size=30), st.lists(st.integers(0, 4000)))
def test_widget_deframer_finds_every_message_after_noise(
    specs: list[tuple[int, bytes]], noise: bytes, cuts: list[int]
) -> None:
    """Noise without a 0x7E in it is skipped whole; split anywhere, the same messages."""
    noise = noise.replace(b"\x7e", b"")
    stream = noise + b"".join(enttec.encode(*spec) for spec in specs)
    deframer = enttec.Deframer()
    out: list[object] = []
    last = 0
    for cut in [*sorted({c % (len(stream) + 1) for c in cuts}), len(stream)]:
        out += deframer.feed(stream[last:cut])
        last = cut
    assert [(m.label, m.data) for m in out if isinstance(m, enttec.Message)] == specs


def test_widget_deframer_survives_a_false_start() -> None:
    """A stray 0x7E whose 'end' byte is not 0xE7 costs one byte, not the next message."""
    good = enttec.encode(enttec.Label.GET_SERIAL)
    out = enttec.Deframer().feed(b"\x7e\x05\x02\x00ab" + good)
    assert [m.label for m in out if isinstance(m, enttec.Message)] == [10]


# -- RDM ------------------------------------------------------------------------------------

CONTROLLER = rdm.parse_uid("454e:00000001")
FIXTURE = rdm.parse_uid("4d41:12345678")


def test_rdm_get_device_info_byte_exact() -> None:
    """E1.20 layout: 24-byte header (message length 0x18 with no data), additive checksum."""
    packet = rdm.Packet(FIXTURE, CONTROLLER, 0, 1, 0, 0, rdm.CommandClass.GET, rdm.Pid.DEVICE_INFO)
    wire = rdm.encode(packet)
    assert wire[:3] == bytes.fromhex("cc 01 18")
    assert wire[3:9] == bytes.fromhex("4d 41 12 34 56 78")
    assert wire[20:24] == bytes.fromhex("20 00 60 00")
    assert int.from_bytes(wire[-2:], "big") == sum(wire[:-2]) == 0x039C
    assert rdm.decode(wire) == packet


def test_rdm_checksum_mismatch_is_refused() -> None:
    wire = bytearray(rdm.encode(rdm.Packet(FIXTURE, CONTROLLER, 0, 1, 0, 0, 0x20, 0x60)))
    wire[-1] ^= 1
    with pytest.raises(FramingError):
        rdm.decode(bytes(wire))


packets = st.builds(
    rdm.Packet,
    st.integers(0, rdm.BROADCAST),
    st.integers(0, rdm.BROADCAST),
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 0xFFFF),
    st.sampled_from(list(rdm.CommandClass)),
    st.integers(0, 0xFFFF),
    st.binary(max_size=rdm.MAX_PDL),
)


@given(packets)
def test_rdm_round_trip(packet: rdm.Packet) -> None:
    assert rdm.decode(rdm.encode(packet)) == packet


@given(st.integers(0, rdm.UID_MAX))
def test_discovery_answer_round_trip(uid: int) -> None:
    answer = rdm.dub_response(uid)
    assert answer[:8] == rdm.DUB_PREAMBLE and len(answer) == 24
    assert rdm.decode_dub_response(answer) == uid


def test_colliding_discovery_answers_fail_their_checksum() -> None:
    a, b = rdm.dub_response(FIXTURE), rdm.dub_response(CONTROLLER + 1)
    collided = bytes(x & y for x, y in zip(a, b, strict=True))  # open-drain line: zeros win
    with pytest.raises(FramingError):
        rdm.decode_dub_response(collided)


def test_parameter_data_round_trips() -> None:
    info = rdm.DeviceInfo(model_id=7, footprint=2, start_address=11, sensor_count=2)
    assert rdm.decode_device_info(rdm.encode_device_info(info)) == info
    assert len(rdm.encode_device_info(info)) == 19
    definition = rdm.SensorDefinition(
        0, rdm.SensorType.TEMPERATURE, rdm.Unit.CENTIGRADE, -40, 150, 10, 70, "LED board"
    )
    wire = rdm.encode_sensor_definition(definition)
    assert len(wire) == 13 + len("LED board")
    assert rdm.decode_sensor_definition(wire) == definition
    value = rdm.SensorValue(1, 93, 2, 120, 0)
    assert rdm.decode_sensor_value(rdm.encode_sensor_value(value)) == value
    status = [rdm.StatusMessage(rdm.StatusType.WARNING, rdm.StatusId.OVERTEMP, 0, 81)]
    assert rdm.decode_status_messages(rdm.encode_status_messages(status)) == status
    with pytest.raises(MessageError):
        rdm.decode_status_messages(b"\x00" * 8)


def test_uid_text() -> None:
    assert rdm.format_uid(FIXTURE) == "4d41:12345678"
    for bad in ("4d41", "zz:1", "10000:1"):
        with pytest.raises(MessageError):
            rdm.parse_uid(bad)


# -- the fast paths against the construct declarations they implement ----------------------


@given(packets)
def test_rdm_codec_is_the_declared_packet(packet: rdm.Packet) -> None:
    body = {
        "length": rdm.HEADER_SIZE + len(packet.data),
        "destination": rdm.uid_bytes(packet.destination),
        "source": rdm.uid_bytes(packet.source),
        "transaction": packet.transaction,
        "port_or_response": packet.port_or_response,
        "message_count": packet.message_count,
        "sub_device": packet.sub_device,
        "command_class": packet.command_class,
        "pid": packet.pid,
        "pdl": len(packet.data),
        "data": packet.data,
    }
    declared = rdm.PACKET.build({"body": {"value": body}, "checksum": None})
    assert rdm.encode(packet) == declared
    parsed = rdm.PACKET.parse(declared).body.value
    assert rdm.decode(declared).data == parsed.data and rdm.decode(declared).pid == parsed.pid


@given(st.binary(min_size=9, max_size=9))
def test_sensor_value_is_the_declared_layout(raw: bytes) -> None:
    parsed = rdm.SENSOR_VALUE.parse(raw)
    value = rdm.decode_sensor_value(raw)
    assert (value.sensor, value.present, value.lowest, value.highest, value.recorded) == (
        parsed.sensor,
        parsed.present,
        parsed.lowest,
        parsed.highest,
        parsed.recorded,
    )
    assert rdm.encode_sensor_value(value) == raw


@given(messages)
def test_widget_encoder_is_the_declared_message(spec: tuple[int, bytes]) -> None:
    label, data = spec
    declared = enttec.MESSAGE.build({"label": label, "length": len(data), "data": data})
    assert enttec.encode(label, data) == declared
    assert enttec.parse(declared)[:2] == spec


def test_widget_parameters_round_trip() -> None:
    """Firmware 2.4 (OLA enables RDM from it): LSB first on the wire."""
    params = enttec.WidgetParams((2, 4), 9, 1, 40)
    wire = enttec.widget_params(params)
    assert wire == bytes([4, 2, 9, 1, 40])
    assert enttec.decode_widget_params(wire + b"user") == params
