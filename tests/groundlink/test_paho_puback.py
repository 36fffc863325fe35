"""The node's PUBACK decoding for MQTT 3.1.1 gives paho's own answer, runs for 3.1.1 PUBACKs
only, and leaves paho as it is wherever paho is not what it expects."""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt import _packet
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.exception import MalformedPacket
from paho.mqtt.packettypes import PacketTypes

from firmware_host.groundlink import paho_puback

V311, V5 = MQTTProtocolVersion.MQTTv311, MQTTProtocolVersion.MQTTv5


@pytest.fixture(autouse=True)
def restored(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts from paho's own decoder, nothing refused, and leaves things as they
    were (the install is process-wide, and another test's daemon may have made it)."""
    before = _packet._decode_mid_reason_prop
    monkeypatch.setattr(_packet, "_decode_mid_reason_prop", getattr(before, "__wrapped__", before))
    monkeypatch.setattr(paho_puback, "_refused", [])
    yield


def _paho_own() -> Callable[..., Any]:
    original: Callable[..., Any] = _packet._decode_mid_reason_prop.__wrapped__  # type: ignore[attr-defined]
    return original


def test_it_installs_on_the_paho_the_node_ships_with_and_once() -> None:
    assert paho_puback.install()
    first = _packet._decode_mid_reason_prop
    assert paho_puback.install()
    assert _packet._decode_mid_reason_prop is first


@given(st.integers(0, 0xFFFF))
def test_a_311_puback_decodes_as_paho_decodes_it_without_new_objects(mid: int) -> None:
    assert paho_puback.install()
    packet = struct.pack("!H", mid)
    for protocol in (V311, MQTTProtocolVersion.MQTTv31):
        fast, again = (_packet.decode_puback(0x40, packet, protocol) for _ in range(2))
        mid_theirs, reason, properties = _paho_own()(PacketTypes.PUBACK, packet, protocol)
        assert fast.mid == mid_theirs == mid
        assert (fast.reason.value, fast.reason.packetType) == (reason.value, reason.packetType)
        assert not fast.reason.is_failure
        assert fast.properties.json() == properties.json() == {}
        assert fast.reason is again.reason and fast.properties is again.properties  # shared


def test_mqtt5_and_other_packets_are_paho_s_own() -> None:
    assert paho_puback.install()
    shared = _packet.decode_puback(0x40, b"\x00\x01", V311).reason
    # an MQTT 5 PUBACK carrying a failure reason: paho reads it
    failed = _packet.decode_puback(0x40, b"\x00\x07\x87", V5)
    assert failed.mid == 7 and failed.reason.is_failure and failed.reason is not shared
    # 3.1.1 PUBCOMP, PUBREC and PUBREL go through the same helper: each is paho's own
    for decoder, packet_type in (
        (_packet.decode_pubcomp, PacketTypes.PUBCOMP),
        (_packet.decode_pubrec, PacketTypes.PUBREC),
        (_packet.decode_pubrel, PacketTypes.PUBREL),
    ):
        decoded = decoder(0x70, b"\x00\x09", V311)
        assert decoded.mid == 9 and decoded.reason.packetType == packet_type
        assert decoded.reason is not shared
    with pytest.raises(MalformedPacket, match="wrong size"):  # still refused
        _packet.decode_puback(0x40, b"\x00\x07\x00", V311)


@pytest.mark.parametrize(
    "changed",
    [
        lambda packet_type, packet, protocol: (0, None, None),  # another answer
        lambda protocol, packet_type, packet: 1 / 0,  # another signature: it raises
    ],
    ids=["answers-otherwise", "raises"],
)
def test_a_paho_whose_decoder_is_not_as_expected_stays_as_it_is_and_says_so_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, changed: Any
) -> None:
    caplog.set_level(logging.INFO, logger=paho_puback.__name__)
    monkeypatch.setattr(_packet, "_decode_mid_reason_prop", changed)
    assert not paho_puback.install()
    assert not paho_puback.install()
    assert _packet._decode_mid_reason_prop is changed
    assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1
    assert "PUBACK decoding is kept" in caplog.records[0].message


def test_a_paho_whose_decode_puback_does_not_look_the_helper_up_stays_as_it_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = _packet._decode_mid_reason_prop
    monkeypatch.setattr(
        _packet,
        "decode_puback",
        lambda header, packet, protocol: _packet.PubackPacket(
            *original(PacketTypes.PUBACK, packet, protocol)
        ),
    )  # fmt: skip (a paho that holds its helper itself, as if inlined)
    assert not paho_puback.install()
    assert _packet._decode_mid_reason_prop is original
