"""paho's PUBACK decoder, made cheap for MQTT 3.1.1 sessions.

paho 2.2 decodes every PUBACK into an MQTT 5 reason code and property set, on a 3.1.1
session too, where the packet is a bare message id and neither can carry anything: building
the two costs about 18 us a PUBACK on the bench host, and the node reads two for every device
state (the crew's copy and the ground's: 256 a second at 64 devices). `install` replaces the
private function that builds them, for 3.1.1 PUBACKs only, by one returning a Success code
and empty properties, which is all such a packet says; every other packet, and every MQTT 5
session, goes to paho's own. The two objects are shared by every PUBACK: paho only hands them
to `on_publish`, and no callback of aiomqtt's or the node's changes them (none may).

It installs only where it finds the function it expects, its answers match paho's own, and
paho's `decode_puback` then answers through it; otherwise paho stays as it is, and the log
says so once.
"""

from __future__ import annotations

import importlib
import logging
import struct
from collections.abc import Callable
from types import ModuleType
from typing import Any

from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

log = logging.getLogger(__name__)

_MID = struct.Struct("!H")
_refused: list[str] = []  # why paho was left as it is (said once)


def install() -> bool:
    """Replace paho's PUBACK decoding for 3.1.1 (once; idempotent); True if it is in place."""
    if _refused:
        return False
    try:
        packets = importlib.import_module("paho.mqtt._packet")  # paho 2.2's decoders
    except ImportError:
        return _refuse("paho has no paho.mqtt._packet")
    original = getattr(packets, "_decode_mid_reason_prop", None)
    if original is None:
        return _refuse("paho has no _decode_mid_reason_prop")
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
    try:
        if not _agrees(decode, original):
            return _refuse("its answers differ from paho's")
        setattr(packets, "_decode_mid_reason_prop", decode)  # noqa: B010 (a private name of paho)
        if not _answers_through(packets, success):
            setattr(packets, "_decode_mid_reason_prop", original)  # noqa: B010
            return _refuse("paho's decode_puback does not call it")
    except Exception as exc:  # another paho: whatever it raises, paho stays as it is
        setattr(packets, "_decode_mid_reason_prop", original)  # noqa: B010
        return _refuse(f"checking it against paho's raised {type(exc).__name__}: {exc}")
    return True


def _refuse(why: str) -> bool:
    _refused.append(why)
    log.info("paho's own PUBACK decoding is kept (%s): each PUBACK costs it more CPU", why)
    return False


def _agrees(fast: Callable[..., Any], original: Callable[..., Any]) -> bool:
    """The replacement gives paho's own answer (message id, reason and its packet type,
    properties) for a few PUBACKs."""
    for protocol in (MQTTProtocolVersion.MQTTv311, MQTTProtocolVersion.MQTTv31):
        for mid in (1, 0x1234, 0xFFFF):
            packet = _MID.pack(mid)
            mine = fast(PacketTypes.PUBACK, packet, protocol)
            theirs = original(PacketTypes.PUBACK, packet, protocol)
            if _described(mine) != _described(theirs):
                return False
    return True


def _described(answer: Any) -> tuple[Any, ...]:
    mid, reason, properties = answer
    return (mid, reason.value, reason.packetType, properties.packetType, properties.json())


def _answers_through(packets: ModuleType, success: ReasonCode) -> bool:
    """paho's own PUBACK decoder now answers with the shared reason (it looks the function
    up when called, as paho 2.2 does)."""
    decoded = packets.decode_puback(0x40, _MID.pack(1), MQTTProtocolVersion.MQTTv311)
    return decoded.reason is success
