"""The archive against PostgreSQL: each seq once, whoever writes it and however often."""

from __future__ import annotations

import asyncio

import psycopg

from protocols import ground
from tests.ground.node_messages import NODE, T0, birth, stream_message
from tools.archive.rows import SessionRow, StreamRow, Streams, moment
from tools.archive.writer import Writer


def rows(seqs: range, day_s: float = 0.0) -> list[StreamRow | SessionRow]:
    streams = Streams()
    out: list[StreamRow | SessionRow] = [
        streams.row(ground.topic(NODE, "birth"), birth(42, 1, T0), T0)
    ]
    for seq in seqs:
        out.append(streams.row(*stream_message(seq, T0 + seq * day_s + seq), T0 + seq))
    return out


async def _writer(db: str) -> Writer:
    return await Writer.connect(db)


def counts(db: str) -> tuple[int, int, int]:
    with psycopg.connect(db) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT (node, stream, seq)), max(seq) FROM cupola_stream"
        ).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


async def test_a_batch_written_twice_is_stored_once(db: str) -> None:
    writer = await _writer(db)
    batch = rows(range(1, 101))
    assert await writer.write(batch) == 101
    assert await writer.write(batch) == 0
    assert await writer.write(batch[40:] + rows(range(101, 121))[1:]) == 20
    assert counts(db) == (120, 120, 120)
    assert writer.duplicates == 101 + 61
    await writer.close()


async def test_two_archives_writing_at_once_store_each_seq_once(db: str) -> None:
    one, two = await _writer(db), await _writer(db)
    everything = rows(range(1, 2001))[1:]
    # Overlapping batches in opposite orders, at the same time: no duplicate, no deadlock.
    first = [everything[i : i + 200] for i in range(0, 2000, 200)]
    second = [everything[i : i + 300] for i in range(2000 - 300, -1, -300)] + [everything[:200]]

    async def feed(writer: Writer, batches: list[list[StreamRow | SessionRow]]) -> None:
        for batch in batches:
            await writer.write(batch)

    await asyncio.gather(feed(one, first), feed(two, second))
    assert counts(db) == (2000, 2000, 2000)
    assert one.written + two.written == 2000
    await one.close()
    await two.close()


async def test_each_day_has_a_partition_of_its_own(db: str) -> None:
    writer = await _writer(db)
    await writer.write(rows(range(1, 4), day_s=86400))  # three messages, three days apart
    with psycopg.connect(db) as conn:
        names = sorted(
            str(name) for (name,) in conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'cupola_stream'"
            )
        )  # fmt: skip
        plan = "\n".join(
            str(line) for (line,) in conn.execute(
                "EXPLAIN SELECT * FROM cupola_stream WHERE ts >= %s AND ts < %s",
                (moment(T0 + 86400 * 2), moment(T0 + 86400 * 2 + 3600)),
            )
        )  # fmt: skip
    assert len(names) == 3, names
    assert sum(name in plan for name in names) == 1, plan  # a query reads only its days
    await writer.close()
