"""The ground end to end: a node behind its onboard broker and bridge, two archives and two
monitors on the ground broker, a loss of signal and a ground broker restart. Afterwards the
archive holds every number the node gave exactly once (counted in SQL against the node's own
outbox figure), a monitor with --db has no gap, and `cupola history` gives the same events
as a live `cupola monitor --json` capture."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import aiomqtt
import psycopg
import pytest

from tests.ground.relay import Relay
from tests.ground.test_archive_service import running
from tests.groundlink.brokers import BRIDGE_STATE, NODE, ground_broker, onboard_broker
from tests.groundlink.test_store_and_forward import drained, node
from tests.harness import _GROUP, cupola
from tests.tools.test_monitor_app import until
from tools.archive.service import Archive
from tools.cli import main
from tools.ground_client import GroundSession
from tools.monitor.app import MonitorApp
from tools.monitor.view import NodeView

pytestmark = pytest.mark.long


def archived(db: str) -> tuple[int, int, int, int]:
    """(rows, distinct seqs, lowest, highest) of the node's stream in the archive."""
    with psycopg.connect(db) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM cupola_stream"
            " WHERE node = %s",
            (NODE,),
        ).fetchone()
    assert row is not None
    return row[0], row[1], row[2] or 0, row[3] or 0


def events_of(lines: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """seq -> the event as sent, once each (a capture may hold a resend twice)."""
    return {m["seq"]: m for m in lines if m.get("kind") == "event" and m.get("seq") is not None}


def same_event(a: dict[str, Any], b: dict[str, Any]) -> bool:
    keep = ("v", "node", "kind", "seq", "body")
    same = all(a.get(k) == b.get(k) for k in keep)
    return same and bool(a.get("historical")) == bool(b.get("historical")) and abs(
        a["ts"] - b["ts"]) < 1e-5  # fmt: skip


async def test_two_archives_two_monitors_los_and_a_broker_restart(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.time()
    ground = ground_broker(tmp_path).start()
    relay = await Relay(ground.port).start()
    onboard = onboard_broker(tmp_path, ground, ca=None)
    onboard.extra_config = onboard.extra_config.replace(  # the bridge, through the relay
        f"address 127.0.0.1:{ground.port}", f"address 127.0.0.1:{relay.port}"
    )
    onboard.start()
    daemon_url = f"mqtt://iss-film:{onboard.users['iss-film']}@127.0.0.1:{onboard.port}"
    crew_url = f"mqtt://crew-laptop:{onboard.users['crew-laptop']}@127.0.0.1:{onboard.port}"

    def login(user: str) -> str:
        return f"mqtt://{user}:{ground.users[user]}@127.0.0.1:{ground.port}"

    capture = tmp_path / "capture.jsonl"
    json_monitor = _GROUP.start(
        "json monitor", cupola("monitor", "--json", "--broker", login("ground-monitor"),
                               "--node", NODE),
        stdout=capture.open("wb"), stderr=subprocess.DEVNULL,
    )  # fmt: skip
    view = NodeView(NODE)
    screen = MonitorApp(view, url=login("ground-monitor"), archive_url=db, client_id="m-e2e")
    one = Archive(login("ground-archive"), db, client_id="archive-1")
    two = Archive(login("ground-archive"), db, client_id="archive-2")
    try:
        async with (
            running(one), running(two),
            screen.run_test(size=(160, 48)) as pilot,
            node(tmp_path, daemon_url, mqtt={"bridge_state_topic": BRIDGE_STATE}) as (_, _, keys),
            GroundSession(login("ground-fc"), NODE, key=keys.flight, client_id="fc",
                          persistent=True) as fc,
            GroundSession(crew_url, NODE) as crew,
        ):  # fmt: skip
            await fc.wait_for(lambda: fc.online("key"), 60, "online through the bridge")
            await until(pilot, lambda: view.sequence.last_seq > 20, "the stream, on the monitor",
                        60)  # fmt: skip

            await relay.cut()  # loss of signal: station and ground apart, the ground still up

            def onboard_says(name: str) -> bool:
                return any(m.kind == "event" and m.body["name"] == name for _, m in crew.local)

            await crew.wait_for(lambda: onboard_says("ground.link_down"), 30, "link down")
            await asyncio.sleep(1.0)  # the outage lasts; the node queues in its outbox
            await relay.start()

            ground.restart()  # the ground broker itself: every session comes back from its file
            async with asyncio.timeout(90):
                while True:  # until the console is back on the broker and the node drained
                    try:
                        await drained(fc)
                        break
                    except aiomqtt.MqttError:
                        await asyncio.sleep(0.2)
            outbox = (await fc.command("health"))["result"]["outbox"]  # the node's own account
            target = outbox["last_seq"]  # every number it has given so far
            await until(pilot, lambda: archived(db)[3] >= target, "the archives, caught up", 60)
            await until(pilot, lambda: view.sequence.last_seq >= target, "the monitor, caught up",
                        60)  # fmt: skip
            await until(pilot, lambda: not view.sequence.gaps, "the monitor, with no gap", 60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            json_monitor.send_signal(signal.SIGINT)
        json_monitor.wait(10)
        onboard.stop()
        await relay.cut()
        ground.stop()

    rows, distinct, lowest, highest = archived(db)
    assert rows == distinct == highest - lowest + 1 and lowest == 1, (rows, distinct, lowest,
                                                                       highest)  # fmt: skip
    assert highest >= target  # every number the node had given when it was drained
    assert fc.historical_flags_correct()

    status = main(["history", "events", "--db", db, "--node", NODE, "--json",
                   "--since", str(started - 60), "--until", str(time.time() + 60)])  # fmt: skip
    out = capsys.readouterr().out
    assert status == 0
    history = events_of([json.loads(line) for line in out.splitlines()])
    lines = [json.loads(line) for line in capture.read_text().splitlines()]
    live = events_of([entry["message"] for entry in lines if "message" in entry])
    assert live and set(live) == set(history)
    assert all(same_event(live[seq], history[seq]) for seq in live)
    assert any(m.get("historical") for m in history.values())  # the backlog after the gap
