"""`cupola monitor --web`: the monitor in a real headless Chromium (Debian's, driven by
Playwright): the page loads, shows the node ONLINE and a device row, and a command typed in
the browser's palette reaches the node and runs there."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
from pathlib import Path

import msgspec
import pytest
from playwright.async_api import WebSocket, async_playwright

from hil.broker import Mosquitto, free_port
from protocols.ground import Role
from tests.harness import _GROUP, DaemonProcess, camera_and_light_bench, cupola
from tools.ground_client import GroundSession
from tools.monitor.web import address, exposed

pytestmark = pytest.mark.long

CHROMIUM = Path("/usr/bin/chromium")
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def _exited(server: subprocess.Popen[bytes], log: Path) -> str:
    return f"the web monitor exited ({server.returncode}): {log.read_text()}"


async def listening(port: int, server: subprocess.Popen[bytes], log: Path) -> None:
    """Until the server accepts connections; at once, with its log, if it exits first."""
    async with asyncio.timeout(20):
        while True:
            if server.poll() is not None:
                pytest.fail(_exited(server, log))
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            except OSError:
                await asyncio.sleep(0.1)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium missing: `make deps` installs it")
async def test_the_monitor_in_a_browser(tmp_path: Path, broker: Mosquitto) -> None:
    _, credentials, config = camera_and_light_bench(tmp_path, broker.url())
    DaemonProcess(tmp_path, config).start()
    key_file = tmp_path / "director.key"
    key_file.write_bytes(msgspec.json.encode(credentials.keys[Role.DIRECTOR]))
    key_file.chmod(0o600)
    port = free_port()
    log_path = tmp_path / "web.log"
    log = log_path.open("ab")
    server = _GROUP.start("web monitor", cupola("monitor", "--web", f"127.0.0.1:{port}",
                          "--broker", broker.url(), "--node", "test-node", "--key",
                          str(key_file)), stdout=log, stderr=log)  # fmt: skip
    await listening(port, server, log_path)

    screen = bytearray()  # what the server sent the browser's terminal

    def watch(ws: WebSocket) -> None:
        ws.on("framereceived", lambda payload: screen.extend(
            payload if isinstance(payload, bytes) else payload.encode()))  # fmt: skip

    def shown() -> str:
        return ANSI.sub(b"", bytes(screen)).decode("utf-8", "replace")

    async def on_screen(*texts: str, timeout: float = 30) -> None:
        async with asyncio.timeout(timeout):
            while True:
                if all(text in shown() for text in texts):
                    return
                await asyncio.sleep(0.1)

    async with (
        GroundSession(broker.url(), "test-node") as node_watch,
        async_playwright() as playwright,
    ):
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM))
        page = await browser.new_page(viewport={"width": 1600, "height": 1000})
        page.on("websocket", watch)
        await page.goto(f"http://127.0.0.1:{port}/")
        await on_screen("test-node ONLINE", "cam-a", timeout=40)
        await page.screenshot(path=str(tmp_path / "web-monitor.png"))  # for a person to see

        # The palette, from the browser's keyboard: a light set to 40 %.
        await page.click("#terminal")
        await page.keyboard.press("Control+p")
        await on_screen("Search for commands")
        await page.keyboard.type("light.set device=key intensity_pct=40")
        await on_screen('light.set {"device": "key", "intensity_pct": 40}')
        await page.keyboard.press("Enter")

        def ran() -> bool:
            wanted = {"name": "light.set", "key_id": "director-1", "status": "ok"}
            return any(wanted.items() <= r.items() for r in node_watch.results.values())

        await node_watch.wait_for(ran, 20, "the browser's command, run by the node")
        await browser.close()


@pytest.mark.parametrize("bad", ["8080", "host:", ":80", "h:99999", "h:x"])
def test_a_bad_address_is_refused(bad: str) -> None:
    from tools.exits import UsageError

    with pytest.raises(UsageError, match="HOST:PORT"):
        address(bad)


def test_what_counts_as_exposed() -> None:
    assert not exposed("127.0.0.1") and not exposed("localhost") and not exposed("::1")
    assert exposed("0.0.0.0") and exposed("10.1.2.3") and exposed("console.example")
