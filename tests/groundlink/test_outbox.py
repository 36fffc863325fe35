"""The outbox: ordering, numbering, thinning and crash safety, without a broker."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_host.events import EventBus
from firmware_host.groundlink.outbox import EVENTS, ROUTINE, URGENT, Outbox, Pending
from firmware_host.storage_guard import StorageGuard


def drain(outbox: Outbox) -> list[tuple[int, str, bytes]]:
    out = []
    while batch := outbox.next_batch(7):
        outbox.acknowledged([row.id for row in batch])
        out += [(row.seq, row.kind, row.body) for row in batch]
    return out


def _stored(outbox: Outbox) -> int:
    """What the outbox's rows hold, summed by SQLite."""
    query = "SELECT COALESCE(SUM(LENGTH(body)), 0) FROM outbox"
    total: int = outbox.db.execute(query).fetchone()[0]
    return total


def _number(body: bytes) -> int:
    return int(body.split(b":")[1].rstrip(b"}"))


@settings(max_examples=60)
@given(
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("event"), st.integers(0, 10**6)),
            st.tuples(st.just("sample"), st.integers(0, 10**6)),
            st.tuples(st.just("send"), st.integers(1, 12)),
            st.tuples(st.just("ack"), st.integers(0, 12)),
        ),
        max_size=120,
    )
)
def test_thinning_never_touches_events_and_numbering_stays_contiguous(
    tmp_path_factory: object, ops: list[tuple[str, int]]
) -> None:
    path = tmp_path_factory.mktemp("outbox") / "outbox.db"  # type: ignore[attr-defined]
    outbox = Outbox(path, max_bytes=600)  # tiny: thinning happens all the time
    events: list[int] = []
    delivered: list[tuple[int, str, bytes]] = []
    in_flight: list[Pending] = []
    for op, value in ops:
        if op == "event":
            outbox.append("event", {"n": value}, EVENTS)
            events.append(value)
        elif op == "sample":
            outbox.append("telemetry", {"n": value}, ROUTINE)
        elif op == "send":
            in_flight = outbox.next_batch(value)
        else:
            acked, in_flight = in_flight[:value], in_flight[value:]
            outbox.acknowledged([row.id for row in acked])
            delivered += [(row.seq, row.kind, row.body) for row in acked]
        assert outbox.backlog()["bytes"] == _stored(outbox)  # the running total, thinned too
    outbox.close()
    reopened = Outbox(path, max_bytes=600)  # as after a crash
    delivered += drain(reopened)
    assert sorted(_number(b) for _, kind, b in delivered if kind == "event") == sorted(events)
    seqs = sorted(seq for seq, _, _ in delivered)
    assert seqs == list(range(1, len(seqs) + 1))  # thinned samples never had a number
    assert reopened.backlog()["messages"] == 0


def test_events_go_before_samples_and_numbers_survive_a_restart(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db", max_bytes=10**6)
    outbox.append("telemetry", {"n": 1}, ROUTINE)
    outbox.append("event", {"n": 2})
    outbox.append("telemetry", {"n": 3}, ROUTINE)
    outbox.append("result", {"n": 4})
    first = outbox.next_batch(2)  # numbered, then the process dies before the broker acks
    assert [(r.seq, r.kind) for r in first] == [(1, "event"), (2, "result")]
    stream = outbox.stream_id
    outbox.close()
    again = Outbox(tmp_path / "outbox.db", max_bytes=10**6)
    rows = drain(again)
    assert [(seq, kind) for seq, kind, _ in rows] == [
        (1, "event"),
        (2, "result"),
        (3, "telemetry"),
        (4, "telemetry"),
    ]
    assert again.next_bd_seq() == 1 and again.next_bd_seq() == 2
    assert again.stream_id == stream  # the same numbering, after a restart


def test_a_new_database_is_a_new_stream(tmp_path: Path) -> None:
    first = Outbox(tmp_path / "a.db", max_bytes=10**6)
    second = Outbox(tmp_path / "b.db", max_bytes=10**6)  # a wiped disk, say
    assert first.stream_id != second.stream_id
    assert 0 <= first.stream_id < 2**53  # exact in any JSON reader


def test_thinning_halves_the_oldest_samples_first(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db", max_bytes=10**9)
    outbox.append_many("telemetry", [{"n": n} for n in range(100)], ROUTINE)
    outbox.append("event", {"n": "important"})
    outbox.max_bytes = outbox.backlog()["bytes"] - 1
    thinned = outbox.append("telemetry", {"n": 100}, ROUTINE)
    kept = [body for _, kind, body in drain(outbox) if kind == "telemetry"]
    numbers = [_number(b) for b in kept]
    assert thinned == 25  # every other sample of the oldest half
    assert numbers[:25] == list(range(0, 50, 2)) and numbers[25:] == list(range(50, 101))
    assert outbox.backlog()["thinned"] == 25


def test_alarms_and_results_drain_before_older_events_and_samples(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db", max_bytes=10**9)
    outbox.append("telemetry", {"n": 1}, ROUTINE)
    outbox.append("event", {"n": 2}, EVENTS)
    outbox.append("event", {"n": 3}, URGENT)  # a red limit
    outbox.append("result", {"n": 4}, URGENT)
    sent = drain(outbox)
    assert [_number(body) for _, _, body in sent] == [3, 4, 2, 1]
    assert [seq for seq, _, _ in sent] == [1, 2, 3, 4]  # numbered in the order sent
    assert outbox.backlog()["messages"] == 0


def test_the_backlog_counts_alarms_and_results_as_events(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db", max_bytes=10**9)
    outbox.append("event", {"n": 1}, URGENT)
    outbox.append("event", {"n": 2}, EVENTS)
    outbox.append("telemetry", {"n": 3}, ROUTINE)
    assert outbox.backlog()["events"] == 2 and outbox.backlog()["samples"] == 1


@settings(max_examples=80)
@given(
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("event"), st.integers(0, 10**6)),
            st.tuples(st.just("soon"), st.integers(0, 10**6)),  # written as the turn ends
            st.tuples(st.just("turn"), st.just(0)),
            st.tuples(st.just("sample"), st.integers(0, 10**6)),
            st.tuples(st.just("send"), st.integers(1, 12)),
            st.tuples(st.just("ack"), st.integers(0, 12)),
            st.tuples(st.just("disk"), st.booleans()),  # False: every write refused
            st.tuples(st.just("probe"), st.just(0)),
        ),
        max_size=120,
    )
)
def test_a_disk_refusing_writes_at_any_moment_loses_and_repeats_no_event(
    tmp_path_factory: object, ops: list[tuple[str, int]]
) -> None:
    path = tmp_path_factory.mktemp("outbox") / "outbox.db"  # type: ignore[attr-defined]
    guard = StorageGuard(EventBus())
    outbox = Outbox(path, max_bytes=10**9, guard=guard)
    events: list[int] = []
    delivered: list[tuple[int, str, bytes]] = []

    async def run() -> None:
        in_flight: list[Pending] = []
        for op, value in ops:
            if op in ("event", "soon"):
                (outbox.append if op == "event" else outbox.append_soon)(
                    "event", {"n": value}, EVENTS
                )
                events.append(value)
            elif op == "turn":
                await asyncio.sleep(0)
            elif op == "sample":
                outbox.append("telemetry", {"n": value}, ROUTINE)
            elif op == "send":
                in_flight = outbox.next_batch(value)
            elif op == "ack":
                acked, in_flight = in_flight[:value], in_flight[value:]
                outbox.acknowledged([row.id for row in acked])
                delivered.extend((row.seq, row.kind, row.body) for row in acked)
            elif op == "disk":
                outbox.db.execute(f"PRAGMA query_only = {0 if value else 1}")
            else:
                guard.probe()
        outbox.db.execute("PRAGMA query_only = 0")

    asyncio.run(run())
    assert guard.probe()
    assert outbox.backlog()["held"] == 0
    assert outbox.backlog()["bytes"] == _stored(outbox)  # through refused writes and deletes
    outbox.close()
    reopened = Outbox(path, max_bytes=10**9)  # as after a restart
    delivered += drain(reopened)
    # every event once, in the order queued (immediately or as its turn ended)
    assert [_number(b) for _, kind, b in sorted(delivered) if kind == "event"] == events
    seqs = sorted(seq for seq, _, _ in delivered)
    assert seqs == list(range(1, len(seqs) + 1))  # contiguous, none given twice


def _transactions(outbox: Outbox) -> list[str]:
    """Every transaction the outbox opens from now on."""
    begun: list[str] = []
    outbox.db.set_trace_callback(lambda sql: begun.append(sql) if sql.startswith("BEGIN") else None)
    return begun


def test_messages_queued_in_one_turn_of_the_loop_are_written_in_one_transaction(
    tmp_path: Path,
) -> None:
    outbox = Outbox(tmp_path / "outbox.db", max_bytes=10**9)
    begun = _transactions(outbox)

    async def one_turn() -> list[Pending]:
        for n in range(64):  # 64 devices online in the same turn
            outbox.append_soon("event", {"n": n}, EVENTS)
        assert begun == []  # nothing written yet: the turn is not over
        await asyncio.sleep(0)
        assert len(begun) == 1
        return outbox.next_batch(100)

    batch = asyncio.run(one_turn())
    assert [_number(row.body) for row in batch] == list(range(64))


def test_what_reads_the_outbox_sees_what_was_queued_before_it(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db", max_bytes=10**9)

    async def same_turn() -> None:
        outbox.append_soon("event", {"n": 1}, EVENTS)
        outbox.append("telemetry", {"n": 2}, EVENTS)  # written at once, after the queued one
        assert outbox.backlog()["messages"] == 2
        assert [_number(row.body) for row in outbox.next_batch(10)] == [1, 2]

    asyncio.run(same_turn())


def test_draining_and_thinning_a_large_backlog_never_sorts_it(tmp_path: Path) -> None:
    """Each batch reads the unsent rows in order from their index: a plan that sorts the whole
    backlog costs every batch more the longer the loss of signal was (10 ms a batch at 30,000)."""
    outbox = Outbox(tmp_path / "outbox.db", max_bytes=2_000_000)
    outbox.append_many("telemetry", [{"n": n} for n in range(5_000)], ROUTINE)
    statements: list[str] = []
    outbox.db.set_trace_callback(statements.append)
    batch = outbox.next_batch(100)
    outbox.acknowledged([row.id for row in batch])
    outbox.max_bytes = 1_000  # far over it: thinning runs
    outbox.append("telemetry", {"n": -1}, ROUTINE)
    outbox.db.set_trace_callback(None)
    selects = [sql for sql in statements if sql.lstrip().upper().startswith("SELECT")]
    assert any("seq IS NULL" in sql for sql in selects)  # the numbering and the thinning ran
    for sql in selects:
        if "outbox" not in sql:
            continue
        plan = " / ".join(row[3] for row in outbox.db.execute(f"EXPLAIN QUERY PLAN {sql}"))
        assert "TEMP B-TREE" not in plan, (sql, plan)
        assert "sqlite_autoindex" not in plan or "seq>" in plan, (sql, plan)


def test_the_backlog_counts_what_is_stored_without_sorting_the_bodies(tmp_path: Path) -> None:
    """A birth, a link notice and every telemetry sample report the backlog. Grouped together
    with the bodies' lengths, SQLite sorted the bodies themselves: 150 ms with the event loop
    stopped, on a full 64 MB outbox after a long loss of signal."""
    outbox = Outbox(tmp_path / "outbox.db", max_bytes=10**9)
    outbox.append_many("telemetry", [{"n": "x" * n} for n in range(300)], ROUTINE)
    outbox.append_many("event", [{"e": n} for n in range(40)], EVENTS)
    outbox.append_many("alarm", [{"a": n} for n in range(7)], URGENT)
    outbox.acknowledged([row.id for row in outbox.next_batch(25)])
    statements: list[str] = []
    outbox.db.set_trace_callback(statements.append)
    backlog = outbox.backlog()
    outbox.db.set_trace_callback(None)
    by_priority = dict(
        outbox.db.execute("SELECT priority, COUNT(*) FROM outbox GROUP BY priority").fetchall()
    )
    assert backlog["messages"] == sum(by_priority.values()) == 300 + 40 + 7 - 25
    assert backlog["events"] == by_priority.get(EVENTS, 0) + by_priority.get(URGENT, 0)
    assert backlog["samples"] == by_priority[ROUTINE]
    assert backlog["bytes"] == _stored(outbox)
    for sql in statements:
        plan = " / ".join(row[3] for row in outbox.db.execute(f"EXPLAIN QUERY PLAN {sql}"))
        assert "TEMP B-TREE" not in plan or "body" not in sql, (sql, plan)
