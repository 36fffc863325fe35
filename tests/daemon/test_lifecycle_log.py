"""The daemon says what it is doing at the default log level; SIGTERM and SIGINT end it
cleanly with a death certificate that says why; SIGHUP re-reads the keyring of a service and
ends a daemon started from a terminal that hangs up (issue 22)."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import signal
import subprocess
from pathlib import Path

import pytest

from firmware_host.devices.offline_reasons import humanise
from hil.broker import Mosquitto
from protocols import ground
from tests.harness import Credentials, cupola, daemon_config
from tools.broker_link import broker_client


def _one_camera_not_plugged_in(tmp_path: Path, broker: Mosquitto) -> Path:
    config = tmp_path / "cupola.toml"
    config.write_text(daemon_config(
        {"cam-a": str(tmp_path / "no-such-port")}, {"cam-a": "camera"}, broker.url(),
        tmp_path / "state", keyring=Credentials(tmp_path).keyring,
    ))  # fmt: skip
    return config


async def _line_with(stream: asyncio.StreamReader, text: str, seen: list[str]) -> None:
    while text not in (line := (await stream.readline()).decode()):
        assert line, f"stderr ended before {text!r}: {seen}"
        seen.append(line)
    seen.append(line)


async def _death(url: str, node: str) -> dict[str, object]:
    async with broker_client(url, None, "death-reader") as client:
        await client.subscribe(ground.topic(node, ground.DEATH), qos=1)
        async for message in client.messages:  # retained: here at once
            assert isinstance(message.payload, bytes)
            body: dict[str, object] = json.loads(message.payload)["body"]
            return body
    raise AssertionError("no death certificate")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_default_log_narrates_and_a_signal_ends_it_cleanly(
    tmp_path: Path, broker: Mosquitto, sig: signal.Signals
) -> None:
    config = _one_camera_not_plugged_in(tmp_path, broker)
    process = await asyncio.create_subprocess_exec(
        *cupola("daemon", "--config", str(config)), stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,  # as a service
    )  # fmt: skip
    assert process.stderr is not None
    seen: list[str] = []
    try:
        async with asyncio.timeout(30):
            await _line_with(process.stderr, "started with 1 devices: cam-a (camera)", seen)
            await _line_with(process.stderr, "ground.link_up", seen)
            await _line_with(process.stderr, "0 of 1 devices online; offline: cam-a (", seen)
            process.send_signal(signal.SIGHUP)  # not a stop: the keyring is read again
            await _line_with(process.stderr, "SIGHUP: re-reading the keyring", seen)
            assert process.returncode is None
            process.send_signal(sig)
            await _line_with(process.stderr, "stopped cleanly", seen)
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    text = "".join(seen)
    assert "port not found" in text and "Traceback" not in text
    death = await asyncio.wait_for(_death(broker.url(), "test-node"), 10)
    assert sig.name in str(death["reason"])


def _daemon_in_a_terminal(config: Path) -> tuple[subprocess.Popen[bytes], int]:
    """The daemon started from a (pseudo-)terminal, as by hand: its output is read from it."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        cupola("daemon", "--config", str(config)),
        stdin=terminal, stdout=terminal, stderr=terminal, start_new_session=True,
    )  # fmt: skip
    os.close(terminal)
    return process, controller


async def test_started_from_a_terminal_a_hang_up_ends_it_cleanly(
    tmp_path: Path, broker: Mosquitto
) -> None:
    config = _one_camera_not_plugged_in(tmp_path, broker)
    process, controller = _daemon_in_a_terminal(config)
    output = b""
    try:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(30):
            while b"ground.link_up" not in output:
                output += await loop.run_in_executor(None, os.read, controller, 65536)
            process.send_signal(signal.SIGHUP)  # the terminal closed
            assert await loop.run_in_executor(None, process.wait) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)
    death = await asyncio.wait_for(_death(broker.url(), "test-node"), 10)
    assert "terminal hung up (SIGHUP)" in str(death["reason"])


@pytest.mark.parametrize(
    "raw,plain",
    [
        ("cam-a: device reports readiness to read but returned no data (device disconnected or "
         "multiple access on port?)", "cam-a: cable unplugged or port closed (no data)"),
        ("cannot open /dev/x: [Errno 2] could not open port /dev/x: [Errno 2] No such file or "
         "directory: '/dev/x'", "cannot open /dev/x: port not found (cable unplugged or wrong "
         "port?)"),
        ("cannot open /dev/x: [Errno 13] could not open port /dev/x: [Errno 13] Permission "
         "denied: '/dev/x'", "cannot open /dev/x: no permission to open the port"),
        ("cam-a: no reply to PING after 3 attempts of 200 ms",
         "cam-a: no reply to PING after 3 attempts of 200 ms"),
        ("[Errno 71] Protocol error", "Protocol error"),
    ],
)  # fmt: skip
def test_offline_reasons_are_plain_words(raw: str, plain: str) -> None:
    assert humanise(raw) == plain
