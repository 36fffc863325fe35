"""The archive in PostgreSQL, in one run.

- ingest: the nominal scenario's stream messages (events, samples, results), renumbered to
  N, through the archive's own path (decode, row, COPY into staging, INSERT ... ON CONFLICT
  DO NOTHING, batches of 500, a commit each), against a bare COPY of the same rows into the
  same table: batched and committed alike, and as one COPY in one transaction (the floor);
- history: one day of a 64-device node sampling at 1 Hz (86,400 samples, a 64-device body
  each, plus an event a minute), then `cupola history`'s queries over that day.

Needs a PostgreSQL server: the machine's on 127.0.0.1:5432, else a private one (hil/postgres.py);
a database of its own, dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import msgspec
import psycopg

from bench.machine import describe
from hil.postgres import session_database
from tools.archive.history import Query, fetch
from tools.archive.rows import Row, Streams, moment
from tools.archive.writer import STREAM_COLUMNS, Writer

CAPTURE = Path(__file__).resolve().parents[1] / "tests" / "tools" / "captures" / "nominal.jsonl"
MESSAGES = 30_000
BATCH = 500
T0 = 1_795_478_400.0  # 2026-11-24 00:00 UTC
DAY = 86_400
DEVICES = 64


def stream_payloads(count: int) -> list[tuple[str, bytes]]:
    """`count` stream messages cycled from the capture, numbered 1..count, 10 ms apart."""
    kept = []
    for line in CAPTURE.read_text().splitlines():
        entry = json.loads(line)
        message = entry.get("message") or {}
        if message.get("seq") is not None:
            kept.append((entry["topic"], message))
    out = []
    for index in range(count):
        topic, message = kept[index % len(kept)]
        renumbered = {**message, "seq": index + 1, "ts": T0 + index * 0.01}
        out.append((topic, msgspec.json.encode(renumbered)))
    return out


async def reset(db: str) -> None:
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
        await conn.execute(
            "DROP TABLE IF EXISTS cupola_stream, cupola_session, cupola_alarm_action CASCADE"
        )


async def archive_path(db: str, payloads: list[tuple[str, bytes]]) -> float:
    await reset(db)
    writer = await Writer.connect(db)
    streams = Streams()
    started = time.perf_counter()
    for at in range(0, len(payloads), BATCH):
        rows: list[Row] = [
            streams.row(topic, payload, T0) for topic, payload in payloads[at : at + BATCH]
        ]
        await writer.write(rows)
    elapsed = time.perf_counter() - started
    assert writer.written == len(payloads)
    await writer.close()
    return elapsed


async def bare_copy(db: str, values: list[tuple[Any, ...]], batch: int) -> float:
    """COPY straight into the (partitioned) table: no decoding, no staging, no conflict check."""
    await reset(db)
    writer = await Writer.connect(db)  # the same tables and partitions, made ready
    async with writer.conn.transaction():
        await writer.partitions.ensure(writer.conn, "cupola_stream", {values[0][4].date()})
    started = time.perf_counter()
    for at in range(0, len(values), batch):
        statement = f"COPY cupola_stream ({STREAM_COLUMNS}) FROM STDIN"
        async with (
            writer.conn.transaction(),
            writer.conn.cursor() as cur,
            cur.copy(statement) as copy,
        ):
            for row in values[at : at + batch]:
                await copy.write_row(row)
    elapsed = time.perf_counter() - started
    await writer.close()
    return elapsed


async def ingest(db: str, messages: int = MESSAGES) -> None:
    payloads = stream_payloads(messages)
    streams = Streams()
    values = [streams.row(topic, payload, T0).values() for topic, payload in payloads]
    ours = await archive_path(db, payloads)
    same = await bare_copy(db, values, BATCH)
    floor = await bare_copy(db, values, len(values))
    print(f"Archive ingest: {messages:,} stream messages from the nominal capture")
    for name, seconds in (("archive (decode, COPY, idempotent)", ours),
                          (f"bare COPY, batches of {BATCH}", same),
                          ("bare COPY, one transaction", floor)):  # fmt: skip
        print(f"  {name:40s} {messages / seconds:10,.0f} msg/s   "
              f"archive/this {seconds / ours:5.2f}x")  # fmt: skip


def sample_body() -> str:
    devices: dict[str, dict[str, Any]] = {
        f"dev-{i:02d}": {
            "online": True, "state": "RECORDING" if i % 3 == 0 else "IDLE",
            "timecode": "10:00:00:00", "temperature_cdeg": 2500 + i, "draw_mw": 9000 + i,
            "media_used_bytes": 10**11 + i, "media_free_bytes": 10**12 - i,
            "faults": [],
        } for i in range(DEVICES)
    }  # fmt: skip
    return json.dumps({
        "ts": 0, "devices": devices,
        "power": {"cap_w": 1000.0, "draw_w": 600.0, "free_w": 400.0, "shedding": False,
                  "reserve_w": 50.0, "next_change": None},
        "data": {}, "backlog": {"messages": 0, "bytes": 0}, "limits": [],
    })  # fmt: skip


# One sample a second for a day; every sample's numbers differ (a sine and the second), so
# PostgreSQL's compression of the bodies is not flattered by identical rows.
FILL_DAY = """
INSERT INTO cupola_stream (node, stream, seq, kind, ts, received, historical, body)
SELECT 'big', 1, g, 'telemetry', to_timestamp(%(t0)s + g), to_timestamp(%(t0)s + g + 0.2), false,
       jsonb_set(jsonb_set(jsonb_set(%(body)s::jsonb,
           '{ts}', to_jsonb(%(t0)s + g)),
           '{power,draw_w}', to_jsonb(round((600 + 80 * sin(g / 300.0))::numeric, 1))),
           '{devices,dev-17,temperature_cdeg}', to_jsonb(2500 + (g %% 700)))
FROM generate_series(0, %(n)s - 1) AS g
"""
FILL_EVENTS = """
INSERT INTO cupola_stream (node, stream, seq, kind, ts, received, historical, body)
SELECT 'big', 1, %(n)s + g, 'event', to_timestamp(%(t0)s + g * 60 + 0.5),
       to_timestamp(%(t0)s + g * 60 + 0.7), false,
       jsonb_build_object('name', 'take.started', 'severity', 'info', 'source', 'dev-' || (g %% 64),
           'message', 'take ' || g, 'data', jsonb_build_object('take_id', g), 'ts', %(t0)s + g * 60)
FROM generate_series(0, 1439) AS g
"""


async def history_day(db: str) -> None:
    await reset(db)
    writer = await Writer.connect(db)
    async with writer.conn.transaction():
        await writer.partitions.ensure(writer.conn, "cupola_stream", {moment(T0).date()})
    await writer.close()
    with psycopg.connect(db, autocommit=True) as conn:
        started = time.perf_counter()
        conn.execute(FILL_DAY, {"t0": T0, "n": DAY, "body": sample_body()})
        conn.execute(FILL_EVENTS, {"t0": T0, "n": DAY})
        conn.execute("VACUUM ANALYZE cupola_stream")
        filled = time.perf_counter() - started
        size = conn.execute("SELECT pg_size_pretty(pg_total_relation_size("
                            "'cupola_stream_' || to_char(to_timestamp(%s) AT TIME ZONE 'UTC', "
                            "'YYYYMMDD')))", (T0,)).fetchone()  # fmt: skip
        print(f"History: one day of a {DEVICES}-device node at 1 Hz ({DAY:,} samples, 1,440 "
              f"events; {size[0] if size else '?'} on disk; filled in {filled:.1f} s)")  # fmt: skip
        queries = {
            "telemetry, 2 fields of one device, whole day": Query(
                "telemetry", "big", T0, T0 + DAY, "dev-17", ("temperature_cdeg", "power.draw_w")),
            "telemetry, 1 field, one hour": Query(
                "telemetry", "big", T0 + 3600 * 12, T0 + 3600 * 13, None, ("power.draw_w",)),
            "events, whole day": Query("events", "big", T0, T0 + DAY),
            "events of one device, whole day": Query("events", "big", T0, T0 + DAY, "dev-17"),
        }  # fmt: skip
        for name, query in queries.items():
            times, rows = [], 0
            for _ in range(3):
                started = time.perf_counter()
                rows = len(fetch(conn, query))
                times.append(time.perf_counter() - started)
            print(f"  {name:48s} {rows:7,d} rows   best {min(times) * 1000:8.1f} ms   "
                  f"worst {max(times) * 1000:8.1f} ms")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3,000 messages, no day of history")
    args = parser.parse_args(argv)
    print(describe())
    with session_database() as db:
        asyncio.run(ingest(db, 3_000 if args.quick else MESSAGES))
        if not args.quick:
            asyncio.run(history_day(db))


if __name__ == "__main__":
    main()
