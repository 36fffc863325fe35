"""The daemon's start-up heap: frozen out of the collector's sight, and the collector on."""

from __future__ import annotations

import gc

from firmware_host.daemon import settle_heap


def test_settling_freezes_what_start_up_built_and_turns_the_collector_back_on() -> None:
    built = [{"table": n} for n in range(100)]  # tracked by the collector until frozen
    gc.disable()  # as `cupola daemon` runs its imports
    try:
        settle_heap()
        assert gc.isenabled()
        assert gc.get_freeze_count() >= len(built)
    finally:
        gc.unfreeze()
        gc.enable()
