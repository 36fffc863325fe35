"""The monitor's view of a node: sequence accounting, alarms, node status, takes, captures."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from protocols import ground
from tools.monitor import rows
from tools.monitor.jsonlines import render
from tools.monitor.replay import CaptureError, capture_node, load_capture
from tools.monitor.summary import summary
from tools.monitor.view import NodeView

NODE = "iss-film"
T0 = 1_800_000_000.0


def message(kind: str, body: dict[str, Any], **fields: Any) -> bytes:
    envelope = {"v": 1, "node": NODE, "kind": kind, "ts": fields.pop("ts", T0), "body": body}
    return json.dumps({**envelope, **fields}).encode()


def event(name: str, seq: int, *, source: str = "daemon", severity: str = "info",
          ts: float = T0, **data: Any) -> bytes:  # fmt: skip
    body = {"name": name, "severity": severity, "message": name, "source": source,
            "data": data, "ts": ts}  # fmt: skip
    return message("event", body, seq=seq, ts=ts)


def birth(
    bd_seq: int,
    limits: list[dict[str, str]] | None = None,
    stream: int | None = None,
    devices: dict[str, Any] | None = None,
) -> bytes:
    body = {"node": NODE, "schema": 1, "started": T0, "session_started": T0, "frame_rate": 25.0,
            "devices": devices or {}, "groups": {}, "commands": {"status": {"doc": "", "args": {}}},
            "limits": limits or [], "sequence": {}, "backlog": {}, "budget": {}}  # fmt: skip
    return message("birth", body, bd_seq=bd_seq, stream=stream)


def telemetry(seq: int, ts: float, limits: list[dict[str, str]]) -> bytes:
    body = {"ts": ts, "devices": {}, "power": {"draw_w": 0.0}, "data": {}, "backlog": {},
            "limits": limits}  # fmt: skip
    return message("telemetry", body, seq=seq, ts=ts)


def topic(leaf: str, *rest: str) -> str:
    return ground.topic(NODE, leaf, *rest)


def connected_view() -> NodeView:
    view = NodeView(NODE, los_after_s=15.0)
    view.set_connection(True, "connected", T0)
    return view


# -- the sequence ------------------------------------------------------------------------------


@given(st.lists(st.integers(min_value=1, max_value=60), max_size=80))
def test_every_sequence_number_is_accepted_once_or_counted_missing(seqs: list[int]) -> None:
    view = connected_view()
    accepted = []
    for n, seq in enumerate(seqs):
        before = view.sequence.last_seq
        view.absorb(topic("event"), event("x", seq, ts=T0 + n), T0 + n)
        if view.sequence.last_seq != before:
            accepted.append(seq)
    assert accepted == sorted(set(accepted)), "accepted messages are strictly increasing"
    # a number that comes late into a gap fills it (the archive's copy): neither twice nor lost
    sequence = view.sequence
    assert sequence.duplicates + sequence.filled + len(accepted) == len(seqs)
    if accepted:
        span = accepted[-1] - accepted[0] + 1
        assert sequence.missing() + sequence.filled + len(accepted) == span
        assert all(first <= last for first, last in view.sequence.gaps)


@given(st.binary(max_size=300), st.sampled_from(["event", "telemetry", "result", "state/x"]))
def test_garbage_is_counted_and_dropped(payload: bytes, leaf: str) -> None:
    view = connected_view()
    view.absorb(topic(*leaf.split("/")), payload, T0)
    assert view.received + view.malformed == 1
    view.absorb(topic("event"), event("after", 1), T0)  # still working
    assert view.events[-1].name == "after"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = ["name", "severity", "message", "source", "data", "ts", "limits", "devices", "power",
          "clips", "take_id", "status", "kind", "reason", "id"]  # fmt: skip


@given(
    st.sampled_from(["birth", "death", "state/cam-a", "event", "telemetry", "result"]),
    st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=8),
    st.integers(min_value=1, max_value=5),
)
def test_a_well_formed_envelope_with_any_body_never_stops_the_view(
    leaf: str, body: dict[str, Any], seq: int
) -> None:
    view = connected_view()
    kind = leaf.split("/", maxsplit=1)[0]
    view.absorb(topic(*leaf.split("/")), message(kind, body, seq=seq, bd_seq=seq), T0)
    assert view.received + view.malformed == 1
    view.absorb(topic("event"), event("after", 99), T0)
    assert view.events[-1].name == "after"


ENTRY_FIELDS = [
    "take_id",
    "scene",
    "take",
    "clips",
    "camera",
    "clip_id",
    "state",
    "circled",
    "started_at",
    "timecode_in",
    "roll",
    "ts",
    "name",
    "severity",
    "message",
    "source",
]
ENTRIES = st.lists(JSON | st.dictionaries(st.sampled_from(ENTRY_FIELDS), JSON), max_size=4)


@given(
    st.sampled_from(["shotlog.query", "events.recent"]),
    st.fixed_dictionaries({}, optional={"takes": ENTRIES, "events": ENTRIES}),
)
def test_any_result_to_the_monitors_own_catch_up_never_stops_the_view(
    name: str, result: dict[str, Any]
) -> None:
    view = connected_view()
    view.command_sent("c1", name, {}, T0)
    body = {"id": "c1", "name": name, "status": "ok", "reason": "", "result": result}
    view.absorb(topic("result"), message("result", body, seq=1), T0)
    assert view.received + view.malformed == 1
    view.absorb(topic("event"), event("after", 2), T0)
    assert view.events[-1].name == "after"


def test_a_nesting_bomb_is_counted_and_dropped() -> None:
    view = connected_view()
    bomb = b'{"a":' * 100_000 + b"1" + b"}" * 100_000  # a RecursionError in the decoder
    view.absorb(topic("event"), bomb, T0)
    assert view.malformed == 1
    assert render(topic("event"), bomb)["raw_hex"]  # --json keeps it, as bytes


def test_messages_of_another_node_or_commands_are_ignored() -> None:
    view = connected_view()
    view.absorb(ground.topic("other", "event"), event("x", 1), T0)
    view.absorb(topic("cmd"), b"{}", T0)
    assert view.received == 0 and view.malformed == 0


# -- alarms ------------------------------------------------------------------------------------

KEYS = st.sampled_from([("cam-a", "camera_temperature_c"), ("key", "light_temperature_c")])


class AlarmMachine(RuleBasedStateMachine):
    """Alarms stay until acknowledged; cleared and acknowledged ones leave the screen."""

    def __init__(self) -> None:
        super().__init__()
        self.view = connected_view()
        self.seq = 0
        self.model: dict[tuple[str, str], dict[str, Any]] = {}

    def _send(self, name: str, source: str, limit: str) -> None:
        self.seq += 1
        severity = "critical" if name.endswith("red") else "info"
        self.view.absorb(
            topic("event"), event(name, self.seq, source=source, severity=severity, limit=limit),
            T0 + self.seq,
        )  # fmt: skip

    @rule(key=KEYS, level=st.sampled_from(["yellow", "red"]))
    def raise_alarm(self, key: tuple[str, str], level: str) -> None:
        self._send(f"limit.{key[1]}.{level}", *key)
        self._raised(key, level)

    def _raised(self, key: tuple[str, str], level: str) -> None:
        old = self.model.get(key)
        fresh = old is None or not old["active"] or (level == "red" and old["level"] != "red")
        self.model[key] = {
            "level": level,
            "active": True,
            "acknowledged": False if fresh else old["acknowledged"],  # type: ignore[index]
        }

    def _cleared(self, key: tuple[str, str]) -> None:
        if key in self.model:
            self.model[key]["active"] = False
            if self.model[key]["acknowledged"]:
                del self.model[key]

    @rule(key=KEYS)
    def clear(self, key: tuple[str, str]) -> None:
        self._send(f"limit.{key[1]}.cleared", *key)
        self._cleared(key)

    @rule(listed=st.dictionaries(KEYS, st.sampled_from(["yellow", "red"])))
    def sample_lists_the_limits_out_of_bounds(self, listed: dict[tuple[str, str], str]) -> None:
        """A telemetry sample speaks for every limit, whatever events were missed."""
        self.seq += 1
        limits = [{"device": d, "limit": lim, "level": lvl} for (d, lim), lvl in listed.items()]
        sample = telemetry(self.seq, T0 + self.seq, limits)
        self.view.absorb(topic("telemetry"), sample, T0 + self.seq)
        for key in list(self.model):
            if key not in listed:
                self._cleared(key)
        for key, level in listed.items():
            current = self.model.get(key)
            if current is None or not current["active"] or current["level"] != level:
                self._raised(key, level)

    @precondition(lambda self: bool(self.model))
    @rule()
    def acknowledge_all(self) -> None:
        self.view.acknowledge()
        for key in list(self.model):
            self.model[key]["acknowledged"] = True
            if not self.model[key]["active"]:
                del self.model[key]

    @invariant()
    def screen_matches_the_model(self) -> None:
        shown = {
            key: {"level": a.level, "active": a.active, "acknowledged": a.acknowledged}
            for key, a in self.view.alarms.items()
        }
        assert shown == self.model

    @invariant()
    def nothing_unseen_is_dropped(self) -> None:
        assert all(a.active or not a.acknowledged for a in self.view.alarms.values())


TestAlarms = AlarmMachine.TestCase
TestAlarms.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)


def test_a_birth_clears_limits_it_no_longer_lists() -> None:
    view = connected_view()
    view.absorb(topic("birth"), birth(1, [{"device": "cam-a", "limit": "t", "level": "red"}]), T0)
    assert view.alarms[("cam-a", "t")].active
    view.absorb(topic("birth"), birth(2, []), T0 + 1)
    assert not view.alarms[("cam-a", "t")].active  # still shown: nobody acknowledged it
    view.acknowledge()
    assert not view.alarms


def test_a_sample_older_than_the_newest_does_not_raise_what_has_cleared() -> None:
    view = connected_view()
    red = [{"device": "cam-a", "limit": "t", "level": "red"}]
    view.absorb(topic("telemetry"), telemetry(1, T0 + 1, red), T0 + 1)
    assert view.alarms[("cam-a", "t")].active  # no event seen: the sample alone raises it
    view.absorb(topic("telemetry"), telemetry(5, T0 + 5, []), T0 + 5)
    view.absorb(topic("telemetry"), telemetry(3, T0 + 3, red), T0 + 6)  # replayed late
    assert not view.alarms[("cam-a", "t")].active


def test_the_node_event_log_fills_in_the_day_without_raising_old_alarms() -> None:
    view = connected_view()
    view.absorb(topic("event"), event("take.cut", 40, ts=T0 + 10), T0 + 10)
    log = [  # newest first, as the node answers
        {"name": "take.cut", "severity": "info", "message": "cut", "source": "daemon",
         "ts": T0 + 10},  # also seen live
        {"name": "power.over_cap", "severity": "warning", "message": "over", "source": "daemon",
         "ts": T0 + 5},  # over long ago: no alarm now
        {"name": "limit.camera.temperature.red", "severity": "critical", "message": "hot",
         "source": "cam-a", "data": {"limit": "camera.temperature"}, "ts": T0 + 1},
    ]  # fmt: skip
    view.absorb_event_log(log)
    assert [e.name for e in view.events] == [
        "limit.camera.temperature.red", "power.over_cap", "take.cut",
    ]  # fmt: skip
    assert not view.alarms and view.events[-1].seq == 40


def test_the_retained_birth_seen_again_undoes_nothing_fresher() -> None:
    def cam_a(state: str, at: float) -> dict[str, Any]:
        return {"device": "cam-a", "kind": "camera", "online": True, "offline_reason": None,
                "identity": None, "status": {"state": state}, "status_at": at,
                "missed_polls": 0, "link": {}}  # fmt: skip

    view = connected_view()
    at_birth = birth(4, devices={"cam-a": cam_a("standby", T0)})  # no limits out then
    view.absorb(topic("birth"), at_birth, T0)
    red = [{"device": "cam-a", "limit": "t", "level": "red"}]
    view.absorb(topic("telemetry"), telemetry(1, T0 + 5, red), T0 + 5)
    view.acknowledge()
    view.absorb(topic("state", "cam-a"), message("state", cam_a("recording", T0 + 6)), T0 + 6)
    view.absorb(topic("birth"), at_birth, T0 + 7)  # the monitor re-subscribed
    alarm = view.alarms[("cam-a", "t")]
    assert alarm.active and alarm.acknowledged  # not cleared, not raised anew
    assert view.devices["cam-a"]["status"]["state"] == "recording"
    assert view.status(T0 + 8).since == T0  # online since the node's session began


def test_a_retained_pdu_state_seen_again_is_one_sample() -> None:
    view = connected_view()
    pdu = {"device": "pdu", "kind": "pdu", "online": True, "offline_reason": None,
           "identity": None, "status": {"total_power_mw": 42_000}, "status_at": T0,
           "missed_polls": 0, "link": {}}  # fmt: skip
    for _ in range(2):
        view.absorb(topic("state", "pdu"), message("state", pdu), T0)
    assert view.power_samples == [(T0, 42.0)]


def test_the_next_cap_change_is_shown_until_it_comes() -> None:
    view = connected_view()
    change = {"at": T0 + 60, "cap_w": 120, "reason": "station power emergency"}
    view.power = {"cap_w": 300, "draw_w": 100, "reserve_w": 30, "next_change": change}
    before = [c.text for c in rows.power_lines(view, T0)]
    assert "next: cap 120 W in 1m00s (station power emergency)" in before
    assert "no cap change planned" in [c.text for c in rows.power_lines(view, T0 + 61)]


# -- node status -------------------------------------------------------------------------------


def test_node_status_follows_birth_death_and_silence() -> None:
    view = connected_view()
    assert view.status(T0).state == "waiting"
    view.absorb(topic("birth"), birth(3), T0)
    assert view.status(T0 + 1).state == "online"
    status = view.status(T0 + 20)
    assert status.state == "loss of signal" and status.since == T0
    view.absorb(topic("event"), event("back", 1), T0 + 25)
    assert view.status(T0 + 25).state == "online"
    assert view.silences == [(T0, T0 + 25)]
    view.absorb(topic("birth"), birth(2), T0 + 26)  # an older session's retained birth
    assert view.birth_bd_seq == 3
    view.absorb(topic("death"), message("death", {"reason": "lost"}, bd_seq=3), T0 + 30)
    offline = view.status(T0 + 31)
    assert offline.state == "offline" and offline.detail == "lost"
    view.set_connection(False, "refused", T0 + 32)
    assert view.status(T0 + 33).state == "no broker"


def test_a_node_that_lost_its_state_is_followed_on_its_new_numbers() -> None:
    view = connected_view()
    view.absorb(topic("birth"), birth(7, stream=111), T0)
    view.absorb(topic("event"), event("old", 500), T0 + 1)
    view.absorb(topic("death"), message("death", {"reason": "lost"}, bd_seq=7, stream=111),
                T0 + 2)  # fmt: skip
    assert view.status(T0 + 2).state == "offline"
    view.absorb(topic("birth"), birth(1, stream=222), T0 + 3)  # wiped: numbers start again
    view.absorb(topic("event"), event("new", 1), T0 + 4)
    assert view.events[-1].name == "new" and view.sequence.duplicates == 0
    assert view.status(T0 + 4).state == "online" and view.stream_restarts == 1
    view.absorb(
        topic("death"), message("death", {"reason": "lost"}, bd_seq=7, stream=111), T0 + 5
    )  # the old session's retained will, seen again: not this session's
    assert view.status(T0 + 5).state == "online"


def test_an_old_streams_will_before_the_new_birth_does_not_hold_the_node_offline() -> None:
    view = connected_view()  # retained messages come in any order across topics
    view.absorb(topic("death"), message("death", {"reason": "lost"}, bd_seq=9, stream=111), T0)
    view.absorb(topic("birth"), birth(1, stream=222), T0)
    assert view.status(T0).state == "online"


class NodeSessionMachine(RuleBasedStateMachine):
    """Online or offline as the node truly is, whatever order retained messages come in.

    The node starts and dies (births and deaths, retained), may lose its stored state
    (a new stream, numbering from 1), and monitors re-subscribe or start afresh, getting
    the retained birth and death in either order.
    """

    def __init__(self) -> None:
        super().__init__()
        self.view = connected_view()
        self.stream, self.bd_seq, self.alive = 1, 0, False
        self.retained: dict[str, bytes] = {}
        self.clock = T0

    def _deliver(self, leaf: str, payload: bytes) -> None:
        self.clock += 1
        self.view.absorb(topic(leaf), payload, self.clock)

    @precondition(lambda self: not self.alive)
    @rule()
    def node_starts(self) -> None:
        self.bd_seq += 1
        self.alive = True
        self.retained["birth"] = birth(self.bd_seq, stream=self.stream)
        self._deliver("birth", self.retained["birth"])

    @precondition(lambda self: self.alive)
    @rule()
    def node_dies(self) -> None:
        self.alive = False
        body = {"reason": "connection lost"}
        self.retained["death"] = message("death", body, bd_seq=self.bd_seq, stream=self.stream)
        self._deliver("death", self.retained["death"])

    @precondition(lambda self: not self.alive)
    @rule()
    def node_loses_its_state(self) -> None:
        self.stream += 1
        self.bd_seq = 0

    @rule(fresh=st.booleans(), death_first=st.booleans())
    def monitor_subscribes(self, fresh: bool, death_first: bool) -> None:
        if fresh:
            self.view = connected_view()
        for leaf in sorted(self.retained, reverse=death_first):
            self._deliver(leaf, self.retained[leaf])

    @invariant()
    def shown_as_it_is(self) -> None:
        if "birth" in self.retained:
            assert self.view.online == self.alive


TestNodeSession = NodeSessionMachine.TestCase
TestNodeSession.settings = settings(max_examples=100, stateful_step_count=30, deadline=None)


@given(
    st.lists(st.tuples(st.sampled_from(["info", "warning", "critical"]),
                       st.sampled_from(["power.shed", "take.cut", "device.offline"])),
             max_size=40),
    st.sampled_from(["", "power", "cut", "nothing like it"]),
    st.sampled_from(["info", "warning", "critical"]),
    st.integers(0, 45),
)  # fmt: skip
def test_the_newest_matching_events_are_the_tail_of_all_that_match(
    sent: list[tuple[str, str]], text: str, severity: str, newest: int
) -> None:
    view = connected_view()
    for seq, (level, name) in enumerate(sent, start=1):
        view.absorb(topic("event"), event(name, seq, severity=level, ts=T0 + seq), T0 + seq)
    matching = view.events_matching(text, severity)
    assert (
        view.events_matching(text, severity, newest) == matching[max(0, len(matching) - newest) :]
    )


# -- takes -------------------------------------------------------------------------------------


def test_takes_roll_cut_and_circle() -> None:
    view = connected_view()
    clips = {"cam-a": {"clip_id": 4, "timecode_in": "01:00:00:00"},
             "cam-b": {"clip_id": 9, "timecode_in": "01:00:00:00"}}  # fmt: skip
    view.absorb(topic("event"), event("take.started", 1, take_id=7, scene="12A", take=3,
                                      clips=clips, timecode_in="01:00:00:00"), T0)  # fmt: skip
    take = view.takes[7]
    assert take.rolling and view.latest_take("cam-a") is take
    view.absorb(topic("event"), event("camera.record_stopped", 2, source="cam-a", value=4), T0)
    assert take.rolling  # cam-b still rolls
    view.absorb(topic("event"), event("take.cut", 3, clips={"cam-b": {"clip_id": 9}}), T0)
    assert not take.rolling
    view.absorb(topic("event"), event("take.circled", 4, take_id=7), T0)
    assert take.circled
    assert "scene 12A take 3 (circled)" in summary(view, T0)


def test_the_shot_log_corrects_what_events_missed() -> None:
    view = connected_view()
    clips = {"cam-a": {"clip_id": 4, "timecode_in": "01:00:00:00"}}
    view.absorb(topic("event"), event("take.started", 1, take_id=7, scene="12A", take=3,
                                      clips=clips, timecode_in="01:00:00:00"), T0)  # fmt: skip
    assert view.takes[7].rolling  # then the monitor is cut off while the take is cut
    closed = [{"camera": "cam-a", "clip_id": 4, "state": "closed"}]
    view.absorb_shot_log([{"take_id": 7, "scene": "12A", "take": 3, "circled": True,
                           "clips": closed}])  # fmt: skip
    assert not view.takes[7].rolling and view.takes[7].circled
    rolling = [{"camera": "cam-b", "clip_id": 1, "state": "rolling"}]
    view.absorb_shot_log([{"take_id": 8, "scene": "12A", "take": 4, "clips": rolling}])
    assert view.takes[8].rolling  # rolling before the monitor started


# -- captures ----------------------------------------------------------------------------------


def test_a_capture_replays_into_the_view(tmp_path: Path) -> None:
    capture = tmp_path / "c.jsonl"
    lines = [
        {"monitor": "connected", "detail": "ok", "at": T0},
        {"topic": topic("birth"), "received": T0, "message": json.loads(birth(1))},
        {"topic": topic("event"), "received": T0 + 2, "message": json.loads(event("a", 5))},
        {"topic": topic("event"), "received": T0 + 2, "raw": {"not": "an envelope"}},
        {"topic": topic("event"), "received": T0 + 2, "raw_hex": "ff00"},
    ]
    capture.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    view = NodeView(NODE)
    assert capture_node(capture) == NODE
    assert load_capture(capture, view) == T0 + 2
    assert view.online and view.sequence.last_seq == 5
    assert view.malformed == 2  # kept raw by --json, counted on replay as they were live
    earlier = NodeView(NODE)
    assert load_capture(capture, earlier, until=T0 + 1) == T0  # the screen as it was then
    assert earlier.online and earlier.sequence.last_seq == 0
    capture.write_text("not json\n")
    with pytest.raises(CaptureError, match=r"c\.jsonl:1"):
        load_capture(capture, NodeView(NODE))


def test_every_consoles_commands_are_shown_marked_by_sender() -> None:
    view = connected_view()
    view.command_sent("mine-0001", "status", {}, T0, sender="director-1")
    mine = {"id": "mine-0001", "name": "status", "status": "ok", "reason": "", "result": {},
            "key_id": "director-1", "role": "director"}  # fmt: skip
    armed = {"id": "theirs-01", "name": "camera.format", "status": "armed", "reason": "hazardous",
             "result": {"arm_id": "theirs-01", "window_s": 60, "armed_by": "fc-1"},
             "key_id": "fc-1", "role": "flight_controller"}  # fmt: skip
    query = {"id": "theirs-02", "name": "shotlog.query", "status": "ok", "reason": "",
             "result": {"takes": [{"bogus": True}]}, "key_id": "monitor-9"}  # fmt: skip
    for seq, body in enumerate((mine, armed, query), start=1):
        view.absorb(topic("result"), message("result", body, seq=seq), T0 + seq)
    lines = {c.id: c for c in view.commands.values()}
    assert [(c.sender, c.own) for c in lines.values()] == [
        ("director-1", True),
        ("fc-1", False),
        ("monitor-9", False),
    ]
    assert lines["theirs-01"].status == "armed" and lines["theirs-01"].armed_by == "fc-1"
    assert view.malformed == 0  # another monitor's catch-up answer is shown, not absorbed


# -- held streams and loss of signal (issue 15) -------------------------------------------------

UNTIL = T0 + 3600  # 09:00 UTC


def link(state: str, at: float, *, bd_seq: int = 1, backlog: dict[str, int] | None = None,
         limits: list[dict[str, str]] | None = None) -> bytes:  # fmt: skip
    body = {"state": state, "reason": "contact schedule" if state == "held" else "",
            "until": UNTIL if state == "held" else None, "at": at,
            "backlog": backlog or {}, "limits": limits or []}  # fmt: skip
    return message("link", body, bd_seq=bd_seq, ts=at)


def test_a_held_stream_reads_held_until_its_next_window_never_online() -> None:
    view = connected_view()
    view.absorb(topic("birth"), birth(1), T0)
    view.absorb(topic("link"), link("held", T0 + 10), T0 + 10)
    for now in (T0 + 11, T0 + 100, UNTIL):
        assert view.status(now).state == "held"
    line = rows.node_line(view, T0 + 100)
    assert line[0].text == f"{NODE} HELD until 09:00 (contact schedule)"
    assert view.status(UNTIL + view.los_after_s + 1).state == "loss of signal"


def test_the_held_notice_carries_the_nodes_real_backlog_over_a_stale_sample() -> None:
    view = connected_view()
    view.absorb(topic("birth"), birth(1), T0)
    view.absorb(topic("telemetry"), telemetry(1, T0 + 5, []), T0 + 5)  # said 0 waiting
    backlog = {"messages": 50, "bytes": 40_000, "thinned": 0}
    view.absorb(topic("link"), link("held", T0 + 10, backlog=backlog), T0 + 10)
    text = " ".join(cell.text for cell in rows.data_lines(view))
    assert "outbox 50 waiting" in text and "stream held" in text


def test_a_release_ends_the_hold_and_a_death_beats_it() -> None:
    view = connected_view()
    view.absorb(topic("birth"), birth(1), T0)
    view.absorb(topic("link"), link("held", T0 + 10), T0 + 10)
    view.absorb(topic("birth"), birth(1), UNTIL)
    view.absorb(topic("link"), link("flowing", UNTIL), UNTIL)
    assert view.status(UNTIL + 1).state == "online"
    view.absorb(topic("link"), link("held", UNTIL + 10), UNTIL + 10)
    death = message("death", {"reason": "connection lost"}, bd_seq=1)
    view.absorb(topic("death"), death, UNTIL + 11)
    assert view.status(UNTIL + 12).state == "offline"


def test_a_backlog_alarm_that_has_since_cleared_raises_nothing_but_stays_in_the_log() -> None:
    view = connected_view()
    view.absorb(topic("birth"), birth(1), T0)
    view.absorb(topic("link"), link("held", T0 + 10), T0 + 10)
    # contact returns: the birth (nothing out of bounds now), then the backlog, historical
    view.absorb(topic("birth"), birth(1), UNTIL)
    red = event("limit.camera.temperature.red", 1, source="cam-a", severity="critical",
                ts=T0 + 20, limit="camera.temperature")  # fmt: skip
    cleared = event("limit.camera.temperature.cleared", 2, source="cam-a", ts=T0 + 900,
                    limit="camera.temperature")  # fmt: skip
    for payload in (red, cleared):
        flagged = json.loads(payload)
        flagged["historical"] = True
        view.absorb(topic("event"), json.dumps(flagged).encode(), UNTIL + 1)
    assert view.alarms == {}
    assert [e.name for e in view.events][-2:] == [
        "limit.camera.temperature.red", "limit.camera.temperature.cleared"
    ]  # fmt: skip


def test_an_alarm_still_active_after_the_hold_comes_from_the_nodes_list() -> None:
    view = connected_view()
    view.absorb(topic("birth"), birth(1), T0)
    hot = [{"device": "cam-a", "limit": "camera.temperature", "level": "red"}]
    view.absorb(topic("link"), link("flowing", UNTIL, limits=hot), UNTIL)
    assert view.alarms[("cam-a", "camera.temperature")].active


def test_the_crew_sees_a_local_alarm_at_once_and_its_stream_copy_only_once() -> None:
    view = connected_view()
    view.absorb(topic("birth"), birth(1), T0)
    view.absorb(topic("link"), link("held", T0 + 10), T0 + 10)
    body = {"name": "limit.camera.temperature.red", "severity": "critical", "message": "hot",
            "source": "cam-a", "data": {"limit": "camera.temperature"}, "ts": T0 + 20}  # fmt: skip
    view.absorb(topic("local", "event"), message("event", body, ts=T0 + 20), T0 + 20)
    assert view.alarms[("cam-a", "camera.temperature")].level == "red"
    view.absorb(topic("event"), message("event", body, seq=1, ts=T0 + 20), UNTIL)
    assert [e.name for e in view.events] == ["limit.camera.temperature.red"]


@pytest.mark.parametrize(
    "order",
    list(itertools.permutations(["local", "stream", "log"])),
    ids="-".join,
)
def test_an_event_is_shown_once_whichever_of_its_copies_comes_first(
    order: tuple[str, ...],
) -> None:
    """The same event reaches the monitor on local/, in the stream and in an events.recent
    log, in any order (the stream can overtake the local copy)."""
    view = connected_view()
    view.absorb(topic("birth"), birth(1), T0)
    body = {"name": "device.online", "severity": "info", "message": "pdu online",
            "source": "pdu", "data": {}, "ts": T0 + 20}  # fmt: skip
    for copy in order:
        if copy == "local":
            view.absorb(topic("local", "event"), message("event", body, ts=T0 + 20), T0 + 21)
        elif copy == "stream":
            view.absorb(topic("event"), message("event", body, seq=1, ts=T0 + 20), T0 + 21)
        else:
            view.absorb_event_log([body])
    assert [(e.name, e.source) for e in view.events] == [("device.online", "pdu")]


@pytest.mark.parametrize("live", ["local", "stream"])
def test_an_alarm_in_the_event_log_still_raises_when_its_live_copy_comes(live: str) -> None:
    """The log fills the log only; the live copy after it (local/ or the stream, not held)
    raises the alarm, and the event is still shown once."""
    view = connected_view()
    view.absorb(topic("birth"), birth(1), T0)
    body = {"name": "limit.camera.temperature.red", "severity": "critical", "message": "hot",
            "source": "cam-a", "data": {"limit": "camera.temperature"}, "ts": T0 + 20}  # fmt: skip
    view.absorb_event_log([body])
    assert view.alarms == {}
    if live == "local":
        view.absorb(topic("local", "event"), message("event", body, ts=T0 + 20), T0 + 21)
    else:
        view.absorb(topic("event"), message("event", body, seq=1, ts=T0 + 20), T0 + 21)
    assert view.alarms[("cam-a", "camera.temperature")].level == "red"
    assert [e.name for e in view.events] == ["limit.camera.temperature.red"]


def test_no_broker_counts_from_when_it_was_first_lost_across_retries() -> None:
    view = connected_view()
    view.set_connection(False, "refused; retrying in 0.5 s", T0 + 10)
    view.set_connection(False, "refused; retrying in 1.0 s", T0 + 10.5)
    view.set_connection(False, "refused; retrying in 2.0 s", T0 + 11.5)
    status = view.status(T0 + 12)
    assert (status.state, status.since) == ("no broker", T0 + 10)
    assert status.detail == "refused; retrying in 2.0 s"  # the latest word on why
    assert rows.node_line(view, T0 + 12)[0].text == f"{NODE} NO BROKER for 2.0 s"
    view.set_connection(True, "connected", T0 + 13)
    view.set_connection(False, "lost", T0 + 20)
    assert view.status(T0 + 21).since == T0 + 20  # a new outage counts anew


def test_no_broker_from_the_start_counts_from_the_first_failed_attempt() -> None:
    view = NodeView(NODE)
    view.set_connection(False, "refused; retrying in 0.5 s", T0)
    view.set_connection(False, "refused; retrying in 1.0 s", T0 + 0.5)
    assert view.status(T0 + 5).since == T0


def test_a_cap_cut_shows_the_reserve_of_the_new_cap_at_once() -> None:
    view = connected_view()
    sample = json.loads(telemetry(1, T0, []))
    sample["body"]["power"] = {"cap_w": 300.0, "draw_w": 100.0, "reserve_w": 30.0}
    view.absorb(topic("telemetry"), json.dumps(sample).encode(), T0)
    cut = event("power.cap_changed", 2, ts=T0 + 1, old_cap_w=300.0, cap_w=120.0, reason="x")
    view.absorb(topic("event"), cut, T0 + 1)
    lines = [c.text for c in rows.power_lines(view, T0 + 1)]
    assert lines[:2] == ["draw 100 W of 120 W cap (node)", "reserve 12 W, free 8 W"]


def test_the_power_emergency_replay_ends_with_the_cut_caps_reserve() -> None:
    view = NodeView("bench-node")
    last = load_capture(Path(__file__).parent / "captures" / "power-emergency.jsonl", view)
    assert view.power["cap_w"] == 120
    assert "reserve 12 W" in rows.power_lines(view, last)[1].text


def snapshot(name: str, kind: str, status: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"device": name, "kind": kind, "online": True, "offline_reason": None,
            "identity": None, "status": status, "status_at": T0, "missed_polls": 0,
            "link": {}, **fields}  # fmt: skip


def eight_channel_view() -> NodeView:
    view = connected_view()
    channels = [{"channel": i, "on": i != 5, "tripped": i == 6, "voltage_mv": 28_000,
                 "current_ma": 0, "power_mw": 1_000 * i} for i in range(8)]  # fmt: skip
    pdu = snapshot("pdu", "pdu", {"bus_voltage_mv": 28_000, "total_power_mw": 28_000,
                                  "channels": channels})  # fmt: skip
    view.absorb(topic("state", "pdu"), message("state", pdu), T0)
    for name, channel in [("cam-a", 0), ("cam-b", 1), ("key", 2), ("fill", 2)]:
        wired = snapshot(name, "light", {}, pdu_channel=channel)
        view.absorb(topic("state", name), message("state", wired), T0)
    return view


def test_the_pdu_panel_shows_every_channel_its_devices_and_state() -> None:
    lines = rows.pdu_lines(eight_channel_view())
    assert [c.text for c in lines] == [
        " 0 cam-a       on      0.0 W",
        " 1 cam-b       on      1.0 W",
        " 2 fill,key    on      2.0 W",
        " 3 -           on      3.0 W",
        " 4 -           on      4.0 W",
        " 5 -           off     5.0 W",
        " 6 -           TRIP    6.0 W",
        " 7 -           on      7.0 W",
    ]
    assert lines[5].style == "dim" and lines[6].style == "bold red"
    assert max(len(c.text) for c in lines) <= 28  # inside the panel's 32 columns


def test_no_pdu_no_panel_and_a_pdu_not_yet_read_says_so() -> None:
    view = connected_view()
    assert rows.pdu_lines(view) == []
    view.absorb(topic("state", "pdu"), message("state", snapshot("pdu", "pdu", {})), T0)
    assert [c.text for c in rows.pdu_lines(view)] == ["pdu: no channels reported yet"]


def test_a_cameras_settings_read_as_a_dp_says_them() -> None:
    view = connected_view()
    settings = {"width": 3840, "height": 2160, "rate": "fps_23_976", "codec": "prores_422_hq",
                "bitrate_kbps": 700_000, "shutter_decideg": 1728, "iso": 800,
                "white_balance_k": 5600}  # fmt: skip
    cam = snapshot("cam-a", "camera", {}, camera_settings=settings)
    view.absorb(topic("state", "cam-a"), message("state", cam), T0)
    view.absorb(topic("state", "cam-b"), message("state", snapshot("cam-b", "camera", {})), T0)
    lines = rows.camera_lines(view)
    assert [c.text for c in lines] == [
        "cam-a            ISO 800 · 172.8° · 5600 K · 23.976 fps · ProRes 422 HQ 3840x2160"
    ]  # cam-b has not reported its settings: no line rather than a guess
    assert "ISO 800 · 172.8°" in summary(view, T0)


SETTINGS_FIELDS = ["width", "height", "rate", "codec", "bitrate_kbps", "shutter_decideg", "iso",
                   "white_balance_k"]  # fmt: skip
CHANNEL_FIELDS = ["channel", "on", "tripped", "power_mw"]
STATUS_FIELDS = ["state", "error", "media_used_bytes", "media_free_bytes", "temperature_cdeg",
                 "draw_mw", "timecode_label"]  # fmt: skip


@given(
    st.dictionaries(st.sampled_from(SETTINGS_FIELDS), JSON, max_size=8),
    JSON | st.lists(JSON | st.dictionaries(st.sampled_from(CHANNEL_FIELDS), JSON), max_size=4),
    st.dictionaries(st.sampled_from(STATUS_FIELDS), JSON, max_size=7),
)
def test_any_settings_status_or_channels_a_node_sends_are_drawn_never_a_crash(
    settings: dict[str, Any], channels: Any, status: dict[str, Any]
) -> None:
    view = connected_view()
    cam = snapshot("cam-a", "camera", status, camera_settings=settings or None, pdu_channel=1)
    pdu = snapshot("pdu", "pdu", {"channels": channels})
    view.absorb(topic("state", "cam-a"), message("state", cam), T0)
    view.absorb(topic("state", "pdu"), message("state", pdu), T0)
    drawn = [*rows.camera_lines(view), *rows.pdu_lines(view)]
    for name in view.devices:  # a body JSON cannot carry (NaN) never got in
        drawn += rows.device_row(view, name, T0)
    assert all(isinstance(c.text, str) for c in drawn)
    summary(view, T0)
