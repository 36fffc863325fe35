"""Node messages as the node publishes them, for the archive's tests (schema-valid)."""

from __future__ import annotations

from typing import Any

from protocols import ground

NODE = "iss-film"
T0 = 1_795_545_000.0  # a moment of the shoot (2026-11-24)


def envelope(kind: str, body: dict[str, Any], ts: float, node: str = NODE, **extra: Any) -> bytes:
    return ground.encode(ground.Envelope(v=1, node=node, kind=kind, ts=ts, body=body, **extra))


def event(
    seq: int,
    ts: float,
    *,
    name: str = "take.started",
    source: str = "cam-a",
    severity: str = "info",
    historical: bool = False,
    **data: Any,
) -> bytes:
    body = {
        "name": name,
        "severity": severity,
        "message": f"{name} on {source}",
        "source": source,
        "data": data,
        "ts": ts,
    }
    return envelope(ground.EVENT, body, ts, seq=seq, historical=historical)


def telemetry(
    seq: int,
    ts: float,
    *,
    draw_w: float = 100.0,
    temperature_cdeg: int = 2500,
    devices: int = 1,
    limits: list[dict[str, str]] | None = None,
) -> bytes:
    body = {
        "ts": ts,
        "devices": {
            f"cam-{i}": {
                "online": True,
                "temperature_cdeg": temperature_cdeg + i,
                "draw_mw": 9000 + i,
            }
            for i in range(devices)
        },
        "power": {
            "cap_w": 400.0,
            "draw_w": draw_w,
            "free_w": 400.0 - draw_w,
            "shedding": False,
            "reserve_w": 20.0,
            "next_change": None,
        },
        "data": {},
        "backlog": {"messages": 0, "bytes": 0},
        "limits": limits or [],
    }
    return envelope(ground.TELEMETRY, body, ts, seq=seq)


def result(
    seq: int, ts: float, *, name: str = "light.set", status: str = "ok", key_id: str = "director-1"
) -> bytes:
    body = {
        "id": f"cmd{seq:08d}",
        "name": name,
        "status": status,
        "reason": "",
        "result": {"device": "key"},
        "role": "director",
        "key_id": key_id,
    }
    return envelope(ground.RESULT, body, ts, seq=seq)


def birth(
    stream: int,
    bd_seq: int,
    ts: float,
    node: str = NODE,
    limits: list[dict[str, str]] | None = None,
) -> bytes:
    body = {
        "node": node,
        "schema": 1,
        "started": ts,
        "session_started": ts,
        "frame_rate": 24.0,
        "devices": {},
        "groups": {},
        "commands": {},
        "limits": limits or [],
        "sequence": {},
        "backlog": {"messages": 0, "bytes": 0},
        "budget": {},
    }
    return envelope(ground.BIRTH, body, ts, node=node, bd_seq=bd_seq, stream=stream)


def death(stream: int, bd_seq: int, ts: float) -> bytes:
    return envelope(ground.DEATH, {"reason": "lost"}, ts, bd_seq=bd_seq, stream=stream)


def stream_message(seq: int, ts: float) -> tuple[str, bytes]:
    """The seq-th message of a plausible mix: mostly samples, some events and results."""
    if seq % 5 == 0:
        return ground.topic(NODE, ground.EVENT), event(seq, ts, take_id=seq, scene="7", take=1)
    if seq % 7 == 0:
        return ground.topic(NODE, ground.RESULT), result(seq, ts)
    return ground.topic(NODE, ground.TELEMETRY), telemetry(seq, ts, draw_w=100 + seq % 50)
