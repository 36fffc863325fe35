"""Alarms shared between consoles: acknowledgements and shelves with who and when, and
alarms from stored data replayed after a loss of signal shown as history, not as new."""

from __future__ import annotations

from typing import Any

from protocols import alarms, ground
from tests.ground.node_messages import NODE, T0, birth, event, telemetry
from tools.monitor.view import NodeView

KEY = ("cam-0", "camera.temperature")
RED = [{"device": "cam-0", "limit": "camera.temperature", "level": "red"}]
YELLOW = [{"device": "cam-0", "limit": "camera.temperature", "level": "yellow"}]


def action(kind: alarms.Action, at: float, by: str = "director-1", **fields: Any) -> bytes:
    message = alarms.AlarmAction(v=1, node=NODE, source=KEY[0], what=KEY[1], action=kind,
                                 by=by, at=at, raised_at=at, **fields)  # fmt: skip
    return alarms.encode(message)


def feed(view: NodeView, leaf: str, payload: bytes, now: float, *rest: str) -> None:
    view.absorb(ground.topic(NODE, leaf, *rest), payload, now)


def shared(view: NodeView, kind: alarms.Action, payload: bytes, now: float) -> None:
    view.absorb(alarms.topic(NODE, KEY[0], KEY[1], kind), payload, now)


def live(limits: list[dict[str, str]]) -> NodeView:
    view = NodeView(NODE)
    view.set_connection(True, "connected", T0)
    feed(view, "birth", birth(1, 1, T0), T0)
    feed(view, "telemetry", telemetry(1, T0 + 1, limits=limits), T0 + 1)
    return view


def test_another_consoles_ack_is_seen_with_who_and_when() -> None:
    view = live(YELLOW)
    assert [a.key for a in view.unacknowledged(T0 + 1)] == [KEY]
    shared(view, "ack", action("ack", T0 + 2, level="yellow"), T0 + 2)
    alarm = view.alarms[KEY]
    assert alarm.acknowledged and alarm.acked_by == "director-1" and alarm.acked_at == T0 + 2
    assert not view.unacknowledged(T0 + 2)
    # worse than what was acknowledged: new again, for everyone
    feed(view, "telemetry", telemetry(2, T0 + 3, limits=RED), T0 + 3)
    assert [a.key for a in view.unacknowledged(T0 + 3)] == [KEY]


def test_an_ack_lasts_until_the_alarm_clears() -> None:
    view = live(RED)
    shared(view, "ack", action("ack", T0 + 2, level="red"), T0 + 2)
    feed(view, "telemetry", telemetry(2, T0 + 3, limits=[]), T0 + 3)
    assert KEY not in view.alarms and view.acks_ended == {KEY}  # its retained ack is to go
    feed(view, "telemetry", telemetry(3, T0 + 4, limits=RED), T0 + 4)
    assert [a.key for a in view.unacknowledged(T0 + 4)] == [KEY]  # raised again: new


def test_a_retained_ack_met_before_the_alarm_applies_once_it_is_raised() -> None:
    view = NodeView(NODE)
    view.set_connection(True, "connected", T0)
    shared(view, "ack", action("ack", T0 - 5, by="fc-1", level="red"), T0)
    feed(view, "birth", birth(1, 1, T0, limits=RED), T0)
    assert view.alarms[KEY].acknowledged and view.alarms[KEY].acked_by == "fc-1"


def test_a_stale_ack_does_not_cover_a_raising_seen_after_it() -> None:
    """An ack whose alarm cleared while no console watched (so nobody removed it) does not
    silence the alarm going up again later."""
    view = NodeView(NODE)
    view.set_connection(True, "connected", T0)
    feed(view, "birth", birth(1, 1, T0), T0)
    shared(view, "ack", action("ack", T0 - 600, level="red"), T0)
    red = event(1, T0 + 5, name="limit.camera.temperature.red", source="cam-0",
                severity="critical", limit="camera.temperature")  # fmt: skip
    feed(view, "event", red, T0 + 5)
    assert [a.key for a in view.unacknowledged(T0 + 5)] == [KEY]


def test_its_removal_undoes_it_for_a_console_that_starts_later() -> None:
    view = live(RED)
    shared(view, "ack", action("ack", T0 + 2, level="red"), T0 + 2)
    shared(view, "ack", b"", T0 + 3)  # the retained ack removed: the alarm cleared meanwhile
    assert not view._acks


def test_a_shelved_alarm_waits_for_nobody_until_the_shelve_lapses() -> None:
    view = live(RED)
    shared(view, "shelve", action("shelve", T0 + 2, until=T0 + 600, reason="lamp swap"), T0 + 2)
    shelve = view.shelved(KEY, T0 + 10)
    assert shelve is not None and shelve.by == "director-1" and shelve.reason == "lamp swap"
    assert not view.unacknowledged(T0 + 10)
    assert [a.key for a in view.unacknowledged(T0 + 601)] == [KEY]  # lapsed
    shared(view, "shelve", action("unshelve", T0 + 20), T0 + 20)
    assert view.shelved(KEY, T0 + 21) is None
    assert [a.action for a in view.alarm_log] == ["shelve", "unshelve"]


def test_actions_that_break_the_rules_are_counted_not_applied() -> None:
    view = live(RED)
    shared(view, "shelve", action("shelve", T0 + 2, until=T0 + 600), T0 + 2)  # no reason
    shared(view, "ack", b"{not json", T0 + 2)
    view.absorb(ground.topic(NODE, alarms.LEAF, "elsewhere"), b"x", T0 + 2)
    assert view.malformed == 3 and not view.shelves and not view.alarms[KEY].acknowledged


def test_alarms_replayed_after_a_loss_of_signal_are_history_unless_still_active() -> None:
    view = NodeView(NODE)
    view.set_connection(True, "connected", T0)
    # Contact returns: the birth lists what is out of bounds now (the light's temperature)...
    still = [{"device": "key", "limit": "light.temperature", "level": "yellow"}]
    feed(view, "birth", birth(1, 2, T0 + 900, limits=still), T0 + 900)
    # ... then the backlog: a camera went red and cleared during the gap, the light went yellow.
    for seq, (name, source) in enumerate(
        [
            ("limit.camera.temperature.red", "cam-0"),
            ("limit.camera.temperature.cleared", "cam-0"),
            ("limit.light.temperature.yellow", "key"),
        ],
        start=1,
    ):
        data = {"limit": name.rpartition(".")[0].removeprefix("limit.")}
        payload = event(seq, T0 + 100 * seq, name=name, source=source, severity="warning",
                        historical=True, **data)  # fmt: skip
        feed(view, "event", payload, T0 + 901)
    assert list(view.alarms) == [("key", "light.temperature")]  # active now: an alarm
    assert [e.name for e in view.past_alarms] == [
        "limit.camera.temperature.red",
        "limit.camera.temperature.cleared",
        "limit.light.temperature.yellow",
    ]  # all of it shown as history
