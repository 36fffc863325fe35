"""`protocol = ...` per device: checked with the rest of the configuration, every problem named."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware_host.config import ConfigError, parse_config
from hil.bench import load_bench
from tools.up import Layout, daemon_config, resolve_bench

GOOD = """
[[device]]
name = "deck"
kind = "camera"
port = "/dev/ttyUSB0"
protocol = "sony9pin"
baud = 38400
[[device]]
name = "key"
kind = "light"
port = "/dev/ttyUSB1"
protocol = "enttec-dmx"
gear = { dmx_address = 1, rdm_uid = "7a70:00000001" }
[[device]]
name = "fill"
kind = "light"
port = "/dev/ttyUSB1"
protocol = "enttec-dmx"
gear = { dmx_address = 3, personality = "led-panel-4ch" }
[[device]]
name = "meter"
kind = "pdu"
port = "/dev/ttyUSB2"
protocol = "modbus-rtu"
gear = { meter_unit = 1, relay_unit = 2 }
"""


def test_a_mixed_rig_configures_and_dmx_lights_share_their_widget() -> None:
    config = parse_config(GOOD)
    assert [d.protocol for d in config.devices] == [
        "sony9pin",
        "enttec-dmx",
        "enttec-dmx",
        "modbus-rtu",
    ]
    assert config.device("fill").gear.personality == "led-panel-4ch"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            ('protocol = "sony9pin"\nbaud = 38400', 'protocol = "modbus-rtu"'),
            "protocol 'modbus-rtu' is for a pdu, not a camera",
        ),
        (("dmx_address = 3,", "dmx_address = 2,"), "DMX slots 2-5 overlap key's 1-2"),
        (('rdm_uid = "7a70:00000001"', 'rdm_uid = "nonsense"'), "gear.rdm_uid"),
        (('personality = "led-panel-4ch"', 'personality = "no-such"'), "no personality 'no-such'"),
        (('port = "/dev/ttyUSB2"', 'port = "/dev/ttyUSB0"'), "two devices cannot share a port"),
        (("dmx_address = 1,", "dmx_address = 512,"), "runs past slot 512"),
    ],
)
def test_each_gear_mistake_is_named(change: tuple[str, str], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(GOOD.replace(*change))
    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_cupola_up_configures_a_shipped_gear_bench_the_daemon_accepts(tmp_path: Path) -> None:
    spec = load_bench(resolve_bench("mixed-rig"))
    ports = {d.name: f"/dev/fake/{d.name}" for d in spec.devices}
    ports["fill"] = ports["key"]  # the lights share their widget's port, as the sim says
    config = parse_config(daemon_config(Layout(tmp_path), spec, ports, "mqtt://127.0.0.1:1"))
    by_name = {d.name: d for d in config.devices}
    assert by_name["deck"].protocol == "sony9pin" and by_name["deck"].baud == 38400
    assert by_name["fill"].gear.rdm_uid == "7a70:00000005"
    assert by_name["fill"].gear.personality == "led-panel-4ch"
    assert by_name["pdu"].protocol == "modbus-rtu" and by_name["pdu"].baud == 9600
    assert by_name["cam-a"].protocol == "native"
