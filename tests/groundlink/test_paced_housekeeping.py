"""A paced housekeeping class end to end: the stream keeps to its rate and is never starved
by device states, which take only what it leaves."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiomqtt
import pytest

from hil.broker import Mosquitto
from protocols import ground
from tests.harness import (
    CAMERA_AND_LIGHT_UNPACED,
    Credentials,
    DaemonProcess,
    SimProcess,
    daemon_config,
)

pytestmark = pytest.mark.long

NODE = "test-node"
BENCH = CAMERA_AND_LIGHT_UNPACED
RATE = 4000.0  # bytes per second: 32 kbit/s
WATCH_S = 6.0
# Samples every 0.5 s want about 2 kB/s; states at 10 Hz on two devices would want 20 kB/s.
EXTRA = f"[telemetry]\ninterval_s = 0.5\n[data.housekeeping]\nkbps = {RATE * 8 / 1000}\n"


async def test_the_stream_keeps_to_its_rate_and_states_get_only_the_rest(
    tmp_path: Path, broker: Mosquitto
) -> None:
    sim = SimProcess(tmp_path, BENCH).start()
    credentials = Credentials(tmp_path)
    config = daemon_config(
        sim.paths, sim.kinds, broker.url(), tmp_path / "state", keyring=credentials.keyring,
        extra=EXTRA,
    )  # fmt: skip
    seen: list[tuple[float, str, int]] = []  # (received, leaf, bytes) on the ground's topics
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        await client.subscribe(f"{ground.ROOT}/{NODE}/#", qos=1)
        DaemonProcess(tmp_path, config).start()
        deadline = time.monotonic() + 30
        async for message in client.messages:
            parsed = ground.parse_topic(str(message.topic))
            assert parsed is not None and time.monotonic() < deadline
            if parsed[1] != ground.LOCAL:
                seen.append((time.time(), parsed[1], len(bytes(message.payload))))  # type: ignore[arg-type]
            born = next((at for at, leaf, _ in seen if leaf == ground.BIRTH), None)
            if born is not None and time.time() > born + WATCH_S:
                break
            await asyncio.sleep(0)
    assert born is not None
    window = [(leaf, size) for at, leaf, size in seen if born < at <= born + WATCH_S]
    paced = sum(size for leaf, size in window if leaf not in (ground.BIRTH, ground.LINK))
    assert paced <= RATE * (WATCH_S + 1.0), f"{paced} bytes in {WATCH_S} s at {RATE:g} B/s"
    samples = [leaf for leaf, _ in window if leaf == ground.TELEMETRY]
    assert len(samples) >= WATCH_S / 0.5 - 3, "the stream was starved"
    assert any(leaf == ground.STATE for leaf, _ in window), "states got nothing at all"
