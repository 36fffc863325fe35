"""`make bench` runs every benchmark: none is left out of bench/run.py by forgetting it."""

from __future__ import annotations

import importlib
from pathlib import Path

from bench import codec
from bench.run import BENCHMARKS

HELPERS = {"__init__", "run", "machine", "rig", "modbus_peer", "protocol_fd"}


def test_every_benchmark_module_is_in_make_bench() -> None:
    bench = Path(__file__).resolve().parents[2] / "bench"
    modules = {p.stem for p in bench.glob("*.py")} - HELPERS
    assert modules == set(BENCHMARKS)
    for name in modules:
        assert BENCHMARKS[name] is importlib.import_module(f"bench.{name}").main


def test_every_path_of_the_codec_benchmark_runs_on_the_records_as_they_are() -> None:
    rows = codec.measure(frames=10, repeats=1)
    ran = {(row["path"], row["impl"]) for row in rows}
    assert ran == {("receive", name) for name in codec.RX} | {("send", name) for name in codec.TX}
