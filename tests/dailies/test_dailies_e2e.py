"""End to end against the simulators and mosquitto: two takes on two cameras, the clip files
offloaded and verified, the card guarded, one take circled and noted; its proxy reaches the
ground (`cupola receive`) through a flipped byte, a loss of signal and a `kill -9` of the
daemon, verified against its MHL hash, without an acknowledged segment sent again."""

from __future__ import annotations

import asyncio
import datetime
import shutil
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from firmware_host.dailies.mhl import verify_drive
from hil.broker import Mosquitto
from protocols import filelink
from protocols.ground import Role
from tests.daemon.conftest import shoot
from tools.receive import Receiver, receive

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")

BENCH = """
[bench]
seed = 3
media_dir = "cards"
[[device]]
name = "cam-a"
kind = "camera"
[[device]]
name = "cam-b"
kind = "camera"
"""


def _dailies(workdir: Path) -> str:
    opened = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1)).strftime("%H:%M")
    cards = workdir / "sim-ports" / "cards"
    return f"""
[data]
link_mbps = 0.16
proxy_kbps = 500
[[data.contact]]
start = "{opened}"
minutes = 120
[dailies]
store = "{workdir / "store"}"
cards = {{ cam-a = "{cards / "cam-a"}", cam-b = "{cards / "cam-b"}" }}
scan_s = 3600
chunk_bytes = 2048
resend_after_s = 2
"""


class Watched(Receiver):
    """The ground's receiver, with a byte flipped on the way in one segment, and a log of
    when each segment arrived."""

    def __init__(self, out: Path) -> None:
        super().__init__(out)
        self.arrivals: list[tuple[float, int]] = []
        self.published: dict[str, set[int]] = {}  # acknowledgements sent, not yet answered
        # (when its result was seen, segments acknowledged): the node had them by then
        self.acked: list[tuple[float, set[int]]] = []
        self.flipped = False

    def acknowledged(self, args: dict[str, Any], command_id: str) -> None:
        self.published[command_id] = {i for a, b in args.get("have", []) for i in range(a, b + 1)}

    def follow(self, results: dict[str, dict[str, Any]]) -> None:
        """Stamp the acknowledgements the node has answered (its results, on the stream)."""
        for command_id in list(self.published):
            if results.get(command_id, {}).get("status") == "ok":
                self.acked.append((time.monotonic(), self.published.pop(command_id)))

    def acknowledged_before(self, when: float) -> set[int]:
        return set().union(*(have for seen, have in self.acked if seen < when))

    def on_chunk(self, payload: bytes) -> None:
        index = int.from_bytes(payload[8:12], "little")
        self.arrivals.append((time.monotonic(), index))
        if index == 5 and not self.flipped:
            self.flipped = True
            damaged = bytearray(payload)
            damaged[filelink.HEADER_SIZE + 3] ^= 0x01
            payload = bytes(damaged)
        super().on_chunk(payload)


async def test_a_circled_take_reaches_the_ground_verified(
    tmp_path: Path, broker: Mosquitto
) -> None:
    async with shoot(tmp_path, broker, BENCH, extra=_dailies(tmp_path)) as s:
        for take in (1, 2):
            await s.roll({"scene": "7", "take": take})
            await asyncio.sleep(2.0)  # two seconds of picture
            await s.ok("cut")
        for camera in ("cam-a", "cam-b"):
            await s.ground.wait_for(
                lambda c=camera: sum(e["data"]["verified"] for e in s.events("offload.done", c))
                >= 2, 20, f"{camera} offloaded")  # fmt: skip
        store = tmp_path / "store"
        assert sorted(p.name for p in (store / "cam-a").iterdir()) == ["A001C001.mov",
                                                                       "A001C002.mov"]  # fmt: skip
        # The card may go: everything on it has a verified copy.
        armed = await s.ground.command("camera.format", {"camera": "cam-b"})
        assert armed["status"] == "armed"
        formatted = await s.ground.command("confirm", {"arm_id": armed["result"]["arm_id"]})
        assert formatted["status"] == "ok", formatted
        # A card whose clip changed since its copy is refused, and says which clip.
        (tmp_path / "sim-ports" / "cards" / "cam-a" / "A001C002.mov").write_bytes(b"x")
        armed = await s.ground.command("camera.format", {"camera": "cam-a"})
        refused = await s.ground.command("confirm", {"arm_id": armed["result"]["arm_id"]})
        assert refused["status"] == "rejected"
        assert "A001C002.mov (not offloaded and verified)" in refused["reason"]

        (take,) = (await s.ok("shotlog.query", {"take": 1}))["takes"]
        await s.ok("take.circle", {"take_id": take["take_id"]})
        await s.ok("take.note", {"take_id": take["take_id"], "text": "the one"})
        made = await s.wait_event("proxy.made", timeout=20)
        size = made["data"]["size"]
        assert 70_000 < size < 250_000, size  # seconds at 20 kB/s: time to break things

        key = tmp_path / "receiver.key"
        key.write_bytes(msgspec.json.encode(s.credentials.keys[Role.MONITOR]))
        receiver = Watched(tmp_path / "ground")
        receiving = asyncio.create_task(receive(broker.url(), "test-node", key,
                                                tmp_path / "ground", receiver=receiver,
                                                until=lambda r: r.files and all(
                                                    f.verified for f in r.files.values()),
                                                ack_every_s=0.3))  # fmt: skip

        async def follow() -> None:
            while True:
                receiver.follow(s.ground.results)
                await asyncio.sleep(0.05)

        following = asyncio.create_task(follow())
        await s.ground.wait_for(lambda: receiver.segments >= 10, 20, "10 segments")
        lost_at = time.monotonic()
        broker.stop()  # loss of signal, mid-transfer
        await asyncio.sleep(3)
        broker.start()
        await s.ground.wait_for(lambda: receiver.segments >= 30, 30, "30 segments")
        s.daemon.kill()
        killed_at = time.monotonic()
        await asyncio.sleep(1.0)
        s.restart_daemon()
        got = await asyncio.wait_for(receiving, 60)
        following.cancel()

    (incoming,) = got.files.values()
    arrived = tmp_path / "ground" / incoming.meta.day / "cam-a" / "A001C001_proxy.mp4"
    assert arrived.read_bytes() == (store / "proxies" / "cam-a" / "A001C001_proxy.mp4").read_bytes()
    assert got.rejected >= 1  # the flipped byte was caught ...
    assert [i for _, i in got.arrivals].count(5) >= 2  # ... and its segment came again
    # Both interruptions came mid-transfer ...
    assert incoming.meta.chunks > 34
    assert 5 <= len(got.acknowledged_before(lost_at)) < incoming.meta.chunks
    assert 15 <= len(got.acknowledged_before(killed_at)) < incoming.meta.chunks
    assert any(t > killed_at + 1.0 for t, _ in got.arrivals)
    # ... and no segment came again once the node had answered its acknowledgement, across
    # the loss of signal and the kill (half a second's margin for segments on their way).
    again = [(t, i) for t, i in got.arrivals if i in got.acknowledged_before(t - 0.5)]
    assert again == [], again
    # The onboard store (copies and proxy) is intact: the reference tool finds nothing amiss.
    assert verify_drive(store, store).ok
