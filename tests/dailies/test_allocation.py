"""The bulk allocation: over random contact schedules, allocations, file sizes and daemon
crashes, no window ever carries more than its grant, no day more than its allocation, and a
window with files waiting uses at least 90 % of its grant."""

from __future__ import annotations

import datetime
from collections import defaultdict
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_host.budget.downlink import ContactWindow, DownlinkBudget
from firmware_host.dailies.allocation import BulkAllocator

MIDNIGHT = datetime.datetime(2026, 11, 27, tzinfo=datetime.UTC).timestamp()


@st.composite
def schedules(draw: st.DrawFn) -> list[ContactWindow]:
    windows, second = [], draw(st.floats(0, 20_000))
    for _ in range(draw(st.integers(1, 5))):
        duration = draw(st.floats(60, 1200))
        if second + duration > 86_000:
            break
        windows.append(ContactWindow(second, duration))
        second += duration + draw(st.floats(1, 15_000))
    return windows


@settings(max_examples=60, deadline=None)
@given(
    windows=schedules(),
    allocation=st.floats(2e5, 2e7),
    link=st.floats(2e3, 5e5),
    files=st.lists(st.integers(1, 5_000_000), min_size=1, max_size=8),
    chunk=st.sampled_from([1024, 4096, 16_384]),
    crashes=st.lists(st.floats(0, 86_400), max_size=4),
)
def test_no_window_spends_beyond_its_grant(
    *,
    windows: list[ContactWindow],
    allocation: float,
    link: float,
    files: list[int],
    chunk: int,
    crashes: list[float],
) -> None:
    now = [MIDNIGHT]
    saved: list[dict[str, Any]] = []

    def build(proxies_today: float) -> BulkAllocator:
        budget = DownlinkBudget(bytes_per_day=allocation, windows=windows, link_bytes_per_s=link,
                                proxy_kbps=1.0, clock=lambda: now[0])  # fmt: skip
        budget.proxies_today = proxies_today  # what the ledger last had (it may lag)
        return BulkAllocator(budget, clock=lambda: now[0], save=saved.append,
                             saved=saved[-1] if saved else None)  # fmt: skip

    allocator = build(0.0)
    crash_at = sorted(MIDNIGHT + c for c in crashes)
    backlog = sum(files)
    by_window: dict[float, float] = defaultdict(float)
    grants: dict[float, float] = {}
    busy_through: dict[float, bool] = {}  # a window whose end came with files still waiting
    end_of_day = MIDNIGHT + 86_400
    while now[0] < end_of_day and backlog > 0:
        if crash_at and now[0] >= crash_at[0]:
            crash_at.pop(0)
            allocator = build(0.0)  # kill -9: the ledger lost today's figure
        size = min(chunk, backlog)
        if allocator.try_spend(size):
            grant = allocator.current
            assert grant is not None
            grants.setdefault(grant.start, grant.grant)
            by_window[grant.start] += size
            backlog -= size
            continue
        if allocator.current is not None:
            busy_through[allocator.current.start] = True
        now[0] = min(now[0] + allocator.wait_s(size), end_of_day)
    for start, spent in by_window.items():
        assert spent <= grants[start] + 1e-6, (start, spent, grants[start])
    assert sum(by_window.values()) <= allocation + 1e-6
    if not crashes:
        last = [allocator.current] if allocator.current is not None else []
        for record in [*allocator.history, *last]:
            enough = record.grant >= 20 * chunk and busy_through.get(record.start)
            if enough and backlog > 0:
                assert record.spent >= 0.9 * record.grant, (record.spent, record.grant)


def test_nothing_is_spent_outside_the_windows_and_each_window_gets_its_share() -> None:
    now = [MIDNIGHT + 3600]
    windows = [ContactWindow(7200, 600), ContactWindow(36_000, 1200)]
    budget = DownlinkBudget(bytes_per_day=3_000_000, windows=windows, link_bytes_per_s=1e6,
                            proxy_kbps=1.0, clock=lambda: now[0])  # fmt: skip
    allocator = BulkAllocator(budget, clock=lambda: now[0])
    assert not allocator.try_spend(1) and allocator.rate() == 0
    assert allocator.wait_s(1) == 3600  # until the first window opens
    now[0] = MIDNIGHT + 7200
    assert allocator.try_spend(1) is False  # the bucket starts empty
    grant = allocator.current
    assert grant is not None and round(grant.grant) == 1_000_000  # 600 s of 1800 s left today
    assert round(allocator.rate()) == round(1_000_000 / 600)
    now[0] += 600 - 1e-6
    spent = 0
    while allocator.try_spend(4096):
        spent += 4096
    assert spent <= 1_000_000
    assert budget.used_today() == spent
