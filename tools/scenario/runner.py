"""Run a scenario: simulators, a private broker and the real daemon, driven from the ground.

Everything runs as its own process, as on the bench: `cupola sim`, mosquitto, `cupola
daemon`. The runner plays the timeline through a signed ground session (commands), the
bench control socket (faults) and the process handles (daemon crash, broker outage), samples
the PDU's true channel power from the simulator ten times a second, and hands everything it
saw to the checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import tomli_w

from hil.broker import Mosquitto
from hil.control import ControlClient
from hil.processes import ProcessGroup
from protocols.ground import LINK, LOCAL, KeyFile, Role, parse_topic
from tools.ground_client import CommandTimeout, GroundSession
from tools.keys import add_to_keyring, create_key
from tools.monitor.view import NodeView
from tools.scenario.checks import Recording, Verdict, judge
from tools.scenario.spec import Scenario, Step
from tools.simulator_process import cupola_argv, start_simulator

log = logging.getLogger(__name__)

NODE = "bench-node"
SAMPLE_S = 0.1


@dataclass
class Outcome:
    scenario: Scenario
    recording: Recording
    verdicts: list[Verdict]
    workdir: Path

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.verdicts)


class Run:
    """One scenario run's processes and what it has seen so far."""

    def __init__(
        self, scenario: Scenario, workdir: Path, speed: float, daemon_env: dict[str, str]
    ) -> None:
        self.scenario = scenario
        self.workdir = workdir
        self.speed = scenario.scenario.speed * speed
        self.daemon_env = daemon_env
        self.group = ProcessGroup()
        self.broker = Mosquitto(workdir / "broker", persistence=True)
        self.daemon: subprocess.Popen[bytes] | None = None
        self.control = ControlClient(workdir / "ports" / "control.sock")
        self.draw: list[tuple[float, float]] = []
        self.device_draw: list[tuple[float, dict[str, float]]] = []
        self.channels = {
            str(d["name"]): int(d["pdu_channel"])
            for d in scenario.devices
            if d.get("pdu_channel") is not None
        }
        self.steps: list[dict[str, Any]] = []
        self.has_pdu = any(d.get("kind") == "pdu" for d in scenario.devices)

    # -- processes -------------------------------------------------------------------------

    def start_sim(self) -> dict[str, str]:
        bench = {**self.scenario.bench, "bench": {**self.scenario.bench.get("bench", {})}}
        bench["bench"]["speed"] = self.speed
        devices = bench.pop("device", [])
        path = self.workdir / "bench.toml"
        path.write_text(tomli_w.dumps({**bench, "device": devices}))
        _, entries = start_simulator(
            self.group, path, self.workdir / "ports", len(devices),
            stderr=(self.workdir / "sim.log").open("wb"),
        )  # fmt: skip
        return {e["device"]: e["path"] for e in entries}

    def write_daemon_config(self, paths: dict[str, str], keyring: Path) -> Path:
        tables = {k: v for k, v in self.scenario.daemon.items() if k != "device"}
        options = self.scenario.daemon.get("device", {})
        if self.scenario.contacts:
            now = time.time()
            tables["data"] = {**tables.get("data", {}), "contact": [
                {"start": time.strftime("%H:%M:%S", time.gmtime(now + c.from_s)),
                 "minutes": c.duration_s / 60}
                for c in self.scenario.contacts
            ]}  # fmt: skip
        config: dict[str, Any] = {
            **tables,
            "node": {"name": NODE, "state_dir": str(self.workdir / "state")},
            "mqtt": {"url": self.broker.url(), "reconnect_max_s": 0.5, "state_rate_hz": 5,
                     **tables.get("mqtt", {})},
            "auth": {"keyring": str(keyring)},
            "device": [
                {"name": d["name"], "kind": d["kind"], "port": paths[d["name"]],
                 **({"baud": d["baud"]} if "baud" in d else {}),
                 **({"pdu_channel": d["pdu_channel"]} if "pdu_channel" in d else {}),
                 **options.get(d["name"], {})}
                for d in self.scenario.devices
            ],
        }  # fmt: skip
        path = self.workdir / "cupola.toml"
        path.write_text(tomli_w.dumps(config))
        return path

    def start_daemon(self) -> None:
        env = {**os.environ, **self.daemon_env}
        self.daemon = self.group.start(
            "daemon",
            cupola_argv("daemon", "--config", str(self.workdir / "cupola.toml")),
            stderr=(self.workdir / "daemon.log").open("ab"), env=env,
        )  # fmt: skip

    def kill_daemon(self) -> None:
        if self.daemon is not None:
            self.daemon.kill()
            self.daemon.wait()
            self.daemon = None

    # -- the timeline ----------------------------------------------------------------------

    async def sample_draw(self) -> None:
        while True:
            with contextlib.suppress(OSError, ValueError):
                pdu = await asyncio.to_thread(self.control.describe, "pdu")
                channels = pdu["model"]["channels"]
                now = time.time()
                self.draw.append((now, float(sum(ch["power_w"] for ch in channels))))
                self.device_draw.append((now, {
                    name: float(channels[index]["power_w"])
                    for name, index in self.channels.items()
                    if index < len(channels)
                }))  # fmt: skip
            await asyncio.sleep(SAMPLE_S)

    async def command(self, gs: GroundSession, step: Step, record: dict[str, Any]) -> None:
        try:
            result = await gs.command(str(step.command), step.args)
            if step.confirm and result["status"] == "armed":
                arm_id = result["result"]["arm_id"]
                result = await gs.command("confirm", {"arm_id": arm_id})
        except CommandTimeout as exc:
            record.update(answered=False, status="timeout", reason=str(exc), as_expected=False)
            return
        status = result["status"]
        record.update(
            answered=True,
            status=status,
            reason=result.get("reason", ""),
            result=result.get("result"),
            as_expected=step.expect in ("any", status),
        )

    async def act(self, step: Step) -> None:
        if step.action == "daemon.kill":
            self.kill_daemon()
        elif step.action == "daemon.start":
            self.start_daemon()
        elif step.action == "broker.stop":
            self.broker.stop()
        elif step.action == "broker.start":
            self.broker.start()

    async def play(self, gs: GroundSession, started: float) -> None:
        pending = []
        for step in sorted(self.scenario.steps, key=lambda s: s.at):
            await asyncio.sleep(max(0.0, started + step.at / self.speed - time.time()))
            kind = "command" if step.command else "fault" if step.fault else "action"
            record: dict[str, Any] = {"label": step.label, "kind": kind, "at": time.time()}
            self.steps.append(record)
            if step.command:
                pending.append(asyncio.create_task(self.command(gs, step, record)))
            elif step.fault:
                result = await asyncio.to_thread(
                    self.control.fault, str(step.device), step.fault, step.value, step.duration
                )
                record.update(status="done", result=result)
            else:
                await self.act(step)
                record.update(status="done")
        end = started + self.scenario.scenario.duration_s / self.speed
        await asyncio.sleep(max(0.0, end - time.time()))
        await asyncio.gather(*pending)


async def _final_command(gs: GroundSession, name: str, args: dict[str, Any]) -> Any:
    with contextlib.suppress(CommandTimeout):
        result = await gs.command(name, args, timeout=20)
        return result.get("result") or {}
    return {}


async def run_scenario(
    scenario: Scenario,
    workdir: Path,
    *,
    speed: float = 1.0,
    daemon_env: dict[str, str] | None = None,
    on_progress: Callable[[str], None] = lambda _: None,
    on_broker: Callable[[str], None] = lambda _: None,
    guest_key: KeyFile | None = None,
    on_played: Callable[[], None] = lambda: None,
) -> Outcome:
    """Play `scenario`; `on_broker` learns the broker's URL as soon as it is up, `on_played`
    hears when the timeline is over (everything still running), and `guest_key` (a
    monitor's, say) is trusted by the node beside the bench's own."""
    run = Run(scenario, workdir, speed, daemon_env or {})
    key = create_key(Role.FLIGHT_CONTROLLER, "bench-fc")
    keyring = workdir / "keyring.json"
    add_to_keyring(keyring, key)
    if guest_key is not None:
        add_to_keyring(keyring, guest_key)
    run.broker.workdir.mkdir(parents=True, exist_ok=True)
    run.broker.start()
    on_broker(run.broker.url())
    try:
        paths = run.start_sim()
        run.write_daemon_config(paths, keyring)
        async with GroundSession(run.broker.url(), NODE, key=key, persistent=True) as gs:
            ground, ground_status, links = NodeView(NODE), [], []
            ground.set_connection(True, "connected", time.time())

            def follow(topic: str, payload: bytes, now: float) -> None:
                parsed = parse_topic(topic)
                if parsed is None or parsed[1] == LOCAL:
                    return  # the crew's copies never reach the ground
                ground.absorb(topic, payload, now)
                ground_status.append((now, ground.status(now).state))
                if parsed[1] == LINK:
                    links.append((now, msgspec.json.decode(payload)["body"]))

            gs.on_message = follow
            run.start_daemon()
            await gs.wait_for(lambda: gs.online(*paths), 30, "every device online")
            on_progress(f"{scenario.scenario.name}: {len(paths)} devices online, playing")
            sampler = asyncio.create_task(run.sample_draw()) if run.has_pdu else None
            started = time.time()
            try:
                await run.play(gs, started)
            finally:
                if sampler is not None:
                    sampler.cancel()
            if run.daemon is None:
                run.start_daemon()
            await gs.wait_for(lambda: gs.online(*paths), 30, "every device online at the end")
            takes = await _final_command(gs, "shotlog.query", {"limit": 200})
            budget = await _final_command(gs, "budget.status", {})
            await asyncio.sleep(0.5)  # the stream catches up with the last results
            on_played()
            sim = {name: run.control.describe(name).get("model", {}) for name in paths}
            recording = Recording(
                started=started,
                speed=run.speed,
                initial_cap_w=float(scenario.daemon.get("power", {}).get("cap_w", 300.0)),
                reserve_pct=float(scenario.daemon.get("power", {}).get("reserve_pct", 10.0)),
                frame_rate=float(scenario.daemon.get("project", {}).get("frame_rate", 25)),
                events=list(gs.events),
                gaps=list(gs.sequence.gaps),
                duplicates=gs.sequence.duplicates,
                steps=run.steps,
                draw=run.draw,
                device_draw=run.device_draw,
                states=list(gs.state_log),
                takes=list(takes.get("takes", [])) if isinstance(takes, dict) else [],
                sim=sim,
                budget=budget if isinstance(budget, dict) else {},
                local_events=gs.local_events,
                ground=ground,
                ground_status=ground_status,
                links=links,
            )
    finally:
        run.group.stop_all()
        run.broker.stop()
    return Outcome(scenario, recording, judge(recording, scenario.expects), workdir)


def run_file(
    scenario: Scenario,
    *,
    speed: float = 1.0,
    daemon_env: dict[str, str] | None = None,
    keep: Path | None = None,
    on_progress: Callable[[str], None] = lambda _: None,
) -> Outcome:
    """Run in a fresh directory (kept at `keep` when given, else removed afterwards)."""
    workdir = keep or Path(tempfile.mkdtemp(prefix="cupola-scenario-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        return asyncio.run(
            run_scenario(
                scenario, workdir, speed=speed, daemon_env=daemon_env, on_progress=on_progress
            )
        )
    finally:
        if keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
