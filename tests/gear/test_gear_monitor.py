"""The monitor shows what real gear does not measure as "not reported", never as a zero."""

from __future__ import annotations

from tests.tools.test_monitor_view import T0, connected_view, message, snapshot, topic
from tools.monitor import rows


def test_unmeasured_fields_read_not_reported_and_estimates_say_so() -> None:
    view = connected_view()
    deck = snapshot(
        "deck",
        "camera",
        {
            "state": "recording",
            "error": "none",
            "media_used_bytes": 5_000_000_000,
            "media_free_bytes": 1_995_000_000_000,
            "temperature_cdeg": None,
            "draw_mw": None,
            "timecode_label": "10:00:00:00",
        },
        protocol="sony9pin",
        reports=["media_end", "timecode", "transport"],
        not_reported=["draw_mw", "media_free_bytes", "media_used_bytes", "temperature_cdeg"],
    )
    light = snapshot(
        "fill",
        "light",
        {
            "on": True,
            "intensity_permille": 500,
            "cct_k": 5600,
            "temperature_cdeg": None,
            "draw_mw": None,
        },
        protocol="enttec-dmx",
        reports=[],
        not_reported=["draw_mw", "temperature_cdeg"],
    )
    native = snapshot(
        "key",
        "light",
        {"on": True, "intensity_permille": 500, "cct_k": 5600, "temperature_cdeg": 0, "draw_mw": 0},
    )
    for snap in (deck, light, native):
        view.absorb(topic("state", snap["device"]), message("state", snap), T0)
    cells = {name: [c.text for c in rows.device_row(view, name, T0)] for name in view.devices}
    assert cells["deck"].count(rows.NOT_REPORTED) == 2  # temperature and draw
    assert any(t.startswith("~") and t.endswith("est.") for t in cells["deck"])  # media
    assert cells["fill"].count(rows.NOT_REPORTED) == 2
    assert rows.NOT_REPORTED not in cells["key"]  # a native light's zero is a reading
    assert "0.0 W" in cells["key"]


def test_a_malformed_not_reported_list_is_refused_by_the_schema() -> None:
    view = connected_view()
    odd = snapshot("odd", "light", {"on": False, "draw_mw": 1000}, not_reported=5)
    view.absorb(topic("state", "odd"), message("state", odd), T0)
    assert "odd" not in view.devices


def test_a_feed_meters_channels_read_not_reported() -> None:
    view = connected_view()
    channels = [
        {
            "channel": i,
            "on": True,
            "tripped": False,
            "voltage_mv": 28_000,
            "current_ma": None,
            "power_mw": None,
        }
        for i in range(2)
    ]
    meter = snapshot(
        "pdu",
        "pdu",
        {"bus_voltage_mv": 28_000, "total_power_mw": 40_000, "channels": channels},
        protocol="modbus-rtu",
        not_reported=["channels.current_ma", "channels.power_mw"],
    )
    view.absorb(topic("state", "pdu"), message("state", meter), T0)
    lines = [c.text for c in rows.pdu_lines(view)]
    assert len(lines) == 2 and all(rows.NOT_REPORTED in line for line in lines)
    assert "40.0 W" in [c.text for c in rows.device_row(view, "pdu", T0)]
