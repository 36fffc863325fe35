"""The monitor's budget panel shows each card's offload (rate, ETA) and the downlink queue."""

from __future__ import annotations

from tools.monitor.rows import dailies_lines


def test_offload_progress_and_the_downlink_queue_are_shown() -> None:
    lines = dailies_lines({
        "offload": {
            "cam-a": {"state": "copying", "done": 50e6, "total": 200e6,
                      "rate_bytes_per_s": 120e6, "eta_s": 1.25, "offloaded": 3, "waiting": 2},
            "cam-b": {"state": "idle", "offloaded": 4, "waiting": 0},
        },
        "downlink": {"queue": [
            {"name": "cam-a/A001C001_proxy.mp4", "acked_fraction": 0.4, "eta_s": 75},
            {"name": "cam-b/B001C002_proxy.mp4", "acked_fraction": 0.0, "eta_s": None},
        ]},
    })  # fmt: skip
    texts = [line.text for line in lines]
    assert texts == [
        "cam-a offload 25% at 120 MB/s, 1.2 s left",
        "cam-b: 4 clips offloaded, 0 waiting",
        "to ground: cam-a/A001C001_proxy.mp4 40%, 1m15s left; 2 queued",
    ]
    assert dailies_lines({}) == []
