"""The shot log: reconciliation is idempotent and never duplicates a clip."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from firmware_host.workflow.shotlog import ClipFacts, ShotLog


def facts(clip_id: int, *, closed: bool = True, frames: int = 100) -> ClipFacts:
    return ClipFacts(
        camera="cam-a", clip_id=clip_id, timecode_in=1000 * clip_id,
        timecode_out=1000 * clip_id + frames, frames=frames, bytes=frames * 1000,
        scene="1", take=clip_id, roll="A001", closed=closed,
    )  # fmt: skip


@given(
    logged=st.sets(st.integers(1, 20), max_size=8),
    on_camera=st.sets(st.integers(1, 20), max_size=12),
)
def test_reconciling_twice_changes_nothing_the_second_time(
    tmp_path_factory: object, logged: set[int], on_camera: set[int]
) -> None:
    path = tmp_path_factory.mktemp("log") / "shotlog.db"  # type: ignore[attr-defined]
    log = ShotLog(path)
    for clip_id in sorted(logged):
        log.take_started(
            scene="1", take=clip_id, roll="A001", start_frame=1000 * clip_id, frame_rate=25.0,
            clips={"cam-a": clip_id}, settings={},
        )  # fmt: skip
    camera = [facts(c) for c in sorted(on_camera)]
    log.reconcile("cam-a", camera, 25.0)
    again = log.reconcile("cam-a", camera, 25.0)
    assert again == {"added": 0, "closed": 0}
    rows = log.clips("cam-a")
    keys = [(r["clip_id"], r["timecode_in"]) for r in rows]
    assert len(keys) == len(set(keys)) == len(logged | on_camera)
    assert all(r["state"] != "rolling" for r in rows)  # everything the camera has is closed
    log.close()


def test_a_restart_reopens_the_same_log(tmp_path: Path) -> None:
    log = ShotLog(tmp_path / "shotlog.db")
    take_id = log.take_started(
        scene="4", take=2, roll="A001", start_frame=50, frame_rate=25.0,
        clips={"cam-a": 7}, settings={"cam-a": {"iso": 800}},
    )  # fmt: skip
    log.close()
    reopened = ShotLog(tmp_path / "shotlog.db")
    (take,) = reopened.query(scene="4")
    assert take["take_id"] == take_id and take["status"] == "rolling"
    assert take["clips"][0]["settings"] == {"iso": 800}
    reopened.clip_closed("cam-a", 7, 150, 100, 10_000)
    (take,) = reopened.query(scene="4")
    assert take["status"] == "cut" and take["clips"][0]["duration_s"] == 4.0
    assert reopened.annotate(take_id, circled=True, note="best performance")
    assert reopened.query(circled=True)[0]["notes"] == "best performance"
