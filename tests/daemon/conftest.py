"""A running shoot for daemon tests: simulators, a private broker, the daemon, a ground view."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil.broker import Mosquitto
from tests.harness import Credentials, DaemonProcess, SimProcess, daemon_config
from tools.ground_client import GroundSession


@dataclass
class Shoot:
    sim: SimProcess
    daemon: DaemonProcess
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
        self.daemon.start()


@contextlib.asynccontextmanager
async def shoot(
    workdir: Path,
    broker: Mosquitto,
    bench: str,
    *,
    device_options: dict[str, Any] | None = None,
    per_device: dict[str, dict[str, Any]] | None = None,
    auth_options: dict[str, Any] | None = None,
    extra: str = "",
) -> AsyncIterator[Shoot]:
    sim = SimProcess(workdir, bench).start()
    credentials = Credentials(workdir)
    config = daemon_config(
        sim.paths, sim.kinds, broker.url(), workdir / "state", keyring=credentials.keyring,
        device_options=device_options, per_device=per_device, auth_options=auth_options,
        extra=extra,
    )  # fmt: skip
    daemon = DaemonProcess(workdir, config).start()
    async with GroundSession(broker.url(), "test-node", key=credentials.flight) as ground:
        await ground.wait_for(lambda: ground.online(*sim.paths), 20, "every device online")
        yield Shoot(sim, daemon, ground, broker, workdir, credentials)
