"""A device that does not measure a field is never judged on it: no limit on a 9-pin deck's
or a DMX-only light's temperature, which are not readings but zeros in a typed record."""

from __future__ import annotations

from types import SimpleNamespace

from firmware_host.config import LimitsConfig
from firmware_host.events import Event, EventBus
from firmware_host.gear.capabilities import NATIVE, reports, unmeasured
from firmware_host.health.limits import LimitMonitor, default_limits
from firmware_host.link.stats import LinkStats


def limit_events(kind: str, unmeasured_fields: frozenset[str]) -> list[str]:
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe(seen.append)
    monitor = LimitMonitor(bus, default_limits(LimitsConfig()), 0.05)
    hot = SimpleNamespace(temperature_cdeg=9_000, media_used_bytes=0, media_free_bytes=1)
    monitor.check("dev", kind, hot, LinkStats(), unmeasured_fields)
    return [e.name for e in seen if e.name.startswith("limit.")]


def test_an_unmeasured_temperature_raises_no_limit_and_a_measured_one_does() -> None:
    deck = unmeasured("camera", reports("camera", "sony9pin"))
    dmx_only = unmeasured("light", reports("light", "enttec-dmx"))
    with_rdm = unmeasured("light", reports("light", "enttec-dmx", rdm=True))
    assert "temperature_cdeg" in deck and "temperature_cdeg" in dmx_only
    assert "temperature_cdeg" not in with_rdm
    assert "media_free_bytes" not in deck  # estimated, still judged
    assert limit_events("light", dmx_only) == []
    assert any("temperature" in name for name in limit_events("light", with_rdm))
    assert any("temperature" in name for name in limit_events("camera", frozenset()))
    assert unmeasured("camera", NATIVE["camera"]) == frozenset()
