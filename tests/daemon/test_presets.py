"""Light presets: a named look is set on every light at once, or on none of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware_host.config import ConfigError, parse_config
from hil.broker import Mosquitto
from tests.daemon.conftest import shoot

TWO_LIGHTS = """
[[device]]
name = "key"
kind = "light"

[[device]]
name = "fill"
kind = "light"
"""

PRESETS = """
[power]
cap_w = 150

[[preset]]
name = "interview"
fade_s = 0.5
lights = { key = { intensity_pct = 60, cct_k = 4300 }, fill = { intensity_pct = 25 } }

[[preset]]
name = "blast"
lights = { key = { intensity_pct = 100 }, fill = { intensity_pct = 100 } }
"""


def _levels(sim_control: object, names: tuple[str, ...]) -> dict[str, int]:
    describe = sim_control.describe  # type: ignore[attr-defined]
    return {name: int(describe(name)["model"]["target_permille"]) for name in names}


async def test_a_preset_sets_every_light_or_none(tmp_path: Path, broker: Mosquitto) -> None:
    async with shoot(tmp_path, broker, TWO_LIGHTS, extra=PRESETS) as s:
        applied = await s.ok("light.preset", {"name": "interview"})
        after_interview = _levels(s.sim.control, ("key", "fill"))
        # Both at full need about 200 W modelled, over the 135 W the cap leaves: none is set.
        refused = await s.ground.command("light.preset", {"name": "blast"})
        after_blast = _levels(s.sim.control, ("key", "fill"))
        unknown = await s.ground.command("light.preset", {"name": "sunset"})
    assert applied["lights"] == {
        "key": {"target_pct": 60.0, "cct_k": 4300},
        "fill": {"target_pct": 25.0, "cct_k": 5600},
    }
    assert applied["fade_s"] == 0.5 and "need" in applied["power"]
    assert after_interview == {"key": 600, "fill": 250}
    assert refused["status"] == "rejected" and "150 W cap" in refused["reason"]
    assert after_blast == after_interview
    assert unknown["status"] == "rejected"
    assert unknown["reason"] == "no preset 'sunset'; presets: ['blast', 'interview']"


BASE = """
[[device]]
name = "key"
kind = "light"
port = "/dev/null"

[[device]]
name = "cam-a"
kind = "camera"
port = "/dev/null"
"""


@pytest.mark.parametrize(
    ("preset", "problem"),
    [
        ('name = "x"\nlights = { cam-a = { intensity_pct = 50 } }',
         "preset[0].lights: 'cam-a' is not a configured light (lights: ['key'])"),
        ('name = "x"\nlights = { key = { intensity_pct = 150 } }', "intensity_pct"),
        ('name = "x"\nlights = {}', "lights"),
        ('name = "x"\nlights = { key = { intensity_pct = 50, cct_k = 9000 } }', "cct_k"),
    ],
)  # fmt: skip
def test_a_preset_that_cannot_be_set_is_refused_by_the_check(preset: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=r"cupola\.toml") as error:
        parse_config(BASE + "[[preset]]\n" + preset + "\n", "cupola.toml")
    assert problem in str(error.value)


def test_two_presets_may_not_share_a_name() -> None:
    one = '[[preset]]\nname = "x"\nlights = { key = { intensity_pct = 5 } }\n'
    with pytest.raises(ConfigError, match=r"preset\[1\].name 'x' is used twice"):
        parse_config(BASE + one + one, "cupola.toml")
