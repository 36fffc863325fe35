"""`cupola archive`: every node message into PostgreSQL, none lost, none twice.

The archive keeps a persistent broker session under a fixed client id and acknowledges each
message (QoS 1 PUBACK) only after the batch holding it is committed: a message the archive
has not stored stays the broker's, redelivered when the archive (or the broker) returns.
A redelivery, a node's resend, or another archive writing the same message all land on the
same primary key and are dropped by the database, so any number of archives may share one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path

import aiomqtt
import paho.mqtt.client as mqtt
import psycopg
from psycopg.rows import TupleRow

from protocols import alarms, ground
from tools.archive.rows import SESSION_KINDS, Rejected, Row, Streams
from tools.archive.writer import Writer
from tools.broker_link import broker_client

log = logging.getLogger(__name__)

BATCH = 500  # rows per transaction at most
IDLE_S = 0.02  # a batch is written once the broker has sent nothing for this long...
MAX_AGE_S = 0.25  # ...or once its first message has waited this long
DB_RETRY_S = (0.2, 5.0)  # back-off between attempts to reach the database: first, most


def topics(node: str) -> list[str]:
    """What the archive keeps: the node's own messages to the ground (not commands, not
    local/), and the consoles' alarm acknowledgements and shelves."""
    leaves = [*ground.STREAM_KINDS, *SESSION_KINDS]
    return [*(ground.topic(node, leaf, "+") if leaf == ground.STATE else ground.topic(node, leaf)
              for leaf in leaves), alarms.subscription(node)]  # fmt: skip


async def latest_streams(conn: psycopg.AsyncConnection[TupleRow]) -> dict[str, int]:
    """Each node's stream as of its latest archived birth."""
    cur = await conn.execute(
        "SELECT DISTINCT ON (node) node, stream FROM cupola_session"
        " WHERE topic = 'birth' AND stream IS NOT NULL ORDER BY node, ts DESC"
    )
    return {str(node): int(stream) for node, stream in await cur.fetchall()}


class Archive:
    def __init__(
        self,
        broker_url: str,
        db_url: str,
        *,
        client_id: str,
        node: str = "+",
        ca_file: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.broker_url = broker_url
        self.db_url = db_url
        self.client_id = client_id
        self.node = node
        self.ca_file = ca_file
        self.clock = clock
        self.rejected = 0
        self.writer: Writer | None = None
        self.streams = Streams()
        self.broker_up = asyncio.Event()

    async def run(self) -> None:
        """Until cancelled: reconnects to the broker and the database on its own."""
        await self._database()
        backoff = 0.1
        try:
            while True:
                try:
                    await self._session()
                except aiomqtt.MqttError as exc:
                    log.warning("archive: broker: %s; retrying in %.1f s", exc, backoff)
                finally:
                    self.broker_up.clear()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
        finally:
            if self.writer is not None:
                await self.writer.close()

    async def _database(self) -> Writer:
        """A working writer: connects (again) until the database answers."""
        if self.writer is not None and not self.writer.conn.closed:
            return self.writer
        wait = DB_RETRY_S[0]
        while True:
            try:
                self.writer = await Writer.connect(self.db_url)
                self.streams.current.update(await latest_streams(self.writer.conn))
            except psycopg.OperationalError as exc:
                log.warning("archive: database: %s; retrying in %.1f s",
                            str(exc).strip().splitlines()[0], wait)  # fmt: skip
                await asyncio.sleep(wait)
                wait = min(wait * 2, DB_RETRY_S[1])
            else:
                log.info("archive: writing to %s", self.writer.conn.info.dbname)
                return self.writer

    async def _session(self) -> None:
        client = broker_client(self.broker_url, self.ca_file, self.client_id, clean=False)
        # PUBACK after the commit, not on receipt: aiomqtt has no switch for it, paho has.
        paho = client._client
        paho.manual_ack_set(True)
        async with client:
            for name in topics(self.node):
                await client.subscribe(name, qos=1)
            self.broker_up.set()
            log.info("archive: subscribed on %s as %s", self.broker_url, self.client_id)
            batch: list[Row] = []
            mids: list[int] = []  # of every message in the batch (0: QoS 0, no PUBACK due)
            first_at = 0.0
            messages = aiter(client.messages)
            # The next message is awaited by one task that is never cancelled by a timeout:
            # cancelling a receive that had just taken its message would drop that message
            # (unacknowledged, the broker would only send it again after a reconnection).
            receiving: asyncio.Future[aiomqtt.Message] | None = None
            loop = asyncio.get_running_loop()  # a batch's age on the loop's clock
            try:
                while True:
                    wait = None
                    if mids:
                        wait = max(0.0, min(IDLE_S, first_at + MAX_AGE_S - loop.time()))
                    if receiving is None:
                        receiving = asyncio.ensure_future(anext(messages))
                    done, _ = await asyncio.wait((receiving,), timeout=wait)
                    if not done:
                        await self._flush(paho, batch, mids)
                        continue
                    message, receiving = receiving.result(), None
                    if not mids:
                        first_at = loop.time()
                    mids.append(message.mid if message.qos else 0)
                    self._add(batch, str(message.topic), message.payload)
                    if len(mids) >= BATCH:
                        await self._flush(paho, batch, mids)
            finally:
                if receiving is not None:
                    receiving.cancel()

    async def _flush(self, paho: mqtt.Client, batch: list[Row], mids: list[int]) -> None:
        """Commit, then acknowledge: the broker keeps each message until it is stored."""
        await self._commit(batch)
        for mid in mids:
            if mid:
                paho.ack(mid, 1)
        batch.clear()
        mids.clear()

    def _add(self, batch: list[Row], topic: str, payload: object) -> None:
        if not isinstance(payload, bytes | bytearray):
            self.rejected += 1
            return
        try:
            batch.append(self.streams.row(topic, bytes(payload), self.clock()))
        except Rejected as exc:
            self.rejected += 1
            # an empty payload is a retained message removed (a cleared alarm's ack): routine
            log.log(logging.WARNING if payload else logging.DEBUG, "archive: not kept: %s", exc)

    async def _commit(self, batch: list[Row]) -> None:
        """Write until it is written: the database may be away for a while."""
        while batch:
            writer = await self._database()
            try:
                await writer.write(batch)
            except psycopg.OperationalError as exc:
                log.warning("archive: write failed (%s); reconnecting", str(exc).strip()[:200])
                await writer.close()
            else:
                return


def run_archive(broker_url: str, db_url: str, *, client_id: str, node: str,
                ca_file: Path | None) -> int:  # fmt: skip
    """Until SIGINT or SIGTERM."""

    async def main() -> None:
        archive = Archive(broker_url, db_url, client_id=client_id, node=node, ca_file=ca_file)
        task = asyncio.create_task(archive.run())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())
    return 0
