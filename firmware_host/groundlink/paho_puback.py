"""paho's PUBACK decoder, made cheap for MQTT 3.1.1 sessions.

paho 2.2 decodes every PUBACK into an MQTT 5 reason code and property set, on a 3.1.1
session too, where the packet is a bare message id and neither can carry anything: building
the two costs about 20 us a PUBACK on the bench host, and the node reads two for every device
state (the crew's copy and the ground's: 256 a second at 64 devices), most of the states'
cost. `install` replaces the private function that builds them, for 3.1.1 PUBACKs only, by
one returning a shared Success code and empty properties, which is all such a packet says;
every other packet, and every MQTT 5 session, goes to paho's own. It installs only where it
finds the function it expects and its answers match paho's; otherwise paho stays as it is.
"""

from __future__ import annotations

import importlib
import logging
import struct
from collections.abc import Callable
from typing import Any

from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

log = logging.getLogger(__name__)

_MID = struct.Struct("!H")


def install() -> bool:
    """Replace paho's PUBACK decoding for 3.1.1 (once; idempotent); True if it is in place."""
    try:
        _packet = importlib.import_module("paho.mqtt._packet")  # paho 2.2's decoders
    except ImportError:  # another paho: its own decoding stays
        return False
    original = getattr(_packet, "_decode_mid_reason_prop", None)
    if original is None:
        return False
    if getattr(original, "_cupola_fast", False):
        return True
    success = ReasonCode(PacketTypes.PUBACK)
    empty = Properties(PacketTypes.PUBACK)  # type: ignore[no-untyped-call]
    puback, v5 = PacketTypes.PUBACK, MQTTProtocolVersion.MQTTv5

    def decode(packet_type: int, packet: bytes | bytearray, protocol: Any) -> Any:
        if packet_type == puback and protocol != v5 and len(packet) == 2:
            return _MID.unpack(packet)[0], success, empty
        return original(packet_type, packet, protocol)

    decode._cupola_fast = True  # type: ignore[attr-defined]
    decode.__wrapped__ = original  # type: ignore[attr-defined]
    if not _agrees(decode, original, puback, MQTTProtocolVersion.MQTTv311):
        log.warning("paho's PUBACK decoding is not as expected: left as it is")
        return False
    setattr(_packet, "_decode_mid_reason_prop", decode)  # noqa: B010 (a private name of paho)
    return True


def _agrees(
    fast: Callable[..., Any], original: Callable[..., Any], puback: int, protocol: Any
) -> bool:
    """The replacement gives paho's own answer (message id, reason, properties) for a few."""
    for mid in (1, 0x1234, 0xFFFF):
        packet = _MID.pack(mid)
        mine, theirs = fast(puback, packet, protocol), original(puback, packet, protocol)
        if mine[0] != theirs[0] or mine[1] != theirs[1]:
            return False
        if mine[2].json() != theirs[2].json():
            return False
    return True
