"""`cupola archive` on a real broker: a persistent session, acknowledged after the commit,
and any number of archives on one database."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg

from hil.broker import Mosquitto
from protocols import ground
from tests.ground.node_messages import NODE, T0, birth, stream_message
from tools.archive.service import Archive
from tools.broker_link import broker_client

DEADLINE_S = 20.0


@contextlib.asynccontextmanager
async def running(archive: Archive) -> AsyncIterator[Archive]:
    task = asyncio.create_task(archive.run())
    try:
        async with asyncio.timeout(DEADLINE_S):
            await archive.broker_up.wait()
        yield archive
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def archived(db: str, at_least: int) -> list[int]:
    """Every archived seq, once `at_least` rows are there (or the deadline passes)."""
    async with asyncio.timeout(DEADLINE_S):
        while True:
            async with await psycopg.AsyncConnection.connect(db) as conn:
                cur = await conn.execute("SELECT seq FROM cupola_stream ORDER BY seq")
                seqs = [int(seq) for (seq,) in await cur.fetchall()]
            if len(seqs) >= at_least:
                return seqs
            await asyncio.sleep(0.05)


async def publish(url: str, seqs: range) -> None:
    async with broker_client(url, None, "node-under-test") as node:
        await node.publish(ground.topic(NODE, "birth"), birth(42, 1, T0), qos=1, retain=True)
        for seq in seqs:
            await node.publish(*stream_message(seq, T0 + seq), qos=1)


async def test_two_archives_and_a_restart_keep_every_seq_once(db: str, tmp_path: Path) -> None:
    with Mosquitto(tmp_path / "broker") as broker:
        url = broker.url()
        a = Archive(url, db, client_id="archive-a")
        b = Archive(url, db, client_id="archive-b")
        async with running(b):
            async with running(a):
                await publish(url, range(1, 301))
                assert await archived(db, 300) == list(range(1, 301))
            # a is away: its broker session queues what the node sends meanwhile
            await publish(url, range(301, 601))
            again = Archive(url, db, client_id="archive-a")
            async with running(again):
                assert await archived(db, 600) == list(range(1, 601))
                async with asyncio.timeout(DEADLINE_S):  # what its session kept for it
                    while True:
                        writer = again.writer
                        if writer is not None and writer.written + writer.duplicates >= 300:
                            break
                        await asyncio.sleep(0.05)
        with psycopg.connect(db) as conn:
            births = conn.execute("SELECT count(*), max(stream) FROM cupola_session").fetchone()
            streams = conn.execute("SELECT DISTINCT stream FROM cupola_stream").fetchall()
    assert births == (1, 42)  # the retained birth, seen by three subscriptions: one row
    assert streams == [(42,)]
