"""The media budget: record time left on every card, takes that must fit, a daily share.

Media must last the whole shoot: with 2 TB per camera and ProRes-class bitrates a card holds
only hours. Each camera's record time remaining follows from its free space and current
bitrate. A take with a planned duration reserves its bytes while it rolls, so two admissions
can never promise the same free space twice (media is never overcommitted); a take that
cannot fit is refused or only warned about, by configuration. The daily share is what is
free divided over the shoot days left; crossing 80 % and 100 % of it in a day raises one
yellow and one red event.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

_DAY_S = 86400
_EPOCH_DAY = datetime.date(1970, 1, 1)


@dataclass
class CardState:
    capacity: float
    used: float
    bitrate_kbps: int
    reserved: float = 0.0  # planned bytes of the take rolling now, not yet recorded
    used_at_day_start: float | None = None
    estimated: bool = False  # the camera does not report its media: bitrate x recorded time

    @property
    def byte_rate(self) -> float:
        return self.bitrate_kbps * 1000 / 8

    @property
    def free(self) -> float:
        return max(0.0, self.capacity - self.used - self.reserved)


@dataclass(frozen=True)
class TakeFit:
    allowed: bool
    warnings: list[str] = field(default_factory=list)
    reason: str = ""


class MediaBudget:
    def __init__(
        self,
        *,
        take_fit: Literal["refuse", "warn"],
        shoot_days: int,
        shoot_start: datetime.date,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.take_fit = take_fit
        self.shoot_days = shoot_days
        self.shoot_start = shoot_start
        self.clock = clock
        self.cards: dict[str, CardState] = {}
        self._today_number: int | None = None
        self._today = _EPOCH_DAY
        self._day = self.today()
        self.daily_levels: dict[str, str] = {}  # camera -> "ok" | "yellow" | "red"
        self._known_day_start: dict[str, float] = {}  # restored after a restart, same day

    def restore_day_start(self, day: datetime.date, used: dict[str, float]) -> None:
        """What each card held when today began, as saved before a restart."""
        if day == self._day:
            self._known_day_start = dict(used)

    def day_start(self) -> dict[str, float]:
        return {
            name: card.used_at_day_start
            for name, card in self.cards.items()
            if card.used_at_day_start is not None
        }

    def today(self) -> datetime.date:
        """The UTC date now. Asked at every camera poll: the date is worked out again only
        when the day number (whole days since the epoch) changes."""
        number = int(self.clock() // _DAY_S)
        if number != self._today_number:
            self._today_number = number
            self._today = _EPOCH_DAY + datetime.timedelta(days=number)
        return self._today

    def days_left(self) -> int:
        elapsed = (self.today() - self.shoot_start).days
        return max(1, self.shoot_days - max(0, elapsed))

    def observe(
        self, camera: str, capacity: float, used: float, bitrate_kbps: int, *,
        estimated: bool = False,
    ) -> bool:  # fmt: skip
        """Take in a card's reading; True if what a card held when the day began changed
        (a new card, a new day): worth saving, where a poll that changed nothing is not."""
        card = self.cards.get(camera)
        if card is None:
            card = self.cards[camera] = CardState(capacity, used, bitrate_kbps)
        card.estimated = estimated
        today = self.today()
        if today != self._day:
            self._day = today
            for state in self.cards.values():
                state.used_at_day_start = None
            self.daily_levels.clear()
            self._known_day_start.clear()
        recorded = max(0.0, used - card.used)
        card.reserved = max(0.0, card.reserved - recorded)
        card.capacity, card.used, card.bitrate_kbps = capacity, used, bitrate_kbps
        if card.used_at_day_start is None:
            card.used_at_day_start = self._known_day_start.get(camera, used)
            return True
        return False

    def seconds_left(self, camera: str) -> float:
        card = self.cards[camera]
        return card.free / card.byte_rate if card.byte_rate else float("inf")

    def admit_take(self, cameras: list[str], planned_s: float | None) -> TakeFit:
        if planned_s is None:
            return TakeFit(True)
        short = []
        for camera in cameras:
            card = self.cards.get(camera)
            if card is None:
                continue
            need = planned_s * card.byte_rate
            if need > card.free:
                short.append(
                    f"{camera}: a {planned_s:.0f} s take at {card.bitrate_kbps / 1000:.0f} Mbit/s "
                    f"needs {need / 1e9:.1f} GB; {card.free / 1e9:.1f} GB free "
                    f"({card.free / card.byte_rate:.0f} s of recording)"
                )
        if not short:
            return TakeFit(True)
        if self.take_fit == "refuse":
            return TakeFit(False, reason="take does not fit: " + "; ".join(short))
        return TakeFit(True, warnings=short)

    def take_started(self, cameras: list[str], planned_s: float | None) -> None:
        for camera in cameras:
            card = self.cards.get(camera)
            if card is not None and planned_s is not None:
                card.reserved = planned_s * card.byte_rate  # admission made sure it fits

    def take_ended(self, cameras: list[str]) -> None:
        for camera in cameras:
            if camera in self.cards:
                self.cards[camera].reserved = 0.0

    def daily_share(self, camera: str) -> float:
        """Bytes this camera may use today for its card to last the rest of the shoot."""
        card = self.cards[camera]
        start = card.used_at_day_start if card.used_at_day_start is not None else card.used
        return (card.capacity - start) / self.days_left()

    def daily_level(self, camera: str) -> tuple[str, float]:
        """("ok" | "yellow" | "red", share of today's media used)."""
        card = self.cards[camera]
        start = card.used_at_day_start if card.used_at_day_start is not None else card.used
        share = self.daily_share(camera)
        used_today = card.used - start
        fraction = used_today / share if share > 0 else 1.0
        level = "red" if fraction >= 1.0 else "yellow" if fraction >= 0.8 else "ok"
        return level, fraction

    def status(self) -> dict[str, Any]:
        out = {}
        for camera, card in self.cards.items():
            level, fraction = self.daily_level(camera)
            out[camera] = {
                "capacity_gb": round(card.capacity / 1e9, 3),
                "free_gb": round(card.free / 1e9, 3),
                "reserved_gb": round(card.reserved / 1e9, 3),
                "record_time_left_s": round(self.seconds_left(camera), 1),
                "daily_share_gb": round(self.daily_share(camera) / 1e9, 3),
                "today_used_fraction": round(fraction, 4),
                "today_level": level,
                **({"estimated": "bitrate x recorded time"} if card.estimated else {}),
            }
        return {"cameras": out, "days_left": self.days_left()}
