"""Yellow and red limits on device readings: each crossing is one event, never a flood.

A reading moves a (device, limit) between ok, yellow and red. Only a change of level raises an
event (warning for yellow, critical for red, info when it clears). To leave a level the
reading must come back past the threshold by a hysteresis margin, so a value hovering at a
threshold does not flap.
"""

from __future__ import annotations

import collections
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from firmware_host.clock import SYSTEM, Clock
from firmware_host.config import Band, LimitsConfig
from firmware_host.events import EventBus
from firmware_host.link.stats import LinkStats
from protocols.messages.common import Severity

ERROR_RATE_WINDOW_S = 30.0
ERROR_RATE_STEP_S = 1.0


class Level(enum.IntEnum):
    OK = 0
    YELLOW = 1
    RED = 2


@dataclass(frozen=True)
class Limit:
    name: str  # "camera.temperature"
    kinds: frozenset[str]
    band: Band
    unit: str
    reading: Callable[[Any, Any], float | None]  # (status record, link window) -> value
    low: bool = False  # True: lower is worse (media free)
    field: str | None = None  # the status field read: a device that does not measure it is skipped

    def level(self, value: float, current: Level, hysteresis: float) -> Level:
        """The level for `value`, staying in `current` until past its threshold by a margin."""
        band = self.band
        if self.low:  # compared negated: then higher is worse for every limit
            value, red, yellow = -value, -band.red, -band.yellow
        else:
            red, yellow = band.red, band.yellow
        if value >= red:
            return Level.RED
        if current is Level.OK:  # a healthy device's new reading: no margin to work out
            return Level.YELLOW if value >= yellow else Level.OK
        margin = hysteresis * abs(red - yellow)
        if current is Level.RED and value > red - margin:
            return Level.RED
        if value >= yellow or value > yellow - margin:
            return Level.YELLOW
        return Level.OK


def _media_free_pct(status: Any, _: Any) -> float | None:
    total = status.media_used_bytes + status.media_free_bytes
    return 100.0 * status.media_free_bytes / total if total else None


def default_limits(config: LimitsConfig) -> list[Limit]:
    return [
        Limit("camera.temperature", frozenset({"camera"}), config.camera_temperature_c, "C",
              lambda s, _: s.temperature_cdeg / 100, field="temperature_cdeg"),
        Limit("light.temperature", frozenset({"light"}), config.light_temperature_c, "C",
              lambda s, _: s.temperature_cdeg / 100, field="temperature_cdeg"),
        Limit("camera.media_free", frozenset({"camera"}), config.media_free_pct, "%",
              _media_free_pct, low=True),
        Limit("link.error_rate", frozenset({"camera", "light", "pdu"}), config.link_error_rate,
              "", lambda _, window: window),
    ]  # fmt: skip


class LimitMonitor:
    def __init__(
        self, bus: EventBus, limits: list[Limit], hysteresis: float, *, clock: Clock = SYSTEM
    ) -> None:
        self.bus = bus
        self.clock = clock
        self.limits = limits
        self.hysteresis = hysteresis
        self.levels: dict[tuple[str, str], Level] = {}
        self._link_history: dict[str, collections.deque[tuple[float, int, int]]] = {}
        kinds = {kind for limit in limits for kind in limit.kinds}
        self._for_kind = {k: tuple(x for x in limits if k in x.kinds) for k in kinds}
        # each device's last value judged per limit: a level depends only on the value and
        # the level before, and judging a value again leaves its level as it is
        self._judged: dict[str, dict[str, float]] = {}

    def error_rate(self, device: str, stats: LinkStats) -> float | None:
        """Share of rejected chunks over the last ERROR_RATE_WINDOW_S seconds (to within one
        ERROR_RATE_STEP_S: the counters are kept once a step, not at every poll)."""
        now = self.clock.monotonic()
        frames, rejected = stats.frames.frames, stats.frames.rejected
        history = self._link_history.get(device)
        if history is None:
            history = self._link_history[device] = collections.deque()
        if not history or now - history[-1][0] >= ERROR_RATE_STEP_S:
            history.append((now, frames, rejected))
            while len(history) > 2 and history[1][0] < now - ERROR_RATE_WINDOW_S:
                history.popleft()
        _, frames0, rejected0 = history[0]
        seen = frames - frames0 + rejected - rejected0
        return (rejected - rejected0) / seen if seen >= 20 else None

    def check(
        self, device: str, kind: str, status: Any, stats: LinkStats,
        unmeasured: frozenset[str] = frozenset(),
    ) -> None:  # fmt: skip
        if status is None:
            return
        window = self.error_rate(device, stats)
        judged = self._judged.get(device)
        if judged is None:
            judged = self._judged[device] = {}
        for limit in self._for_kind.get(kind, ()):
            if unmeasured and limit.field in unmeasured:
                continue
            value = limit.reading(status, window)
            if value is None or judged.get(limit.name) == value:
                continue
            judged[limit.name] = value
            key = (device, limit.name)
            before = self.levels.get(key, Level.OK)
            after = limit.level(value, before, self.hysteresis)
            if after is before:
                continue
            self.levels[key] = after
            self._announce(device, limit, before, after, value)

    def _announce(
        self, device: str, limit: Limit, before: Level, after: Level, value: float
    ) -> None:
        shown = f"{value:.4g}{limit.unit}"
        if after is Level.OK:
            severity, name = Severity.INFO, f"limit.{limit.name}.cleared"
            message = f"{device} {limit.name} back to normal ({shown})"
        else:
            severity = Severity.CRITICAL if after is Level.RED else Severity.WARNING
            threshold = limit.band.red if after is Level.RED else limit.band.yellow
            direction = "below" if limit.low else "above"
            name = f"limit.{limit.name}.{after.name.lower()}"
            message = (
                f"{device} {limit.name} {shown} is {direction} its {after.name.lower()} limit "
                f"{threshold:g}{limit.unit}"
            )
        self.bus.emit(
            name, severity, message, source=device, limit=limit.name, level=after.name.lower(),
            previous=before.name.lower(), value=value,
        )  # fmt: skip

    def active(self) -> list[dict[str, Any]]:
        """Every limit currently yellow or red, for the birth certificate and telemetry."""
        return [
            {"device": device, "limit": name, "level": level.name.lower()}
            for (device, name), level in sorted(self.levels.items())
            if level is not Level.OK
        ]
