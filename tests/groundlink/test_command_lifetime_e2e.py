"""End to end with mosquitto, the simulators and the daemon: a command sent to a dead daemon
never executes after its not_after, and one cancelled while the daemon is down never runs."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from pathlib import Path

import msgspec
import pytest

from hil.broker import Mosquitto
from protocols.ground import Role
from tests.daemon.conftest import shoot
from tests.harness import CAMERA_AND_LIGHT_UNPACED, cupola

pytestmark = pytest.mark.long

BENCH = CAMERA_AND_LIGHT_UNPACED
NO_RESULT = re.compile(r"light\.set ([0-9a-f]{32}): no result after")


async def test_a_command_sent_to_a_dead_daemon_never_runs_late_nor_once_cancelled(
    tmp_path: Path, broker: Mosquitto
) -> None:
    async with shoot(tmp_path, broker, BENCH, processes=True) as s:
        key_path = tmp_path / "director.key"
        key_path.write_bytes(msgspec.json.encode(s.credentials.keys[Role.DIRECTOR]))

        async def cmd(*words: str) -> subprocess.CompletedProcess[str]:
            argv = cupola("cmd", "--broker", broker.url(), "--node", "test-node",
                          "--key", str(key_path), *words)  # fmt: skip
            return await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True)

        light = s.sim.control.describe("key")
        s.daemon.stop()  # its broker session stays: commands for it queue at the broker
        await s.ground.wait_for(lambda: "offline" in s.ground.node_status(), 10, "the death")

        short = await cmd("--valid-for", "2", "--timeout", "1", "light.set", "device=key",
                          "intensity_pct=80")  # fmt: skip
        sent_by = time.time()
        assert short.returncode == 3, short
        assert "the node is offline" in short.stderr
        assert "It may still run until" in short.stderr and "cupola cmd --cancel" in short.stderr
        long = await cmd("--valid-for", "120", "--timeout", "1", "light.set", "device=key",
                         "intensity_pct=30")  # fmt: skip
        assert long.returncode == 3, long
        expired_id = NO_RESULT.findall(short.stderr)[0]
        cancelled_id = NO_RESULT.findall(long.stderr)[0]
        cancel = await cmd("--cancel", cancelled_id, "--timeout", "1")
        assert cancel.returncode == 3, cancel  # the node is down: the cancel waits too

        # The first command's not_after passes while the daemon is still down: waiting for a
        # time to come, not for something to happen.
        await asyncio.sleep(max(0.0, sent_by + 2.1 - time.time()))
        s.daemon.start()
        await s.ground.wait_for(
            lambda: {expired_id, cancelled_id} <= set(s.ground.results), 30, "both results"
        )
        expired = s.ground.results[expired_id]
        cancelled = s.ground.results[cancelled_id]
        after = s.sim.control.describe("key")
    assert expired["status"] == "rejected" and expired["key_id"] == "director-1"
    assert expired["reason"].startswith("expired ") and "not executed" in expired["reason"]
    assert cancelled["status"] == "rejected"
    assert cancelled["reason"] == "cancelled by 'director-1' before it ran"
    # neither reached the light: it still has the level it had before the daemon stopped
    assert after["model"]["target_permille"] == light["model"]["target_permille"] not in (800, 300)
