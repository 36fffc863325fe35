"""What each kind of device reports, by protocol: capabilities, not kinds, drive the daemon.

A status field a device does not report is filled from Cupola's model (or left at zero) and
named in `not_reported`, so the governor says it used its model, the data budget says it
estimated, and the monitor shows "not reported" rather than a zero.
"""

from __future__ import annotations

from typing import Literal

Protocol = Literal["native", "sony9pin", "enttec-dmx", "modbus-rtu"]

# capability -> the status fields that carry it
FIELDS = {
    "media": ("media_used_bytes", "media_free_bytes"),
    "temperature": ("temperature_cdeg",),
    "draw": ("draw_mw",),
    "fade": ("fade_remaining_ms", "output_limit_permille", "faults"),
    "channel_draw": ("channels.power_mw", "channels.current_ma"),
    "clips": (),
    "settings": (),
    "failsafe": (),
}

NATIVE = {
    "camera": frozenset(
        {"transport", "timecode", "media", "temperature", "draw", "clips", "settings"}
    ),
    "light": frozenset({"level", "draw", "temperature", "fade", "failsafe"}),
    "pdu": frozenset({"total_draw", "channel_draw", "voltage", "switching"}),
}


def reports(kind: str, protocol: Protocol, *, rdm: bool = False) -> frozenset[str]:
    """The capabilities a device of this kind reports over this protocol."""
    if protocol == "native":
        return NATIVE[kind]
    if protocol == "sony9pin":
        return frozenset({"transport", "timecode", "media_end"})
    if protocol == "enttec-dmx":
        return frozenset({"draw", "temperature", "status_messages"}) if rdm else frozenset()
    return frozenset({"total_draw", "voltage", "switching"})


def not_reported(kind: str, reported: frozenset[str]) -> list[str]:
    """Status fields a device of `kind` reporting `reported` does not measure."""
    missing = [cap for cap in NATIVE[kind] if cap not in reported and cap in FIELDS]
    return sorted(f for cap in missing for f in FIELDS[cap])


ESTIMATED = frozenset({"media_used_bytes", "media_free_bytes"})  # a deck's: bitrate x time


def unmeasured(kind: str, reported: frozenset[str]) -> frozenset[str]:
    """Status fields that hold no reading at all (not even an estimate): no limit is judged
    on them and telemetry leaves them out."""
    return frozenset(not_reported(kind, reported)) - ESTIMATED
