"""The data budgets at run time: media per camera, downlink per day and contact window.

Camera status keeps the media budget current; once a second what the stream actually sent is
accounted against the housekeeping allocation, proxies of circled takes take the bulk
allocation in the window, and the stream's pacer is set to the housekeeping rate, or held
(zero) when that class may not send, the ground link being told first. Crossing 80 % and
100 % of a camera's daily media share, or of the day's bulk downlink, raises one event each
per day.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import Callable
from typing import Any

from firmware_host.budget.downlink import ContactWindow, DownlinkBudget, Hold
from firmware_host.budget.ledger import BudgetLedger
from firmware_host.budget.media import MediaBudget
from firmware_host.config import DataConfig
from firmware_host.devices.agent import DeviceAgent
from firmware_host.events import EventBus
from firmware_host.groundlink.pacing import Pacer
from protocols.messages.common import Severity

TICK_S = 1.0


HOLD_LEAD_S = 2 * TICK_S  # the stream is held this early, so the ground hears it first


def _window(text: str, minutes: float) -> ContactWindow:
    hours, mins, *secs = (int(part) for part in text.split(":"))
    start = hours * 3600 + mins * 60 + sum(secs)
    return ContactWindow(start_s=start, duration_s=minutes * 60)


class DataBudgets:
    def __init__(
        self,
        config: DataConfig,
        bus: EventBus,
        pacer: Pacer,
        *,
        clock: Callable[[], float] = time.time,
        ledger: BudgetLedger | None = None,
        on_hold: Callable[[Hold | None], None] = lambda _: None,
    ) -> None:
        self.ledger = ledger
        self.proxy_sink: Callable[[int, float], None] | None = None
        start = config.shoot_start or self._first_day(clock)
        self.bus = bus
        self.pacer = pacer
        self.on_hold = on_hold
        self.media = MediaBudget(
            take_fit=config.take_fit, shoot_days=config.shoot_days, shoot_start=start, clock=clock
        )
        self.downlink = DownlinkBudget(
            bytes_per_day=config.downlink_gb_per_day * 1e9,
            windows=[_window(c.start, c.minutes) for c in config.contact],
            link_bytes_per_s=config.link_mbps * 1e6 / 8,
            proxy_kbps=config.proxy_kbps,
            housekeeping_bytes_per_s=_bytes_per_s(config.housekeeping.kbps),
            housekeeping_bytes_per_day=_mb(config.housekeeping.mb_per_day),
            housekeeping_windowed=config.housekeeping.windowed,
            clock=clock,
        )
        self._spent = pacer.spent
        self._levels: dict[str, str] = {}
        # each camera's last reading taken in (card, bitrate, estimated, day): a camera not
        # recording reads the same at every poll, and taking a reading in again changes nothing
        self._last_reading: dict[str, tuple[int, int, int, bool, datetime.date]] = {}
        self._saved_day_start: dict[str, float] = {}
        self._saved_downlink: dict[str, Any] = {}
        if ledger is not None:
            downlink = ledger.get("data.downlink")
            if downlink is not None:
                self.downlink.restore(downlink)
            media = ledger.get("data.media_day_start")
            if media is not None:
                day = datetime.date.fromisoformat(media["day"])
                self.media.restore_day_start(day, media["used"])
        self.apply_link_class()

    def _first_day(self, clock: Callable[[], float]) -> datetime.date:
        """The shoot began the day the daemon first ran, not the day it last restarted."""
        saved = self.ledger.get("data.shoot_start") if self.ledger else None
        if saved is not None:
            return datetime.date.fromisoformat(saved)
        today = datetime.datetime.fromtimestamp(clock(), datetime.UTC).date()
        if self.ledger is not None:
            self.ledger.put("data.shoot_start", today.isoformat())
        return today

    def on_device_update(self, agent: DeviceAgent) -> None:
        status = agent.status
        if agent.kind != "camera" or status is None or agent.camera_settings is None:
            return
        capacity = status.media_used_bytes + status.media_free_bytes
        bitrate_kbps = agent.camera_settings.bitrate_kbps
        estimated = "media" not in agent.reports  # a 9-pin deck: the daemon's estimate
        reading = (capacity, status.media_used_bytes, bitrate_kbps, estimated, self.media.today())
        if self._last_reading.get(agent.name) == reading:
            return
        self._last_reading[agent.name] = reading
        day_start_moved = self.media.observe(
            agent.name, capacity, status.media_used_bytes, bitrate_kbps, estimated=estimated
        )
        if day_start_moved and self.ledger is not None:
            day_start = self.media.day_start()
            if day_start != self._saved_day_start:
                self._saved_day_start = day_start
                self.ledger.put_soon(  # lost in a crash: the day starts from the cards then
                    "data.media_day_start",
                    {"day": self.media.today().isoformat(), "used": day_start},
                )
        level, fraction = self.media.daily_level(agent.name)
        self._level(f"media:{agent.name}", level, fraction, f"{agent.name} media today", agent.name)

    def _level(self, key: str, level: str, fraction: float, what: str, source: str) -> None:
        previous = self._levels.get(key, "ok")
        if level == previous or (level == "ok" and previous != "ok" and fraction > 0.75):
            return  # no change, or not yet clearly back (hysteresis)
        self._levels[key] = level
        budget = key.split(":", maxsplit=1)[0]
        if level == "ok":
            self.bus.emit(
                f"budget.{budget}.cleared",
                Severity.INFO,
                f"{what}: back to {fraction:.0%} of the day's share",
                source=source,
            )
            return
        severity = Severity.CRITICAL if level == "red" else Severity.WARNING
        self.bus.emit(
            f"budget.{budget}.{level}", severity,
            f"{what}: {fraction:.0%} of the day's share used", source=source,
            fraction=round(fraction, 4),
        )  # fmt: skip

    def queue_proxy(self, take_id: int, duration_s: float) -> None:
        """A circled take's proxy: made and sent for real by the dailies when configured
        (`proxy_sink`), else modelled from its duration."""
        if self.proxy_sink is not None:
            self.proxy_sink(take_id, duration_s)
            return
        self.downlink.queue_proxy(take_id, duration_s)
        self._save_downlink()

    def _save_downlink(self) -> None:
        """Write today's downlink spending when it changed, not every tick."""
        saved = self.downlink.saved()
        if self.ledger is not None and saved != self._saved_downlink:
            self._saved_downlink = saved
            self.ledger.put("data.downlink", saved)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            self.tick()

    def tick(self) -> None:
        sent = self.pacer.spent - self._spent
        self._spent = self.pacer.spent
        self.downlink.tick(sent)
        self._save_downlink()
        self.apply_link_class()
        fraction = self.downlink.fraction_used()
        level = "red" if fraction >= 1.0 else "yellow" if fraction >= 0.8 else "ok"
        self._level("downlink:day", level, fraction, "downlink today", "daemon")

    def apply_link_class(self) -> None:
        """Pace the stream to the housekeeping allocation, held (rate 0) when it may not send."""
        hold = self.downlink.housekeeping_hold(HOLD_LEAD_S)
        self.on_hold(hold)  # first: the ground hears of the hold before the stream stops
        self.pacer.set_rate(0.0 if hold is not None else self.downlink.housekeeping_rate())

    def status(self) -> dict[str, Any]:
        return {"media": self.media.status(), "downlink": self.downlink.status()}

    def summary(self) -> dict[str, Any]:
        """What the ground watches every sample: each card's time left, today's downlink."""
        downlink = self.downlink.status()
        return {
            "media": {
                camera: {k: card[k] for k in ("free_gb", "record_time_left_s", "today_level")}
                for camera, card in self.media.status()["cameras"].items()
            },
            "downlink": {
                k: downlink[k]
                for k in ("allocation_gb", "used_fraction", "in_contact", "next_window")
            },
        }


def _bytes_per_s(kbps: float | None) -> float | None:
    return None if kbps is None else kbps * 1000 / 8


def _mb(megabytes: float | None) -> float | None:
    return None if megabytes is None else megabytes * 1e6
