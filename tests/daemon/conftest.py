"""A running shoot for daemon tests: simulators, a private broker, the daemon, a ground view."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from firmware_host.config import parse_config
from firmware_host.daemon import Daemon
from hil.bench import Bench, BenchSpec, check_bench
from hil.broker import Mosquitto
from hil.control import ControlServer, LocalControl
from tests.harness import Credentials, DaemonProcess, SimProcess, daemon_config
from tools.ground_client import GroundSession

STOP_WITHIN_S = 20.0  # the shutdown flush (5 s) with room to spare


@dataclass
class Shoot:
    sim: SimProcess | InProcessSim
    daemon: DaemonProcess | InProcessDaemon
    ground: GroundSession
    broker: Mosquitto
    workdir: Path
    credentials: Credentials

    async def ok(self, name: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        result = await self.ground.command(name, args)
        assert result["status"] == "ok", result
        return dict(result["result"])

    def events(
        self, name: str, source: str | None = None, since: float = 0.0
    ) -> list[dict[str, Any]]:
        return [
            e for e in self.ground.events
            if e["name"] == name and (source is None or e["source"] == source) and e["ts"] > since
        ]  # fmt: skip

    async def wait_event(
        self, name: str, source: str | None = None, *, timeout: float = 10, since: float = 0.0
    ) -> dict[str, Any]:
        """The first `name` event (from `source`, after `since`), waiting for it if need be."""
        await self.ground.wait_for(lambda: bool(self.events(name, source, since)), timeout, name)
        return self.events(name, source, since)[0]

    async def boot_inrush_over(self, *channels: int, below_w: float = 25.0) -> None:
        """Wait until the PDU, as the ground last saw it, reads every given channel below
        `below_w`: the daemon admits against that reading (or a newer one), so a test that
        asks for power after this never races a camera's boot inrush (30 W for 1 s)."""

        def settled() -> bool:
            status = self.ground.states.get("pdu", {}).get("status") or {}
            readings = {ch["channel"]: ch["power_mw"] / 1000 for ch in status.get("channels", [])}
            return all(c in readings and readings[c] < below_w for c in channels)

        await self.ground.wait_for(settled, 10, f"PDU channels {channels} below {below_w:g} W")

    async def roll(self, args: dict[str, Any], *, timeout: float = 10) -> dict[str, Any]:
        """`record`, then the take as the shot log has it once a camera confirmed it rolled
        (the data of its `take.started` event, with its take_id)."""
        await self.ok("record", args)

        def started() -> list[dict[str, Any]]:
            return [
                e["data"] for e in self.events("take.started")
                if e["data"]["scene"] == args["scene"] and e["data"]["take"] == args["take"]
            ]  # fmt: skip

        await self.ground.wait_for(lambda: bool(started()), timeout, "take.started")
        return started()[-1]

    def restart_daemon(self) -> None:
        assert isinstance(self.daemon, DaemonProcess), "a restart needs shoot(processes=True)"
        self.daemon.start()


class InProcessSim:
    """The bench on the test's own event loop: the same devices, codec and pseudo-terminals as
    `cupola sim`, without a process to start (about a second of CPU per test, saved)."""

    def __init__(self, bench: Bench, control: ControlServer) -> None:
        self.paths = {line["device"]: line["path"] for line in bench.announce()}
        self.kinds = {line["device"]: line["kind"] for line in bench.announce()}
        self.control = LocalControl(control)


class InProcessDaemon:
    """The daemon on the test's own event loop, as `cupola daemon` builds and runs it (a
    crash, a signal or a restart needs the real process: `shoot(..., processes=True)`)."""

    def __init__(self, config_toml: str, group: asyncio.TaskGroup) -> None:
        self.config = parse_config(config_toml)
        self._group = group
        self._stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> InProcessDaemon:
        self.task = self._group.create_task(Daemon(self.config).run(self._stop), name="daemon")
        return self

    @property
    def alive(self) -> bool:
        return self.task is not None and not self.task.done()

    async def stop(self) -> None:
        """A clean shutdown, which must end: a daemon that hangs as it stops fails the test."""
        self._stop.set()
        if self.task is not None:
            # Waited for, not awaited: a timeout would cancel the daemon before we could see
            # where its tasks wait.
            done, _ = await asyncio.wait({self.task}, timeout=STOP_WITHIN_S)
            if not done:
                stacks = _task_stacks()
                self.task.cancel()
                raise AssertionError(
                    f"the daemon did not stop within {STOP_WITHIN_S:g} s; still running:\n" + stacks
                )
            self.task.result()  # its own failure, if it failed


def _task_stacks() -> str:
    """Where each task of this loop waits, down its chain of awaits: what a hung shutdown is
    stuck on."""
    lines = []
    for task in asyncio.all_tasks():
        chain, awaited = [], task.get_coro()
        while awaited is not None:
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
            if frame is None:
                chain.append(repr(awaited)[:80])  # a future, or a finished coroutine
                break
            chain.append(f"{frame.f_code.co_name}:{frame.f_lineno}")
            awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
        lines.append(f"  {task.get_name()}: {' -> '.join(chain)}")
    return "\n".join(sorted(lines))


@contextlib.asynccontextmanager
async def shoot(
    workdir: Path,
    broker: Mosquitto,
    bench: str,
    *,
    processes: bool = False,
    device_options: dict[str, Any] | None = None,
    per_device: dict[str, dict[str, Any]] | None = None,
    auth_options: dict[str, Any] | None = None,
    extra: str = "",
) -> AsyncIterator[Shoot]:
    """Simulators, daemon and a ground session: in this process unless the test kills,
    signals or restarts the daemon (`processes=True`: `cupola sim` and `cupola daemon`)."""
    options: dict[str, Any] = {
        "device_options": device_options, "per_device": per_device,
        "auth_options": auth_options, "extra": extra,
    }  # fmt: skip
    credentials = Credentials(workdir)
    if processes:
        sim = SimProcess(workdir, bench).start()
        config = daemon_config(
            sim.paths, sim.kinds, broker.url(), workdir / "state",
            keyring=credentials.keyring, **options,
        )  # fmt: skip
        daemon = DaemonProcess(workdir, config).start()
        async with _ground(broker, credentials, sim.paths) as ground:
            yield Shoot(sim, daemon, ground, broker, workdir, credentials)
        return
    spec = check_bench(msgspec.toml.decode(bench, type=BenchSpec))
    running = Bench(spec, workdir / "sim-ports")
    control = ControlServer(running, running.run_dir / "control.sock")
    await running.start()
    try:
        local = InProcessSim(running, control)
        config = daemon_config(
            local.paths, local.kinds, broker.url(), workdir / "state",
            keyring=credentials.keyring, **options,
        )  # fmt: skip
        async with asyncio.TaskGroup() as group:
            in_process = InProcessDaemon(config, group).start()
            try:
                async with _ground(broker, credentials, local.paths) as ground:
                    yield Shoot(local, in_process, ground, broker, workdir, credentials)
            finally:
                await in_process.stop()
    finally:
        await running.stop()


@contextlib.asynccontextmanager
async def _ground(
    broker: Mosquitto, credentials: Credentials, devices: dict[str, str]
) -> AsyncIterator[GroundSession]:
    async with GroundSession(broker.url(), "test-node", key=credentials.flight) as ground:
        await ground.wait_for(lambda: ground.online(*devices), 20, "every device online")
        yield ground
