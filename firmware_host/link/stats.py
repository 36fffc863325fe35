"""Per-link counters and a round-trip histogram, published with the device's telemetry."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

from protocols.framing import DeframerStats

# Upper bounds of the round-trip histogram buckets, in milliseconds (last bucket open).
RTT_BUCKETS_MS = (0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


@dataclass
class LinkStats:
    requests: int = 0
    replies: int = 0
    timeouts: int = 0
    retries: int = 0
    nacks: int = 0
    failures: int = 0  # requests that ran out of retries
    unmatched: int = 0  # replies nobody waited for (late, duplicate, or foreign)
    events: int = 0
    events_missed: int = 0  # gaps in the device's event sequence
    reconnects: int = 0
    rtt_counts: list[int] = field(default_factory=lambda: [0] * (len(RTT_BUCKETS_MS) + 1))
    rtt_sum_ms: float = 0.0
    rtt_max_ms: float = 0.0
    # How late each status poll started against its schedule (same bucket bounds): a poll
    # a few ms late is invisible in missed_polls, which counts only whole skipped periods.
    poll_late_counts: list[int] = field(default_factory=lambda: [0] * (len(RTT_BUCKETS_MS) + 1))
    poll_late_max_ms: float = 0.0
    frames: DeframerStats = field(default_factory=DeframerStats)

    def record_rtt(self, seconds: float) -> None:
        ms = seconds * 1000.0
        self.rtt_counts[bisect.bisect_left(RTT_BUCKETS_MS, ms)] += 1
        self.rtt_sum_ms += ms
        self.rtt_max_ms = max(self.rtt_max_ms, ms)

    def record_poll_lateness(self, seconds: float) -> None:
        ms = max(0.0, seconds * 1000.0)
        self.poll_late_counts[bisect.bisect_left(RTT_BUCKETS_MS, ms)] += 1
        self.poll_late_max_ms = max(self.poll_late_max_ms, ms)

    def rtt_percentile_ms(self, fraction: float) -> float | None:
        """Upper bucket bound holding the given fraction of round trips (None without data)."""
        return _percentile_ms(self.rtt_counts, self.rtt_max_ms, fraction)

    def poll_late_percentile_ms(self, fraction: float) -> float | None:
        """Upper bucket bound holding the given fraction of poll lateness (None without data)."""
        return _percentile_ms(self.poll_late_counts, self.poll_late_max_ms, fraction)

    @property
    def error_rate(self) -> float:
        """Share of received chunks that were rejected (CRC, framing)."""
        seen = self.frames.frames + self.frames.rejected
        return self.frames.rejected / seen if seen else 0.0

    def as_dict(self) -> dict[str, Any]:
        replies = self.replies
        return {
            "requests": self.requests,
            "replies": replies,
            "timeouts": self.timeouts,
            "retries": self.retries,
            "nacks": self.nacks,
            "failures": self.failures,
            "unmatched": self.unmatched,
            "events": self.events,
            "events_missed": self.events_missed,
            "reconnects": self.reconnects,
            "frames_ok": self.frames.frames,
            "crc_errors": self.frames.crc_errors,
            "framing_errors": self.frames.framing_errors,
            "resyncs": self.frames.resyncs,
            "error_rate": round(self.error_rate, 6),
            "rtt_mean_ms": round(self.rtt_sum_ms / replies, 3) if replies else None,
            "rtt_p50_ms": self.rtt_percentile_ms(0.5),
            "rtt_p99_ms": self.rtt_percentile_ms(0.99),
            "rtt_max_ms": round(self.rtt_max_ms, 3),
            "rtt_histogram": dict(zip(_BUCKET_NAMES, self.rtt_counts, strict=True)),
            "poll_late_p50_ms": self.poll_late_percentile_ms(0.5),
            "poll_late_p99_ms": self.poll_late_percentile_ms(0.99),
            "poll_late_max_ms": round(self.poll_late_max_ms, 3),
            "poll_late_histogram": dict(zip(_BUCKET_NAMES, self.poll_late_counts, strict=True)),
        }


_BUCKET_NAMES = [*map(str, RTT_BUCKETS_MS), "inf"]


def _percentile_ms(counts: list[int], maximum: float, fraction: float) -> float | None:
    """Upper bound of the bucket holding the given fraction of counts (the max for the last)."""
    total = sum(counts)
    if not total:
        return None
    threshold = fraction * total
    running = 0
    for index, count in enumerate(counts):
        running += count
        if running >= threshold:
            if index < len(RTT_BUCKETS_MS):
                return float(RTT_BUCKETS_MS[index])
            return maximum
    return maximum
