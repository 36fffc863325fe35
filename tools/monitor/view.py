"""What the ground knows of one node, built from its MQTT messages alone.

No I/O and no clock of its own: every message comes in with the time it was received, and
every question about time ("is this row stale", "how long has the node been silent") takes
`now`. The screen, the text summary and the tests all read the same view, and a capture
replayed into it renders exactly as it did live.
"""

from __future__ import annotations

import bisect
import datetime
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import msgspec

from protocols import alarms, ground
from tools.stream_sequence import StreamSequence

STALE_AFTER_S = 5.0  # a device reading older than this is marked stale
LOS_AFTER_S = 15.0  # an online node silent this long is out of contact (three samples)
POWER_WINDOW_S = 600.0  # the draw history the sparkline shows
EVENTS_KEPT = 5000
# The paths an event's copies come by (NodeView._copy_before).
_LOG, _LOCAL, _STREAM = "log", "local", "stream"
COMMANDS_KEPT = 200
SEVERITIES = ["diagnostic", "info", "warning", "critical"]

AlarmKey = tuple[str, str]  # (source, what): one alarm per device and condition


@dataclass
class Alarm:
    """A red or yellow condition; stays on screen until cleared *and* acknowledged."""

    key: AlarmKey
    level: str  # "red" | "yellow"
    message: str
    raised_at: float
    active: bool = True
    acknowledged: bool = False
    acked_by: str = ""  # the console that acknowledged it (this one or another)
    acked_at: float | None = None
    seen_rising: bool = False  # raised by an event: raised_at is when it went up


@dataclass
class EventLine:
    seq: int | None  # the node's sequence number; None when read from its event log
    ts: float
    severity: str
    name: str
    source: str
    message: str
    historical: bool

    @property
    def identity(self) -> tuple[float, str, str]:
        """The same event, whether it came on the stream or from the node's event log."""
        return (self.ts, self.name, self.source)


@dataclass
class Take:
    take_id: int
    scene: str
    take: int
    roll: str | None
    timecode_in: str
    started_at: float
    clips: dict[str, int]  # camera -> clip id
    closed: set[str] = field(default_factory=set)  # cameras whose clip has ended
    circled: bool = False

    @property
    def rolling(self) -> bool:
        return bool(set(self.clips) - self.closed)


@dataclass
class CommandLine:
    id: str
    name: str
    args: dict[str, Any]
    sent_at: float
    status: str = "sent"  # then the node's: ok, rejected, failed, armed
    reason: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    sender: str = ""  # the key id that signed it: every console sees every console's commands
    own: bool = True  # sent from this monitor (its arguments known, its result announced)
    armed_by: str = ""  # an armed command, or a confirm: the key id that armed it


@dataclass(frozen=True)
class NodeStatus:
    state: str  # "waiting", "online", "held", "offline", "loss of signal", "no broker"
    since: float | None
    detail: str


# Events that raise an alarm, and the events that clear it: name -> (what, level).
_RAISES = {
    "power.over_cap": ("power cap", "yellow"),
    "power.shed_overdue": ("power cap", "red"),
    "power.shed_failed": ("shedding", "red"),
    "device.offline": ("link", "yellow"),
}
_CLEARS = {
    "power.within_cap": "power cap",
    "device.online": "link",
}


class NodeView:
    def __init__(
        self,
        node: str,
        *,
        stale_after_s: float = STALE_AFTER_S,
        los_after_s: float = LOS_AFTER_S,
    ) -> None:
        self.node = node
        self.stale_after_s = stale_after_s
        self.los_after_s = los_after_s
        # the monitor's own connection to the broker
        self.connected = False
        self.connection_detail = "connecting"
        self.connection_changed_at: float | None = None
        # the node's session
        self.birth: dict[str, Any] | None = None
        self.stream_restarts = 0
        self.birth_bd_seq = 0
        self.death_bd_seq = 0
        self.death_reason = ""
        self.session_changed_at: float | None = None
        self.last_heard: float | None = None
        self.link: dict[str, Any] | None = None  # the node's last notice: stream held or flowing
        self.link_bd_seq = 0
        self.birth_at = 0.0  # node time of the newest birth
        self.silences: list[tuple[float, float]] = []  # (from, to): each loss of signal seen
        # the stream
        self.sequence = StreamSequence()
        self.received = 0
        self.malformed = 0  # messages on the node's topics that break its schema
        # what it says
        self.devices: dict[str, dict[str, Any]] = {}
        self.telemetry: dict[str, Any] = {}
        self.power: dict[str, Any] = {}  # the last sample's, moved on by power events since
        self._power_at = 0.0
        self._reserve_share = 0.0  # the reserve as a share of the cap, as last reported
        self.power_samples: list[tuple[float, float]] = []  # (node time, watts)
        self.events: deque[EventLine] = deque(maxlen=EVENTS_KEPT)
        # every event shown, by identity (oldest first, bounded), and the path of the copy
        # that showed it (_LOG, _LOCAL, _STREAM): the others may come before or after it
        self._shown: dict[tuple[float, str, str], str] = {}
        self.alarms: dict[AlarmKey, Alarm] = {}
        # shared between consoles (protocols/alarms.py): the latest ack and shelve per alarm
        self._acks: dict[AlarmKey, alarms.AlarmAction] = {}
        self.shelves: dict[AlarmKey, alarms.AlarmAction] = {}
        self._alarm_keys: dict[str, AlarmKey] = {}  # topic id -> alarm
        self.alarm_log: deque[alarms.AlarmAction] = deque(maxlen=EVENTS_KEPT)
        self.acks_ended: set[AlarmKey] = set()  # cleared while acknowledged: retained ack to go
        # alarm events that came as history (after a loss of signal): shown as such, not raised
        self.past_alarms: deque[EventLine] = deque(maxlen=50)
        self._limit_keys: set[AlarmKey] = set()  # the node's lists of limits speak for these
        self._limits_at = 0.0  # node time of the newest such list applied
        self.takes: dict[int, Take] = {}
        self.commands: dict[str, CommandLine] = {}
        # who holds command authority, by scope ("node", or a role): the node's word
        self.authority: dict[str, dict[str, Any]] = {}
        self._authority_at = 0.0  # node time of the newest change applied
        self.revision = 0  # bumped on every change: the screen redraws when it moves

    # -- input -----------------------------------------------------------------------------

    def set_connection(self, connected: bool, detail: str, now: float) -> None:
        """Each retry says why it failed; the outage counts from the first of them."""
        if connected != self.connected or self.connection_changed_at is None:
            self.connection_changed_at = now
        self.connected = connected
        self.connection_detail = detail
        if connected and self.last_heard is not None:
            self.last_heard = now  # our own outage is not the node's silence
        self.revision += 1

    def absorb(self, topic: str, payload: bytes, now: float) -> None:
        """One message as received; one that breaks the schema is counted and dropped."""
        parsed = ground.parse_topic(topic)
        if parsed is None or parsed[0] != self.node or parsed[1] in (ground.COMMAND, ground.FILE):
            return
        _, leaf, rest = parsed
        if leaf == alarms.LEAF:
            self._alarm_message(rest, payload)
            return
        kind = ground.kind_of(leaf, rest)
        try:
            envelope = ground.decode_checked(payload, kind)
            self._dispatch(kind, rest, envelope, now)
        except (msgspec.DecodeError, msgspec.ValidationError, LookupError, TypeError, ValueError,
                AttributeError):  # fmt: skip
            self.malformed += 1  # the node's own schema says no such message exists
            return
        self.received += 1
        self.revision += 1

    def _dispatch(
        self, kind: str, rest: tuple[str, ...], envelope: ground.Envelope, now: float
    ) -> None:
        self._heard(now, kind)
        if kind == ground.BIRTH:
            self._birth(envelope, now)
        elif kind == ground.DEATH:
            self._death(envelope, now)
        elif kind == ground.LINK:
            self._link(envelope)
        elif kind == ground.STATE and rest:
            self._state(rest[-1], envelope.body)  # state/<device> or local/state/<device>
        elif kind == ground.RESULT and envelope.seq is None:
            self._result(envelope.body, now)  # the node's immediate copy on its own broker
        elif kind == ground.EVENT and envelope.seq is None:
            self._local_event(envelope.body)  # ditto: the crew's view, never held
        elif kind == ground.LIMITS:
            self._limits_listed(envelope.body["limits"], "listed onboard", envelope.ts)
        elif kind in ground.STREAM_KINDS and envelope.seq is not None:
            if not self.sequence.accept(envelope.seq):
                return
            if kind == ground.EVENT:
                self._event(envelope.body, envelope.historical, envelope.seq)
            elif kind == ground.TELEMETRY:
                self._telemetry(envelope.body)
            else:
                self._result(envelope.body, now)

    def _heard(self, now: float, leaf: str) -> None:
        silent = self.last_heard is not None and now - self.last_heard > self.los_after_s
        if silent and self.online and leaf != ground.BIRTH:
            assert self.last_heard is not None
            self.silences.append((self.last_heard, now))
        if leaf != ground.DEATH:
            self.last_heard = now

    def _birth(self, envelope: ground.Envelope, now: float) -> None:
        if self.sequence.follow(envelope.stream):
            self._stream_restarted()
        bd_seq = envelope.bd_seq or 0
        if bd_seq < self.birth_bd_seq:
            return  # an older session's retained birth
        # A new session, or the same one's birth again (on every re-subscription, it is
        # retained): that one must not undo fresher states.
        new_session = self.birth is None or bd_seq > self.birth_bd_seq
        if new_session:
            self.session_changed_at = float(envelope.body.get("session_started") or now)
        self.birth = envelope.body
        self.birth_bd_seq = bd_seq
        self.birth_at = max(self.birth_at, envelope.ts)
        for name, snapshot in envelope.body.get("devices", {}).items():
            known = self.devices.get(name)
            if new_session or known is None or _at(snapshot) > _at(known):
                self.devices[name] = snapshot
        self._limits_listed(self.birth["limits"], "listed at the node's birth", envelope.ts)
        self._power_update(envelope.body.get("budget", {}).get("power", {}), envelope.ts)

    def _link(self, envelope: ground.Envelope) -> None:
        """The node's word on its stream; an older one (retained, seen again) says nothing."""
        body = envelope.body
        bd_seq = envelope.bd_seq or 0
        if self.link is not None and (bd_seq, body["at"]) < (self.link_bd_seq, self.link["at"]):
            return
        self.link, self.link_bd_seq = body, bd_seq
        source = f"listed when the stream was {body['state']}"
        self._limits_listed(body["limits"], source, float(body["at"]))

    def _stream_restarted(self) -> None:
        """The node lost its stored state: its session numbers start again too."""
        self.birth_bd_seq = self.death_bd_seq = 0
        self.death_reason = ""
        self.stream_restarts += 1

    def _death(self, envelope: ground.Envelope, now: float) -> None:
        if envelope.stream is not None and envelope.stream != self.sequence.stream:
            if self.birth is not None:
                return  # the will of a session from before the node's state was lost
            self.sequence.follow(envelope.stream)
        bd_seq = envelope.bd_seq or 0
        if bd_seq < self.death_bd_seq:
            return
        self.death_bd_seq = bd_seq
        self.death_reason = str(envelope.body.get("reason", ""))
        if self.death_bd_seq >= self.birth_bd_seq:
            self.session_changed_at = now

    def _state(self, device: str, body: dict[str, Any]) -> None:
        self.devices[device] = body
        status = body.get("status") or {}
        if body.get("kind") == "pdu" and "total_power_mw" in status and body.get("status_at"):
            self._power_sample(float(body["status_at"]), status["total_power_mw"] / 1000)

    def _telemetry(self, body: dict[str, Any]) -> None:
        if body.get("ts", 0) >= self.telemetry.get("ts", 0):
            self.telemetry = body
        if "limits" in body:
            self._limits_listed(body["limits"], "listed in the node's telemetry", body["ts"])
        self._power_update(body.get("power", {}), float(body.get("ts", 0.0)))
        if not any(d.get("kind") == "pdu" for d in self.devices.values()):
            self._power_sample(float(body["ts"]), float(body["power"]["draw_w"]))

    def _power_update(self, figures: dict[str, Any], at: float) -> None:
        if at >= self._power_at:
            self.power.update(figures)
            self._power_at = at
            cap, reserve = figures.get("cap_w"), figures.get("reserve_w")
            if cap and reserve is not None:
                self._reserve_share = float(reserve) / float(cap)

    def _power_sample(self, ts: float, watts: float) -> None:
        at = bisect.bisect_left(self.power_samples, (ts, watts))
        if self.power_samples[at : at + 1] == [(ts, watts)]:
            return  # a retained state seen again on re-subscription
        self.power_samples.insert(at, (ts, watts))
        horizon = self.power_samples[-1][0] - POWER_WINDOW_S
        while self.power_samples and self.power_samples[0][0] < horizon:
            self.power_samples.pop(0)

    def _copy_before(self, line: EventLine, path: str) -> str | None:
        """The path (_LOG, _LOCAL, _STREAM) of the copy of this event shown before this one,
        None if this is the first; remembers this one. Stream copies are told apart by their
        numbers, so two of them never hide each other: a stream copy matched against an
        earlier local one leaves _STREAM behind, and a later namesake is new."""
        before = self._shown.get(line.identity)
        if before == _STREAM and path == _STREAM:
            before = None
        if path != _LOG or before is None:
            self._shown[line.identity] = _STREAM if _STREAM in (path, before) else path
            if len(self._shown) > 2 * EVENTS_KEPT:
                del self._shown[next(iter(self._shown))]
        return before

    def _event(self, body: dict[str, Any], historical: bool, seq: int) -> None:
        line = _event_line(body, seq, historical=historical)
        before = self._copy_before(line, _STREAM)
        if before == _LOCAL:
            return  # seen already, at once, on local/
        if before is None:
            self.events.append(line)  # (the event log's copy fills the log, nothing more)
        if not historical:
            # A historical event is history: what is true now came first, in the birth's and
            # the link notice's lists; an alarm that has since cleared must not come back.
            self._alarm_from(line, body.get("data") or {})
        elif _is_alarm_event(line):
            self.past_alarms.append(line)
        self._power_from(line, body.get("data") or {})
        self._take_from(line, body.get("data") or {})
        self._authority_from(line, body.get("data") or {})

    def _local_event(self, body: dict[str, Any]) -> None:
        """An event on the node's own broker: live, whatever the link; its stream copy is the
        same event, usually later but not always."""
        line = _event_line(body, None, historical=False)
        before = self._copy_before(line, _LOCAL)
        if before in (_STREAM, _LOCAL):
            return  # its stream copy overtook it (the stream is not held), or a redelivery
        if before is None:
            self.events.append(line)
        self._alarm_from(line, body.get("data") or {})
        self._power_from(line, body.get("data") or {})
        self._take_from(line, body.get("data") or {})
        self._authority_from(line, body.get("data") or {})

    def _authority_from(self, line: EventLine, data: dict[str, Any]) -> None:
        """A change of command authority; an older one (replayed after a gap) says nothing."""
        if line.name != "authority.changed" or line.ts < self._authority_at:
            return
        self._authority_at = line.ts
        scope = str(data.get("scope", "node"))
        if data.get("holder"):
            self.authority[scope] = {"key_id": data["holder"], "role": data.get("role"),
                                     "since": line.ts, "by": data.get("by"),
                                     "reason": data.get("how")}  # fmt: skip
        else:
            self.authority.pop(scope, None)

    def _alarm_from(self, line: EventLine, data: dict[str, Any]) -> None:
        family, _, outcome = line.name.rpartition(".")
        if family.startswith(("limit.", "budget.")) and outcome in ("red", "yellow", "cleared"):
            what = str(data.get("limit") or family)
            if family.startswith("limit."):
                self._limit_keys.add((line.source, what))
            if outcome == "cleared":
                self._clear((line.source, what))
            else:
                self._raise((line.source, what), outcome, line.message, line.ts, rising=True)
        elif line.name in _RAISES:
            what, level = _RAISES[line.name]
            self._raise((line.source, what), level, line.message, line.ts, rising=True)
        elif line.name in _CLEARS:
            self._clear((line.source, _CLEARS[line.name]))

    def _power_from(self, line: EventLine, data: dict[str, Any]) -> None:
        if line.name == "power.cap_changed" and "cap_w" in data:
            # The node keeps its reserve a share of the cap: the new cap's comes with it,
            # not a sample later.
            cap = float(data["cap_w"])
            self._power_update({"cap_w": cap, "reserve_w": cap * self._reserve_share}, line.ts)
        elif line.name in ("power.over_cap", "power.within_cap"):
            self._power_update({"shedding": line.name == "power.over_cap"}, line.ts)

    def _take_from(self, line: EventLine, data: dict[str, Any]) -> None:
        if line.name == "take.started":
            self._take(data, line.ts)
        elif line.name in ("take.circled", "take.uncircled") and data.get("take_id") in self.takes:
            self.takes[data["take_id"]].circled = line.name == "take.circled"
        elif line.name == "take.cut":
            for camera, clip in (data.get("clips") or {}).items():
                self._clip_closed(camera, clip.get("clip_id"))
        elif line.name == "camera.record_stopped":
            self._clip_closed(line.source, data.get("value"))

    def _take(self, data: dict[str, Any], started_at: float) -> None:
        take_id = data.get("take_id")
        if not isinstance(take_id, int):
            return
        clips = {cam: int(c["clip_id"]) for cam, c in (data.get("clips") or {}).items()}
        self.takes[take_id] = Take(
            take_id=take_id,
            scene=str(data.get("scene", "")),
            take=int(data.get("take", 0)),
            roll=data.get("roll"),
            timecode_in=str(data.get("timecode_in", "")),
            started_at=started_at,
            clips=clips,
            circled=bool(data.get("circled", False)),
        )

    def _clip_closed(self, camera: str, clip_id: object) -> None:
        for take in self.takes.values():
            if take.clips.get(camera) == clip_id:
                take.closed.add(camera)

    def absorb_shot_log(self, takes: list[dict[str, Any]]) -> None:
        """Takes from a `shotlog.query` result: the node's record, over what events said.

        It covers what happened before the monitor started, or while it was cut off.
        """
        for entry in takes:
            clips = {c["camera"]: int(c["clip_id"]) for c in entry.get("clips", [])}
            take = Take(
                take_id=int(entry["take_id"]),
                scene=str(entry.get("scene", "")),
                take=int(entry.get("take", 0)),
                roll=entry.get("roll"),
                timecode_in=str(entry.get("timecode_in") or ""),
                started_at=float(entry.get("started_at") or 0.0),
                clips=clips,
                closed={c["camera"] for c in entry.get("clips", []) if c.get("state") != "rolling"},
                circled=bool(entry.get("circled")),
            )
            self.takes[take.take_id] = take
        self.revision += 1

    def absorb_event_log(self, bodies: list[dict[str, Any]]) -> None:
        """Events from an `events.recent` result: the day before the monitor joined.

        They fill the log only: alarms, power and takes come from the node's own lists of
        what is true now (limits in telemetry, the shot log), not from old events.
        """
        fresh: list[EventLine] = []
        for body in bodies:
            line = _event_line(body, None, historical=True)
            if self._copy_before(line, _LOG) is None:
                fresh.append(line)
        merged = sorted([*fresh, *self.events], key=lambda line: line.ts)
        self.events = deque(merged[-EVENTS_KEPT:], maxlen=EVENTS_KEPT)
        self.revision += 1

    def _result(self, body: dict[str, Any], now: float) -> None:
        command = self.commands.get(str(body.get("id")))
        if command is None:
            if not isinstance(body.get("id"), str) or not isinstance(body.get("name"), str):
                return
            # Another console's command: shown too, marked by its sender.
            command = CommandLine(body["id"], body["name"], {}, now, own=False)
            self._remember(command)
        command.sender = str(body.get("key_id") or "")
        command.status = str(body.get("status", ""))
        command.reason = str(body.get("reason", ""))
        command.result = dict(body.get("result") or {})
        command.armed_by = str(body.get("armed_by") or command.result.get("armed_by") or "")
        if not command.own:
            return  # its catch-up answers are another monitor's
        if command.name == "shotlog.query" and command.status == "ok":
            self.absorb_shot_log(list(command.result.get("takes", [])))
        elif command.name == "events.recent" and command.status == "ok":
            self.absorb_event_log(list(command.result.get("events", [])))
        elif command.name == "authority.status" and command.status == "ok":
            self.authority = dict(command.result.get("holders") or {})

    # -- alarms ------------------------------------------------------------------------------

    def _limits_listed(self, listed: list[dict[str, Any]], source: str, at: float) -> None:
        """Match the alarms to the node's list of limits out of bounds, unless it is older.

        The list speaks for every limit: those not on it have cleared. It catches what a
        monitor that joined late, or lost events in a gap, would otherwise never see. An
        older list (a retained birth seen again, a sample replayed late) says nothing new.
        """
        if at < self._limits_at:
            return
        self._limits_at = at
        active = {(lim["device"], lim["limit"]): lim["level"] for lim in listed}
        for key in self._limit_keys - set(active):
            self._clear(key)
        for key, level in active.items():
            self._limit_keys.add(key)
            alarm = self.alarms.get(key)
            if alarm is None or not alarm.active or alarm.level != level:
                self._raise(key, level, f"{key[0]} {key[1]} {level} ({source})", at)

    def _raise(
        self, key: AlarmKey, level: str, message: str, at: float, *, rising: bool = False
    ) -> None:
        """`rising`: seen going up (an event), so `at` is when; from a list, only since when."""
        alarm = self.alarms.get(key)
        if alarm is None:
            self.alarms[key] = Alarm(key, level, message, at, seen_rising=rising)
            self._apply_ack(key)
            return
        worse = level == "red" and alarm.level != "red"
        if worse or not alarm.active:
            alarm.acknowledged = False
            alarm.raised_at = at
            alarm.seen_rising = rising
        alarm.level, alarm.message, alarm.active = level, message, True
        self._apply_ack(key)

    def _clear(self, key: AlarmKey) -> None:
        if self._acks.pop(key, None) is not None:
            self.acks_ended.add(key)  # its episode is over: the next raising is new
        alarm = self.alarms.get(key)
        if alarm is None:
            return
        alarm.active = False
        if alarm.acknowledged:
            del self.alarms[key]

    # -- alarms shared between consoles (protocols/alarms.py) ----------------------------------

    def _alarm_message(self, rest: tuple[str, ...], payload: bytes) -> None:
        """Another console's (or our own) ack or shelve; an empty one removes it."""
        if len(rest) != 3 or rest[0] != alarms.ALARM:
            self.malformed += 1
            return
        if not payload:
            key = self._alarm_keys.get(rest[1])
            if key is not None:
                (self._acks if rest[2] == "ack" else self.shelves).pop(key, None)
                self.revision += 1
            return
        try:
            action = alarms.decode(payload)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
            self.malformed += 1
            return
        if action.node == self.node:
            self.alarm_action(action)

    def alarm_action(self, action: alarms.AlarmAction) -> None:
        key = (action.source, action.what)
        self._alarm_keys[alarms.alarm_id(*key)] = key
        if any(a.at == action.at and a.by == action.by for a in self.alarm_log):
            return  # ours, echoed by the broker, or a retained one seen again
        self.alarm_log.append(action)
        if action.action == "ack":
            self._acks[key] = action
            self._apply_ack(key)
        elif action.action == "shelve":
            self.shelves[key] = action
        else:
            self.shelves.pop(key, None)
        self.revision += 1

    def _apply_ack(self, key: AlarmKey) -> None:
        """An acknowledgement covers the alarm while it is no worse than the level acked."""
        alarm, ack = self.alarms.get(key), self._acks.get(key)
        if alarm is None or ack is None or alarm.acknowledged:
            return
        if _LEVELS.get(alarm.level, 2) > _LEVELS.get(ack.level, 0):
            return
        if alarm.seen_rising and alarm.raised_at > ack.raised_at:
            return  # it went up again after that ack (whose clear nobody removed it for)
        alarm.acknowledged, alarm.acked_by, alarm.acked_at = True, ack.by, ack.at
        if not alarm.active:
            del self.alarms[key]

    def shelved(self, key: AlarmKey, now: float) -> alarms.AlarmAction | None:
        """The shelve in force on this alarm now, if any."""
        shelve = self.shelves.get(key)
        return shelve if shelve is not None and (shelve.until or 0.0) > now else None

    def acknowledge(self, key: AlarmKey | None = None) -> int:
        """Acknowledge one alarm, or all of them; cleared ones then leave the screen."""
        keys = [key] if key is not None else list(self.alarms)
        done = 0
        for k in keys:
            alarm = self.alarms.get(k)
            if alarm is None or alarm.acknowledged:
                continue
            alarm.acknowledged = True
            done += 1
            if not alarm.active:
                del self.alarms[k]
        self.revision += 1
        return done

    def unacknowledged(self, now: float | None = None) -> list[Alarm]:
        """Alarms waiting for a person; given `now`, those shelved then are not."""
        waiting = [a for a in self.alarms.values() if not a.acknowledged]
        return [a for a in waiting if now is None or self.shelved(a.key, now) is None]

    # -- commands ----------------------------------------------------------------------------

    def command_sent(
        self, command_id: str, name: str, args: dict[str, Any], now: float, sender: str = ""
    ) -> None:
        self._remember(CommandLine(command_id, name, args, now, sender=sender))

    def _remember(self, command: CommandLine) -> None:
        self.commands[command.id] = command
        while len(self.commands) > COMMANDS_KEPT:
            del self.commands[next(iter(self.commands))]
        self.revision += 1

    def command_failed(self, command_id: str, reason: str) -> None:
        """A command that never reached the broker."""
        command = self.commands[command_id]
        command.status, command.reason = "unsent", reason
        self.revision += 1

    # -- questions -----------------------------------------------------------------------------

    def commands_authority(self) -> bool:
        """Whether the node enforces command authority (its birth lists the commands)."""
        return "authority.claim" in ((self.birth or {}).get("commands") or {})

    @property
    def online(self) -> bool:
        return self.birth is not None and self.birth_bd_seq > self.death_bd_seq

    def held(self) -> dict[str, Any] | None:
        """The node's notice that its stream is held, while that is its latest word."""
        link = self.link
        if link is None or link.get("state") != "held":
            return None
        if self.link_bd_seq <= self.death_bd_seq or self.link_bd_seq < self.birth_bd_seq:
            return None  # its session has ended, or a newer one began
        return link

    def backlog(self) -> tuple[dict[str, Any], float]:
        """The node's outbox as last reported, and when: telemetry, birth or link notice."""
        figures = [(float(self.telemetry.get("ts", 0.0)), self.telemetry.get("backlog") or {})]
        if self.birth is not None:
            figures.append((self.birth_at, self.birth.get("backlog") or {}))
        if self.link is not None:
            figures.append((float(self.link["at"]), self.link.get("backlog") or {}))
        at, backlog = max(figures, key=lambda figure: figure[0])
        return backlog, at

    def status(self, now: float) -> NodeStatus:
        if not self.connected:
            return NodeStatus("no broker", self.connection_changed_at, self.connection_detail)
        held = self.held()
        if held is not None:
            until = held.get("until")
            heard = self.last_heard or 0.0
            if until is not None and now > until + self.los_after_s and heard < until:
                detail = f"expected back at {_hhmm(until)}, silent for {now - heard:.0f} s"
                return NodeStatus("loss of signal", heard, detail)
            when = "unknown" if until is None else _hhmm(until)
            return NodeStatus("held", float(held["at"]), f"until {when} ({held['reason']})")
        if self.birth is None and not self.death_bd_seq:
            return NodeStatus("waiting", None, f"no birth from {self.node} yet")
        if not self.online:
            return NodeStatus("offline", self.session_changed_at, self.death_reason)
        silent = now - self.last_heard if self.last_heard is not None else 0.0
        if silent > self.los_after_s:
            return NodeStatus("loss of signal", self.last_heard, f"silent for {silent:.0f} s")
        return NodeStatus("online", self.session_changed_at, f"bd_seq {self.birth_bd_seq}")

    def age(self, device: str, now: float) -> float | None:
        at = self.devices.get(device, {}).get("status_at")
        return None if at is None else max(0.0, now - float(at))

    def stale(self, device: str, now: float) -> bool:
        age = self.age(device, now)
        return age is None or age > self.stale_after_s

    def latest_take(self, camera: str) -> Take | None:
        for take in sorted(self.takes.values(), key=lambda t: -t.take_id):
            if camera in take.clips:
                return take
        return None

    def takes_since(self, since: float) -> list[Take]:
        return sorted(
            (t for t in self.takes.values() if t.started_at >= since),
            key=lambda t: (t.scene, t.take, t.take_id),
        )

    def events_matching(
        self, text: str, min_severity: str = "diagnostic", newest: int | None = None
    ) -> list[EventLine]:
        """The events at `min_severity` or worse whose name, source or message holds `text`,
        oldest first; only the `newest` so many, if given (looked for from the end)."""
        floor = SEVERITIES.index(min_severity)
        needle = text.lower()
        found: list[EventLine] = []
        for e in reversed(self.events):
            if len(found) == newest:
                break
            if SEVERITIES.index(e.severity) >= floor and (
                not needle or needle in f"{e.name} {e.source} {e.message}".lower()
            ):
                found.append(e)
        found.reverse()
        return found


_LEVELS = {"yellow": 1, "red": 2}


def _is_alarm_event(line: EventLine) -> bool:
    family, _, outcome = line.name.rpartition(".")
    limit = family.startswith(("limit.", "budget.")) and outcome in ("red", "yellow", "cleared")
    return limit or line.name in _RAISES or line.name in _CLEARS


def _at(snapshot: dict[str, Any]) -> float:
    """When a device snapshot's status was read (0 when never)."""
    return float(snapshot.get("status_at") or 0.0)


def _event_line(body: dict[str, Any], seq: int | None, *, historical: bool) -> EventLine:
    return EventLine(
        seq=seq,
        ts=float(body.get("ts", 0.0)),
        severity=str(body.get("severity", "info")),
        name=str(body.get("name", "")),
        source=str(body.get("source", "")),
        message=str(body.get("message", "")),
        historical=historical,
    )


def _hhmm(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%H:%M")


def utc_midnight(now: float) -> float:
    """Start of the station's day (the ISS keeps GMT)."""
    return now - (now % 86400.0)
