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
