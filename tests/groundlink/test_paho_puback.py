"""The node's PUBACK decoding for MQTT 3.1.1 gives paho's own answer, and leaves every other
packet and every MQTT 5 session to paho."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt import _packet
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes

from firmware_host.groundlink import paho_puback


@pytest.fixture(scope="module", autouse=True)
def restored() -> Iterator[None]:
    """paho's own decoder put back after this module, as it was before (the install is
    process-wide, and another test's daemon may have made it already)."""
    before = _packet._decode_mid_reason_prop
    yield
    _packet._decode_mid_reason_prop = before


def _paho_original() -> Callable[..., Any]:
    original: Callable[..., Any] = _packet._decode_mid_reason_prop.__wrapped__  # type: ignore[attr-defined]
    return original


def test_it_installs_on_the_paho_the_node_ships_with_and_once() -> None:
    assert paho_puback.install()
    first = _packet._decode_mid_reason_prop
    assert paho_puback.install()
    assert _packet._decode_mid_reason_prop is first


@given(st.integers(0, 0xFFFF))
def test_a_311_puback_decodes_as_paho_decodes_it(mid: int) -> None:
    assert paho_puback.install()
    original = _paho_original()
    packet = struct.pack("!H", mid)
    for protocol in (MQTTProtocolVersion.MQTTv311, MQTTProtocolVersion.MQTTv31):
        fast = _packet.decode_puback(0x40, packet, protocol)
        theirs = original(PacketTypes.PUBACK, packet, protocol)
        assert fast.mid == theirs[0] == mid
        assert fast.reason == theirs[1] and not fast.reason.is_failure
        assert fast.properties.json() == theirs[2].json() == {}


def test_mqtt5_and_other_packets_are_paho_s_own() -> None:
    assert paho_puback.install()
    # an MQTT 5 PUBACK carrying a failure reason: paho reads it, the shared Success is not used
    failed = _packet.decode_puback(0x40, b"\x00\x07\x87", MQTTProtocolVersion.MQTTv5)
    assert failed.mid == 7 and failed.reason.is_failure
    # a 3.1.1 PUBCOMP goes to paho's decoder too, and a malformed PUBACK is still refused
    assert _packet.decode_pubcomp(0x70, b"\x00\x09", MQTTProtocolVersion.MQTTv311).mid == 9
    with pytest.raises(Exception, match="wrong size"):
        _packet.decode_puback(0x40, b"\x00\x07\x00", MQTTProtocolVersion.MQTTv311)
