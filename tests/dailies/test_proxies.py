"""Proxies: made from the verified copy once offloaded, sized to what is left of the day,
recorded in the MHL, queued for the ground first."""

from __future__ import annotations

import asyncio
import datetime
import os
import shutil
from pathlib import Path

import pytest

from firmware_host.budget.downlink import DownlinkBudget
from firmware_host.budget.ledger import BudgetLedger
from firmware_host.dailies.allocation import BulkAllocator
from firmware_host.dailies.downlink import FileQueue, FileSender
from firmware_host.dailies.hashing import xxh64_file
from firmware_host.dailies.index import OffloadIndex
from firmware_host.dailies.mhl import history_hashes
from firmware_host.dailies.offload import offload_card
from firmware_host.dailies.proxies import ProxyMaker
from firmware_host.events import Event, EventBus
from firmware_host.workflow.shotlog import ShotLog
from tests.dailies.cards import TEN_HOURS, clip, render_card

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
NOON = datetime.datetime(2026, 11, 27, 12, tzinfo=datetime.UTC).timestamp()


def _maker(tmp_path: Path, budget: DownlinkBudget) -> tuple[ProxyMaker, list[Event], ShotLog]:
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe(events.append)
    shotlog = ShotLog(tmp_path / "shotlog.db")
    sender = FileSender(FileQueue(tmp_path / "downlink.db"),
                        BulkAllocator(budget, clock=lambda: NOON), _never, lambda: False,
                        bus)  # fmt: skip
    maker = ProxyMaker(store=tmp_path / "store", index=OffloadIndex(tmp_path / "offload.db"),
                       shotlog=shotlog, sender=sender, budget=budget,
                       ledger=BudgetLedger(tmp_path / "budget.db"), bus=bus, chunk_bytes=4096,
                       max_kbps=300, height=90)  # fmt: skip
    return maker, events, shotlog


async def _never(leaf: str, payload: bytes, qos: int) -> bool:
    return False


def test_the_proxy_size_follows_what_is_left_of_the_day(tmp_path: Path) -> None:
    budget = DownlinkBudget(bytes_per_day=1e9, windows=[], link_bytes_per_s=1e6, proxy_kbps=1,
                            clock=lambda: NOON)  # fmt: skip
    maker, _, _ = _maker(tmp_path, budget)
    assert maker.kbps(10.0) == 300  # plenty left: the configured most
    budget.proxies_today = 1e9 - 100_000  # 100 kB left: half of it over 10 s
    assert maker.kbps(10.0) == pytest.approx(100_000 * 0.5 * 8 / 1000 / 10)
    budget.proxies_today = 1e9
    assert maker.kbps(10.0) == 16  # never nothing: the smallest watchable proxy


def _circled_take(tmp_path: Path, shotlog: ShotLog) -> tuple[int, Path]:
    """A 2 s take of cam-a's clip 1, its card rendered (not offloaded): (take id, card)."""
    take_id = shotlog.take_started(scene="3", take=1, roll="A001", start_frame=TEN_HOURS,
                                   frame_rate=25.0, clips={"cam-a": 1}, settings={})  # fmt: skip
    shotlog.clip_closed("cam-a", 1, TEN_HOURS + 50, 50, 1)
    card = tmp_path / "cards" / "cam-a"
    render_card(card, "cam-a", [clip(1, scene="3", frames=50)])
    return take_id, card


def test_a_circled_take_gets_a_proxy_once_its_clip_is_offloaded(tmp_path: Path) -> None:
    budget = DownlinkBudget(bytes_per_day=1e9, windows=[], link_bytes_per_s=1e6, proxy_kbps=1,
                            clock=lambda: NOON)  # fmt: skip
    maker, events, shotlog = _maker(tmp_path, budget)
    take_id, card = _circled_take(tmp_path, shotlog)
    maker.request(take_id, 2.0)

    async def make() -> None:
        await maker._make(take_id)  # not offloaded yet: nothing to make it from

    asyncio.run(make())
    assert maker.waiting == {take_id: 2.0} and not events
    offload_card(card, "cam-a", tmp_path / "store", maker.index)
    asyncio.run(make())
    proxy = tmp_path / "store" / "proxies" / "cam-a" / "A001C001_proxy.mp4"
    assert proxy.is_file() and maker.waiting == {}
    (made,) = [e for e in events if e.name == "proxy.made"]
    assert made.data["kbps"] == 300
    assert history_hashes(tmp_path / "store")["proxies/cam-a/A001C001_proxy.mp4"] == xxh64_file(
        proxy
    )
    (queued,) = maker.sender.files.values()
    assert queued.meta.xxh64 == xxh64_file(proxy) and queued.priority == 0
    assert queued.meta.take_id == take_id and queued.meta.folder == "cam-a"
    again = ProxyMaker(store=maker.store, index=maker.index, shotlog=shotlog,
                       sender=maker.sender, budget=budget, ledger=maker.ledger, bus=EventBus(),
                       chunk_bytes=4096, max_kbps=300, height=90)  # fmt: skip
    assert again.waiting == {}  # made: a restart does not make it twice


def _proxy_requested(tmp_path: Path) -> tuple[ProxyMaker, list[Event], int]:
    """A circled take whose clip is offloaded, its proxy requested: (maker, events, take id)."""
    budget = DownlinkBudget(bytes_per_day=1e9, windows=[], link_bytes_per_s=1e6, proxy_kbps=1,
                            clock=lambda: NOON)  # fmt: skip
    maker, events, shotlog = _maker(tmp_path, budget)
    take_id, card = _circled_take(tmp_path, shotlog)
    offload_card(card, "cam-a", tmp_path / "store", maker.index)
    maker.request(take_id, 2.0)
    return maker, events, take_id


def test_the_transcode_runs_at_the_lowest_cpu_priority(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At the daemon's own priority a transcode takes the CPU from its polls
    (firmware_host/dailies/background.py): ffmpeg, as started, says how nice it is."""
    shim, said = tmp_path / "bin", tmp_path / "niceness"
    shim.mkdir()
    (shim / "ffmpeg").write_text(f'#!/bin/sh\nnice > {said}\nexec {shutil.which("ffmpeg")} "$@"\n')
    (shim / "ffmpeg").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim}:{os.environ['PATH']}")
    maker, events, take_id = _proxy_requested(tmp_path)
    asyncio.run(maker._make(take_id))
    assert [e.name for e in events if e.name.startswith("proxy.")] == ["proxy.made"]
    assert said.read_text().strip() == "19"


def test_without_ffmpeg_the_take_keeps_waiting_for_its_proxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ffmpeg missing (not installed, mid-upgrade, not on the service's PATH) is not a failed
    transcode: the take is not given up, and its proxy is made once ffmpeg is back."""
    maker, events, take_id = _proxy_requested(tmp_path)
    path = os.environ["PATH"]
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="ffmpeg"):
        asyncio.run(maker._make(take_id))
    assert maker.waiting == {take_id: 2.0} and not events
    monkeypatch.setenv("PATH", path)
    asyncio.run(maker._make(take_id))
    assert [e.name for e in events if e.name.startswith("proxy.")] == ["proxy.made"]
