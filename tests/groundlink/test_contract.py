"""What the node publishes is exactly what GROUND.md and ground.schema.json document."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import msgspec

from hil.broker import Mosquitto
from protocols import ground
from protocols.ground import Role
from tests.daemon.conftest import shoot
from tools.ground_client import sign_command

BENCH = """
[[device]]
name = "cam-a"
kind = "camera"
[[device]]
name = "key"
kind = "light"
[[device]]
name = "pdu"
kind = "pdu"
"""


def test_the_schema_file_is_current() -> None:
    shipped = json.loads(ground.SCHEMA_PATH.read_text())
    assert shipped == json.loads(msgspec.json.encode(ground.schema())), (
        "protocols/ground.schema.json is stale: run `python -m protocols.ground`"
    )


async def test_every_message_matches_its_documented_body(tmp_path: Path, broker: Mosquitto) -> None:
    extra = "[telemetry]\ninterval_s = 0.2\n"
    async with shoot(tmp_path, broker, BENCH, extra=extra, processes=True) as s:
        await s.roll({"scene": "2", "take": 1})  # rolled: a cut now logs the take
        await s.ok("cut")
        monitor = s.credentials.keys[Role.MONITOR]
        await s.ground.publish_command(sign_command(monitor, "cut", {}))  # a refusal
        armed = await s.ground.command("camera.format", {"camera": "cam-a"})  # armed
        assert armed["status"] == "armed"
        await s.ok("rebirth")
        await asyncio.sleep(0.6)
        s.daemon.stop()  # a clean shutdown publishes a death certificate
        await s.ground.wait_for(lambda: bool(s.ground.deaths), 10, "a death certificate")
    seen = dict.fromkeys(ground.BODIES, 0)
    local = [m for _, m in s.ground.local]
    for message in [*s.ground.births, *s.ground.deaths, *s.ground.stream, *s.ground.links, *local]:
        msgspec.convert(message.body, type=ground.BODIES[message.kind])
        seen[message.kind] += 1
    for _, body in s.ground.state_log:
        msgspec.convert(body, type=ground.DeviceSnapshot)
        seen[ground.STATE] += 1
    assert all(count > 0 for count in seen.values()), seen
    assert len(s.ground.births) >= 2  # the rebirth
