"""An LED panel: fades, a non-linear draw curve with standby draw, heat and fold-back.

Draw at output x (0..1) is standby + (max - standby) * (a*x + (1-a)*x^2): linear share `a`
from the driver, quadratic share from LED efficiency droop at high current, so it is
monotonic in x and never below standby while on. Heat follows draw through a first-order
thermal mass; above `foldback_start_c` the driver limits output, above `shutdown_c` it cuts
out until it has cooled below `resume_c`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from hil.models.base import ModelEvent, first_order
from protocols.messages.common import EventCode, Severity
from protocols.messages.light import CCT_MAX_K, CCT_MIN_K, INTENSITY_FULL, LightFault

_STEP_S = 0.5  # thermal integration step (fold-back feeds back into draw)


class Clock(Protocol):
    def now(self) -> float: ...


@dataclass
class LightParams:
    """Defaults from ../shared/reference (see hil/MODELS.md)."""

    model: str = "SimPanel 100"
    firmware: str = "2.0.1"
    max_w: float = 100.0  # at full output
    standby_w: float = 3.0  # on, at 0 %
    off_w: float = 0.5  # driver off, controller still answering the link
    linear_share: float = 0.5  # a in the draw curve
    inrush_w: float = 40.0
    inrush_s: float = 0.3
    ambient_c: float = 22.0
    thermal_resistance_c_per_w: float = 0.45
    thermal_time_constant_s: float = 300.0
    foldback_start_c: float = 70.0
    foldback_full_c: float = 85.0
    foldback_min_permille: int = 300
    shutdown_c: float = 95.0
    resume_c: float = 75.0
    heartbeat_ms: int = 1000
    default_cct_k: int = 5600


def draw_curve(params: LightParams, on: bool, permille: float) -> float:
    """Steady electrical draw in watts for an output level."""
    if not on:
        return params.off_w
    x = max(0.0, min(1.0, permille / INTENSITY_FULL))
    a = params.linear_share
    return params.standby_w + (params.max_w - params.standby_w) * (a * x + (1.0 - a) * x * x)


def permille_for_draw(params: LightParams, watts: float) -> int:
    """Highest output (permille) whose steady draw does not exceed `watts` (inverse curve)."""
    lo, hi = 0, INTENSITY_FULL
    if draw_curve(params, True, 0) > watts:
        return 0
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if draw_curve(params, True, mid) <= watts:
            lo = mid
        else:
            hi = mid - 1
    return lo


class LightModel:
    def __init__(self, params: LightParams, clock: Clock) -> None:
        self.params = params
        self.clock = clock
        self.powered = True
        self.on = False
        self.temperature_c = params.ambient_c
        self.faults = LightFault(0)
        self.cooling_factor = 1.0
        self.events: list[ModelEvent] = []
        self._last_t = clock.now()
        self._inrush_until = 0.0
        self._from_permille = 0.0
        self._to_permille = 0.0
        self._from_cct = float(params.default_cct_k)
        self._to_cct = float(params.default_cct_k)
        self._fade_start = self._last_t
        self._fade_s = 0.0

    # -- observation -----------------------------------------------------------------------

    @property
    def target_permille(self) -> int:
        return round(self._to_permille)

    @property
    def target_cct_k(self) -> int:
        return round(self._to_cct)

    def commanded_permille(self, t: float | None = None) -> float:
        """Where the fade is (before any thermal limit)."""
        t = self.clock.now() if t is None else t
        progress = self._fade_progress(t)
        return self._from_permille + (self._to_permille - self._from_permille) * progress

    def cct_k(self) -> int:
        progress = self._fade_progress(self.clock.now())
        cct = self._from_cct + (self._to_cct - self._from_cct) * progress
        return max(CCT_MIN_K, min(CCT_MAX_K, round(cct)))

    def output_limit_permille(self) -> int:
        p = self.params
        t = self.temperature_c
        if self.faults & LightFault.OVER_TEMPERATURE:
            return 0
        if t <= p.foldback_start_c:
            return INTENSITY_FULL
        span = p.foldback_full_c - p.foldback_start_c
        fraction = min(1.0, (t - p.foldback_start_c) / span)
        return round(INTENSITY_FULL - (INTENSITY_FULL - p.foldback_min_permille) * fraction)

    def output_permille(self, t: float | None = None) -> float:
        if not (self.powered and self.on):
            return 0.0
        return min(self.commanded_permille(t), float(self.output_limit_permille()))

    def fade_remaining_ms(self) -> int:
        remaining = self._fade_start + self._fade_s - self.clock.now()
        return max(0, round(remaining * 1000))

    def draw_w(self) -> float:
        return self._draw_at(self.clock.now())

    # -- time ------------------------------------------------------------------------------

    def advance(self) -> None:
        now = self.clock.now()
        p = self.params
        while self._last_t < now:
            t0 = self._last_t
            t1 = min(now, t0 + _STEP_S)
            draw = self._draw_at(t0)
            r = p.thermal_resistance_c_per_w * self.cooling_factor
            target = p.ambient_c + r * draw
            self.temperature_c = first_order(
                self.temperature_c, target, t1 - t0, p.thermal_time_constant_s
            )
            self._last_t = t1
            self._update_thermal_faults(t1)

    def _update_thermal_faults(self, t: float) -> None:
        p = self.params
        temp = self.temperature_c
        folding = temp > p.foldback_start_c
        was_folding = bool(self.faults & LightFault.THERMAL_FOLDBACK)
        if folding and not was_folding:
            self.faults |= LightFault.THERMAL_FOLDBACK
            self._event(EventCode.THERMAL_FOLDBACK, Severity.WARNING, round(temp * 100), t)
        elif not folding and was_folding:
            self.faults &= ~LightFault.THERMAL_FOLDBACK
            self._event(EventCode.FOLDBACK_CLEARED, Severity.INFO, round(temp * 100), t)
        if temp >= p.shutdown_c and not self.faults & LightFault.OVER_TEMPERATURE:
            self.faults |= LightFault.OVER_TEMPERATURE
            self._event(EventCode.OVER_TEMPERATURE, Severity.CRITICAL, round(temp * 100), t)
        elif temp < p.resume_c and self.faults & LightFault.OVER_TEMPERATURE:
            self.faults &= ~LightFault.OVER_TEMPERATURE

    # -- commands --------------------------------------------------------------------------

    def set_level(self, permille: int, cct_k: int, fade_ms: int) -> None:
        self.advance()
        now = self.clock.now()
        self._from_permille = self.commanded_permille(now)
        self._from_cct = float(self.cct_k())
        self._to_permille = float(permille)
        self._to_cct = float(cct_k)
        self._fade_start = now
        self._fade_s = fade_ms / 1000.0

    def set_on(self, on: bool) -> None:
        self.advance()
        if on and not self.on:
            self._inrush_until = self.clock.now() + self.params.inrush_s
        self.on = on

    def reset(self) -> None:
        """Firmware restart: the driver comes back off at the default colour."""
        self.advance()
        self.on = False
        now = self.clock.now()
        self._from_permille = self._to_permille = 0.0
        self._from_cct = self._to_cct = float(self.params.default_cct_k)
        self._fade_start = now
        self._fade_s = 0.0

    def set_powered(self, powered: bool) -> None:
        if powered == self.powered:
            return
        self.advance()
        if not powered:
            self.reset()
        self.powered = powered

    # -- internals -------------------------------------------------------------------------

    def _fade_progress(self, t: float) -> float:
        if self._fade_s <= 0:
            return 1.0
        return max(0.0, min(1.0, (t - self._fade_start) / self._fade_s))

    def _draw_at(self, t: float) -> float:
        if not self.powered:
            return 0.0
        if self.on and t < self._inrush_until:
            return self.params.inrush_w
        return draw_curve(self.params, self.on, self.output_permille(t))

    def _event(self, code: EventCode, severity: Severity, value: int, t: float) -> None:
        self.events.append(ModelEvent(code, severity, value, code.name.lower(), t))

    def describe(self) -> dict[str, object]:
        self.advance()
        return {
            "on": self.on,
            "powered": self.powered,
            "intensity_permille": round(self.output_permille()),
            "target_permille": self.target_permille,
            "cct_k": self.cct_k(),
            "temperature_c": round(self.temperature_c, 3),
            "draw_w": round(self.draw_w(), 3),
            "output_limit_permille": self.output_limit_permille(),
            "faults": int(self.faults),
        }
