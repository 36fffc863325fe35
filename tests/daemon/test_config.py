"""Configuration errors name the key and say what is wrong, all of them at once, in words."""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path

import pytest
import tomli_w
from hypothesis import given
from hypothesis import strategies as st

from firmware_host.config import ConfigError, load_config, parse_config
from tests.harness import Credentials, cupola
from tools.exits import EX_CONFIG

BASE = """
[[device]]
name = "cam-a"
kind = "camera"
port = "/dev/serial/by-id/cam-a"
"""

CASES = {
    BASE + "baud = 12": "device[0].baud: 12 is not a whole number from 1200 to 12000000",
    BASE.replace("camera", "toaster"): "device[0].kind: 'toaster' is not one of 'camera'",
    BASE + BASE: "device[1].name 'cam-a' is used twice",
    BASE + '[mqtt]\nurl = "http://x"\n': "mqtt.url",
    BASE + "[project]\nframe_rate = 26\n": "project.frame_rate: frame rate 26 is not supported",
    BASE + '[[group]]\nname = "main"\ncameras = ["cam-z"]\n': "group[0].cameras: 'cam-z'",
    BASE + "[limits.camera_temperature_c]\nyellow = 70\nred = 60\n": "limits.camera_temperature_c",
    BASE + "[node]\nsurprise = 1\n": "node.surprise is not a known setting",
    BASE + "[surprise]\n": "surprise is not a known setting",
    BASE + BASE.replace('cam-a"\nkind', 'cam-b"\nkind'): "device[1].port '/dev/serial/by-id/cam-a' "
    "is already device[0]'s (cam-a)",
    BASE + "[power]\ncap_w = inf\n": "power.cap_w: must be a finite number, not inf",
    BASE + "[limits.link_error_rate]\nyellow = nan\nred = 0.1\n": "yellow: must be a finite number",
    BASE + "[mqtt]\nreconnect_max_s = inf\n": "mqtt.reconnect_max_s: must be a finite number",
    BASE + "[data]\nlink_mbps = inf\n": "data.link_mbps: must be a finite number, not inf",
    BASE + "[mqtt]\nstate_rate_hz = -inf\n": "mqtt.state_rate_hz: must be a finite number",
    BASE + "[[power.timeline]]\nat = 2026-11-27T14:00:00Z\nuntil = 2026-11-27T13:00:00Z\n"
    "cap_w = 200\n": "power.timeline[0]: until (2026-11-27 13:00:00 UTC) is not after at",
    BASE + "[[power.timeline]]\nat = 2026-11-27T14:00:00Z\nuntil = 2026-11-27T16:00:00Z\n"
    "cap_w = 200\n[[power.timeline]]\nat = 2026-11-27T15:00:00Z\ncap_w = 150\n": "power."
    "timeline[1] overlaps power.timeline[0]",
    BASE + "[[power.timeline]]\nat = 2026-11-27T14:00:00\ncap_w = 200\n": "has no time zone",
    BASE + '[[data.contact]]\nstart = "25:00"\nminutes = 10\n': "data.contact[0].start: "
    "'25:00' is not a time of day as HH:MM",
    BASE.replace('"cam-a"', '"Cam A"'): "device[0].name: 'Cam A' is not a name of up to 32",
    BASE.replace('port = "/dev/serial/by-id/cam-a"\n', ""): "device[0].port is missing",
}


@pytest.mark.parametrize("text,expected", CASES.items(), ids=lambda v: str(v)[-30:])
def test_errors_name_the_key(text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=r"cupola\.toml") as error:
        parse_config(text, "cupola.toml")
    assert expected in str(error.value)
    for jargon in ("Expected `", "regex", "$.", "msgspec"):
        assert jargon not in str(error.value)


def test_every_problem_is_reported_at_once() -> None:
    text = (
        BASE + "baud = 12\n[node]\nsurprise = 1\n[power]\ncap_w = inf\n"
        "[[power.timeline]]\nat = 2026-11-27T14:00:00Z\nuntil = 2026-11-27T13:00:00Z\n"
        "cap_w = 200\n" + BASE + BASE.replace("cam-a", "cam-b").replace('"camera"', '"toaster"')
    )
    with pytest.raises(ConfigError) as error:
        parse_config(text, "cupola.toml")
    found = error.value.problems
    assert any(p.startswith("device[0].baud") for p in found)
    assert any(p.startswith("node.surprise") for p in found)
    assert any(p.startswith("power.cap_w") for p in found)
    assert any(p.startswith("power.timeline[0]: until") for p in found)
    assert any(p.startswith("device[1].name 'cam-a' is used twice") for p in found)
    assert any(p.startswith("device[2].kind") for p in found)
    assert str(error.value).startswith(f"cupola.toml: {len(found)} problems:")


def test_check_validates_without_running(tmp_path: Path) -> None:
    keys = Credentials(tmp_path)
    good = tmp_path / "good.toml"
    good.write_text(f'[auth]\nkeyring = "{keys.keyring.name}"\n' + BASE)
    missing = tmp_path / "missing.toml"
    missing.write_text('[auth]\nkeyring = "nowhere.json"\n' + BASE)
    bad = tmp_path / "bad.toml"
    bad.write_text(BASE + "baud = 12")
    ok = subprocess.run(cupola("daemon", "--check", str(good)), capture_output=True, text=True)
    fail = subprocess.run(cupola("daemon", "--check", str(bad)), capture_output=True, text=True)
    assert ok.returncode == 0 and "OK" in ok.stdout
    assert (
        fail.returncode == EX_CONFIG and "device[0].baud: 12 is not a whole number" in fail.stderr
    )
    nowhere = subprocess.run(
        cupola("daemon", "--check", str(missing)), capture_output=True, text=True
    )
    assert nowhere.returncode == EX_CONFIG and "auth.keyring" in nowhere.stderr


def test_the_example_configuration_is_valid() -> None:
    example = Path(__file__).parents[2] / "firmware_host" / "cupola.example.toml"
    config = parse_config(example.read_text(), str(example))
    assert [d.name for d in config.devices] == ["cam-a", "cam-b", "key", "pdu"]
    assert config.groups[0].cameras == ["cam-a", "cam-b"]


_KEYS = ["node", "name", "device", "kind", "port", "baud", "power", "cap_w", "timeline", "at",
         "until", "limits", "yellow", "red", "camera_temperature_c", "mqtt", "url", "group",
         "cameras", "model", "data", "contact", "start", "minutes", "surprise"]  # fmt: skip
_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(), st.text(max_size=8),
    st.datetimes(timezones=st.none() | st.just(datetime.UTC)), st.dates(),
)  # fmt: skip
_TABLES = st.recursive(
    _VALUES,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(_KEYS), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(st.dictionaries(st.sampled_from(_KEYS), _TABLES, max_size=5))
def test_any_toml_is_a_config_or_a_list_of_problems(document: dict[str, object]) -> None:
    try:
        text = tomli_w.dumps(_without_none(document))
    except (TypeError, ValueError):
        return  # not representable in TOML
    try:
        parse_config(text, "fuzz.toml")
    except ConfigError as error:
        assert error.problems and all("\n" not in p for p in error.problems)


def _without_none(value: object) -> object:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value if v is not None]
    return value


def test_a_daemon_file_without_devices_is_refused_but_wrong_ones_are_named(tmp_path: Path) -> None:
    keys = Credentials(tmp_path)
    auth = f'[auth]\nkeyring = "{keys.keyring.name}"\n'
    empty, no_devices, wrong = (tmp_path / n for n in ("empty.toml", "none.toml", "wrong.toml"))
    empty.write_text("")
    no_devices.write_text(auth)
    wrong.write_text(auth + BASE.replace("camera", "toaster"))
    for path in (empty, no_devices):
        with pytest.raises(ConfigError, match=r"no \[\[device\]\] is configured"):
            load_config(path)
    with pytest.raises(ConfigError) as error:
        load_config(wrong)
    assert error.value.problems == [
        "device[0].kind: 'toaster' is not one of 'camera', 'light', 'pdu'"
    ]
    checked = subprocess.run(cupola("daemon", "--check", str(empty)), capture_output=True,
                             text=True)  # fmt: skip
    assert checked.returncode == EX_CONFIG and "no [[device]]" in checked.stderr
