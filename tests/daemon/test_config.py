"""Configuration errors name the key and say what is wrong."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from firmware_host.config import ConfigError, parse_config
from tests.harness import Credentials, cupola

BASE = """
[[device]]
name = "cam-a"
kind = "camera"
port = "/dev/serial/by-id/cam-a"
"""

CASES = {
    BASE + "baud = 12": "$.device[0].baud",
    BASE.replace("camera", "toaster"): "$.device[0].kind",
    BASE + BASE: "device[1].name 'cam-a' is used twice",
    BASE + '[mqtt]\nurl = "http://x"\n': "mqtt.url",
    BASE + "[project]\nframe_rate = 26\n": "project.frame_rate: frame rate 26 is not supported",
    BASE + '[[group]]\nname = "main"\ncameras = ["cam-z"]\n': "group[0].cameras: 'cam-z'",
    BASE + "[limits.camera_temperature_c]\nyellow = 70\nred = 60\n": "limits.camera_temperature_c",
    BASE + "[node]\nsurprise = 1\n": "unknown field `surprise`",
}


@pytest.mark.parametrize("text,expected", CASES.items(), ids=lambda v: str(v)[-30:])
def test_errors_name_the_key(text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=r"cupola\.toml") as error:
        parse_config(text, "cupola.toml")
    assert expected in str(error.value)


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
    assert fail.returncode == 2 and "Expected `int` >= 1200 - at `$.device[0].baud`" in fail.stderr
    nowhere = subprocess.run(
        cupola("daemon", "--check", str(missing)), capture_output=True, text=True
    )
    assert nowhere.returncode == 2 and "auth.keyring" in nowhere.stderr


def test_the_example_configuration_is_valid() -> None:
    example = Path(__file__).parents[2] / "firmware_host" / "cupola.example.toml"
    config = parse_config(example.read_text(), str(example))
    assert [d.name for d in config.devices] == ["cam-a", "cam-b", "key", "pdu"]
    assert config.groups[0].cameras == ["cam-a", "cam-b"]
