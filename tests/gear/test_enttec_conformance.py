"""The simulated Enttec widget and its fixtures against implementations nobody here wrote:
two DMX client libraries (pyenttec, DMXEnttecPro), and OLA's olad with its USB Pro plugin
discovering the RDM fixtures and reading their device info and sensors."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pyenttec
import pytest
from DMXEnttecPro import Controller

from hil.bench import Bench, DeviceSpec
from hil.gear.widget import EnttecWidget
from tests.hil.host import bench

FIXTURES = [
    DeviceSpec(
        name="key",
        kind="light",
        protocol="enttec-dmx",
        gear={"widget": "dmx", "dmx_address": 1, "rdm_uid": "7a70:00000001"},
    ),
    DeviceSpec(
        name="fill",
        kind="light",
        protocol="enttec-dmx",
        gear={
            "widget": "dmx",
            "dmx_address": 3,
            "personality": "led-panel-4ch",
            "rdm_uid": "7a70:00000002",
        },
    ),
    DeviceSpec(
        name="bg", kind="light", protocol="enttec-dmx", gear={"widget": "dmx", "dmx_address": 7}
    ),  # DMX only: no RDM
]


async def until_frame(widget: EnttecWidget, condition: Callable[[], bool]) -> None:
    """Wait, frame by frame, until the fixtures show what a client sent (5 s at most)."""
    async with asyncio.timeout(5.0):
        while not condition():
            await widget.dmx_seen.wait()
            widget.dmx_seen.clear()


def widget_of(instance: Bench) -> EnttecWidget:
    widget = instance.devices["dmx"]
    assert isinstance(widget, EnttecWidget)
    return widget


async def test_pyenttec_and_dmxenttecpro_set_the_same_levels(tmp_path: Path) -> None:
    async with bench(tmp_path, *FIXTURES) as instance:
        widget = widget_of(instance)
        key, fill, bg = (instance.gear.fixtures[n] for n in ("key", "fill", "bg"))

        def with_pyenttec() -> None:
            port = pyenttec.DMXConnection(str(widget.path))
            for channel, value in enumerate([255, 0, 128, 0, 255, 255, 64, 200]):
                port.set_channel(channel, value)
            port.render()
            port.com.close()

        await asyncio.to_thread(with_pyenttec)
        await until_frame(widget, lambda: bg.levels == bytes([64, 200]))
        assert key.levels == bytes([255, 0]) and fill.levels == bytes([128, 0, 255, 255])
        assert key.model.target_permille == 1000 and key.model.target_cct_k == 2700
        assert fill.model.target_permille == 500  # 16-bit 0x8000 / 65535
        assert fill.model.target_cct_k == 6500

        def with_dmxenttecpro() -> None:
            controller = Controller(str(widget.path))
            for channel, value in zip(range(1, 9), [26, 128, 0, 0, 0, 0, 255, 0], strict=True):
                controller.set_channel(channel, value)
            controller.submit()
            controller.close()

        await asyncio.to_thread(with_dmxenttecpro)
        await until_frame(widget, lambda: key.levels == bytes([26, 128]))
        assert key.model.target_permille == round(26 / 255 * 1000)
        assert bg.model.target_permille == 1000 and fill.model.target_permille == 0
        assert widget.dmx_frames == 2


OLAD = shutil.which("olad")


@pytest.mark.skipif(
    OLAD is None or os.geteuid() != 0,
    reason="needs OLA (scripts/ensure-system-packages.sh) and root for runuser/unshare",
)
async def test_ola_discovers_the_fixtures_and_reads_device_info_and_sensors(
    tmp_path: Path,
) -> None:
    async with bench(tmp_path, *FIXTURES) as instance:
        widget = widget_of(instance)
        key = instance.gear.fixtures["key"]
        key.model.set_level(1000, 5600, 0)
        olad = OlaRig(widget)
        try:
            out = await olad.run(SCRIPT)
        finally:
            olad.cleanup()
        sections = dict(part.split("\n", 1) for part in out.split("=== ")[1:])
        assert "ENTTEC - DMX USB PRO" in sections["devices"]
        assert sorted(sections["discover"].split()) == ["7a70:00000001", "7a70:00000002"]
        info = sections["device_info"]
        assert "DMX Footprint: 4" in info and "DMX Start Address: 3" in info
        assert "Sensor Count: 2" in info
        definition = sections["sensor_definition"]
        assert "Type: Temperature" in definition and "Unit: degrees C" in definition
        power = sections["sensor_value"]
        assert f"Present Value: {round(key.draw_w())}" in power
        assert "Name: led-panel" not in power
        assert "DMX Start Address: 1" in sections["key_info"]


SCRIPT = """
set -e
ip link set lo up
runuser -u olad -- olad -c "$CFG" --no-register-with-dns-sd --no-http -l 2 > "$CFG/olad.log" 2>&1 &
OLAD=$!
trap 'kill $OLAD' EXIT
for i in $(seq 100); do ola_dev_info 2>/dev/null | grep -q "DMX USB PRO" && break; sleep 0.1; done
echo "=== devices"; ola_dev_info
ola_patch -d 1 -p 0 -u 1
# Patching starts OLA's own full discovery; a second one asked meanwhile answers empty, so
# ask for the UIDs OLA holds until its discovery has put them there.
for i in $(seq 100); do [ -n "$(ola_rdm_discover -u 1)" ] && break; sleep 0.1; done
echo "=== discover"; ola_rdm_discover -u 1 --full
echo "=== device_info"; ola_rdm_get -u 1 --uid 7a70:00000002 device_info
echo "=== key_info"; ola_rdm_get -u 1 --uid 7a70:00000001 device_info
echo "=== sensor_definition"; ola_rdm_get -u 1 --uid 7a70:00000001 sensor_definition 0
echo "=== sensor_value"; ola_rdm_get -u 1 --uid 7a70:00000001 sensor_value 1
"""


class OlaRig:
    """olad in a network namespace of its own (its RPC port cannot clash), run as the `olad`
    user as OLA requires, finding the widget through a ttyUSB link to the simulator's pty."""

    def __init__(self, widget: EnttecWidget) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="cupola-ola-"))
        os.chmod(self.dir, 0o755)
        devices = self.dir / "dev"
        devices.mkdir(mode=0o755)
        pts = os.path.realpath(widget.path)
        os.chmod(pts, 0o666)
        self.link = f"ttyUSB{os.getpid()}"  # its lock file, /var/lock/LCK..NAME, is unique
        (devices / self.link).symlink_to(pts)
        (self.dir / "ola-usbserial.conf").write_text(
            f"device_dir = {devices}\ndevice_prefix = ttyUSB\nenabled = true\n"
        )
        for plugin in DISABLED:
            (self.dir / f"ola-{plugin}.conf").write_text("enabled = false\n")
        uid = pwd.getpwnam("olad").pw_uid
        for path in (self.dir, devices, *self.dir.iterdir()):
            os.lchown(path, uid, -1)
        assert stat.S_ISDIR(self.dir.stat().st_mode)

    async def run(self, script: str) -> str:
        process = await asyncio.create_subprocess_exec(
            "unshare",
            "--net",
            "sh",
            "-c",
            script,
            env={**os.environ, "CFG": str(self.dir)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(process.communicate(), 60)
        text = out.decode(errors="replace")
        assert process.returncode == 0, text + (self.dir / "olad.log").read_text()
        return text

    def cleanup(self) -> None:
        Path(f"/var/lock/LCK..{self.link}").unlink(missing_ok=True)
        shutil.rmtree(self.dir, ignore_errors=True)


DISABLED = (
    "artnet",
    "dummy",
    "e131",
    "espnet",
    "ftdidmx",
    "gpio",
    "karate",
    "kinet",
    "milinst",
    "opendmx",
    "openpixelcontrol",
    "osc",
    "pathport",
    "renard",
    "sandnet",
    "shownet",
    "spi",
    "stageprofi",
    "uartdmx",
    "usbdmx",
    "dmx4linux",
    "nanoleaf",
)
