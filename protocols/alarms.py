"""Shared alarm handling between ground consoles (GROUND.md, "Shared alarms").

An alarm is the ground's view of a condition (a device and what is wrong with it); its
acknowledgement or shelving is a ground matter, not the node's, so consoles tell each other on
the ground broker, in retained messages, one of each per alarm:

    cupola/v1/<node>/ground/alarm/<alarm id>/ack      acknowledged (by, when, at which level)
    cupola/v1/<node>/ground/alarm/<alarm id>/shelve   shelved until a time, with a reason

so a console that starts later sees every acknowledgement and every shelve still running.
An acknowledgement covers the alarm until it clears (or gets worse): the first console to
see it clear removes the retained ack, so the next raising is new for everyone. Never
bridged to the node. `cupola archive` keeps every action: the alarm history.
"""

from __future__ import annotations

import base64
from typing import Annotated, Literal

import msgspec

from protocols import ground

LEAF = "ground"
ALARM = "alarm"
REASON_MAX = 200

Action = Literal["ack", "shelve", "unshelve"]
Text = Annotated[str, msgspec.Meta(max_length=REASON_MAX)]


class AlarmAction(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Who did what to one alarm, when."""

    v: int
    node: str
    source: str  # the device (or component) the alarm is about
    what: str  # the condition: a limit's name, "link", "power cap"
    action: Action
    by: str  # the console's key id
    at: float  # unix time it was done
    raised_at: float  # which raising of the alarm: an ack covers it, not a later one
    role: str = ""
    level: str = ""  # ack: the level acknowledged (a worse one is new again)
    until: float | None = None  # shelve: when it lapses
    reason: Text = ""  # shelve: why (required); ack: an optional note


def alarm_id(source: str, what: str) -> str:
    """A topic level for an alarm key (a name may hold spaces, dots or slashes)."""
    return base64.urlsafe_b64encode(f"{source}\x00{what}".encode()).decode().rstrip("=")


def topic(node: str, source: str, what: str, action: Action) -> str:
    """Where an action on this alarm is kept (unshelve replaces the shelve)."""
    return ground.topic(node, LEAF, ALARM, alarm_id(source, what), "ack" if action == "ack"
                        else "shelve")  # fmt: skip


def subscription(node: str) -> str:
    return ground.topic(node, LEAF, ALARM, "#")


_decoder = msgspec.json.Decoder(AlarmAction)


def decode(payload: bytes) -> AlarmAction:
    """Raises msgspec.DecodeError / ValidationError; ValueError for an inconsistent action."""
    action = _decoder.decode(payload)
    if action.action == "shelve" and (action.until is None or len(action.reason.strip()) < 3):
        raise ValueError("a shelve needs until and a reason")
    return action


def encode(action: AlarmAction) -> bytes:
    return msgspec.json.encode(action)
