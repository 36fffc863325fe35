"""`protocol = ...` per device: checked with the rest of the configuration, every problem named."""

from __future__ import annotations

import pytest

from firmware_host.config import ConfigError, parse_config

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
