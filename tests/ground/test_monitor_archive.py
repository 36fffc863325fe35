"""The monitor and the archive: a time range replayed from it as from a capture, a live
monitor filled from it at start, and a gap in the stream filled from it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hil.broker import Mosquitto
from protocols import ground
from tests.ground.node_messages import NODE, T0, birth, stream_message
from tests.tools.test_monitor_app import until
from tools.archive.rows import Streams
from tools.archive.writer import Writer
from tools.broker_link import broker_client
from tools.cli import main
from tools.monitor.app import MonitorApp
from tools.monitor.summary import summary
from tools.monitor.view import NodeView


def shoot(start: float, seqs: range) -> list[tuple[str, bytes, float]]:
    """A birth, then numbered messages a second apart: (topic, payload, received)."""
    out = [(ground.topic(NODE, "birth"), birth(42, 1, start), start)]
    for seq in seqs:
        topic, payload = stream_message(seq, start + seq)
        out.append((topic, payload, start + seq + 0.05))
    return out


async def archive(db: str, messages: list[tuple[str, bytes, float]]) -> None:
    streams = Streams({NODE: 42})  # as `cupola archive` knows it from the birth it stored
    writer = await Writer.connect(db)
    await writer.write([streams.row(t, p, r) for t, p, r in messages])
    await writer.close()


async def test_a_time_range_replays_as_a_capture_would(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    messages = shoot(T0, range(1, 120))
    await archive(db, messages)
    at = T0 + 100
    direct = NodeView(NODE)  # what a live monitor (or its capture) would have shown then
    direct.set_connection(True, "replayed from the archive", messages[0][2])
    for topic, payload, received in messages:
        if received <= at:
            direct.absorb(topic, payload, received)
    status = main(["monitor", "--replay", db, "--node", NODE, "--since", str(T0 - 1),
                   "--at", str(at), "--text"])  # fmt: skip
    out, err = capsys.readouterr()
    assert status == 0, err
    assert out.strip() == summary(direct, at).strip()
    assert "ONLINE" in out.upper() and "seq 99" in out


def test_an_empty_range_says_so(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["monitor", "--replay", db, "--node", NODE, "--since", str(T0),
                   "--at", str(T0 + 10), "--text"])  # fmt: skip
    assert status == 65 and "holds no archive" in capsys.readouterr().err


async def test_a_live_monitor_fills_from_the_archive_then_its_gaps(
    db: str, tmp_path: Path, broker: Mosquitto
) -> None:
    now = time.time()
    start = now - 200
    await archive(db, shoot(start, range(1, 150)))  # the past hour, as the archive holds it
    view = NodeView(NODE)
    app = MonitorApp(view, url=broker.url(), archive_url=db, client_id="m-db")
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: view.sequence.last_seq == 149, "the archive's hour")
        assert len(view.power_samples) > 100  # the sparkline, full at once
        assert any(e.seq == 145 for e in view.events)
        async with broker_client(broker.url(), None, "node") as node:
            await until(pilot, lambda: view.connected, "live")
            for seq in range(150, 155):
                await node.publish(*stream_message(seq, now + seq - 150), qos=1)
            await until(pilot, lambda: view.sequence.last_seq == 154, "live messages")
            # Numbers 155..169 went by while this monitor was away: the archive has them.
            await archive(db, [(t, p, r) for t, p, r in shoot(now, range(155, 170))[1:]])
            await node.publish(*stream_message(170, now + 20), qos=1)
            await until(pilot, lambda: view.sequence.last_seq == 170, "after the gap")
            await until(pilot, lambda: not view.sequence.gaps, "the gap filled from the archive")
        assert view.sequence.filled == 15 and view.sequence.missing() == 0
        assert {e.seq for e in view.events} >= {155, 160, 165, 170}


def test_monitor_db_unreachable_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["monitor", "--broker", "mqtt://127.0.0.1:1", "--db",
                   "postgresql://nobody@127.0.0.1:1/none"])  # fmt: skip
    assert status == 69 and "cannot reach" in capsys.readouterr().err
