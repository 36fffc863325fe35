"""The composition root: builds every component from the config and runs them supervised.

Data flows one way: serial bytes -> frames -> device state -> telemetry -> MQTT.
Commands flow back: MQTT -> command intake -> dispatcher -> drivers -> serial bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

import aiomqtt
import msgspec

from firmware_host.budget.data import DataBudgets
from firmware_host.budget.ledger import BudgetLedger, conservative_cap
from firmware_host.budget.power import PowerManager
from firmware_host.clock import SYSTEM, Clock
from firmware_host.commands.camera_settings import CameraSettingsCommand
from firmware_host.commands.devices import DeviceCommands, NoArgs
from firmware_host.commands.dispatcher import CommandSpec, Dispatcher
from firmware_host.config import OUTBOX_FILE, Config
from firmware_host.devices.agent import DeviceAgent
from firmware_host.events import Event, EventBus
from firmware_host.gear.factory import AgentFactory
from firmware_host.groundlink.authority import CommandAuthority
from firmware_host.groundlink.intake import CommandIntake
from firmware_host.groundlink.mqtt import GroundLink
from firmware_host.groundlink.outbox import EVENTS, ROUTINE, URGENT, Outbox
from firmware_host.groundlink.pacing import Pacer
from firmware_host.groundlink.stream import StreamPublisher
from firmware_host.health.limits import LimitMonitor, default_limits
from firmware_host.link.tap import LinkTap, TapServer
from firmware_host.sdnotify import Notifier
from firmware_host.storage import Recovery, StorageCorrupt, StorageError
from firmware_host.storage_guard import StorageGuard
from firmware_host.supervisor import Supervisor
from firmware_host.workflow.drift import DriftMonitor
from firmware_host.workflow.sequencer import SequenceRunner
from firmware_host.workflow.shotlog import ShotLog
from firmware_host.workflow.takes import TakeController
from firmware_host.workflow.timecode import ReferenceClock
from protocols import ground
from protocols.ground import read_keyring
from protocols.messages.common import DeviceEvent, Severity
from protocols.records import to_jsonable
from protocols.timecode import FrameRate

if TYPE_CHECKING:
    from firmware_host.check_ahead import CheckAhead
    from firmware_host.dailies.wiring import Dailies

log = logging.getLogger(__name__)

COMMAND_IDLE_BEAT_S = 1.0
SHUTDOWN_FLUSH_S = 5.0  # what the backlog is given at shutdown; the rest waits for next start
# At start, the backlog waits at most this long for every device's first try: a device that
# answers is adopted within a second, one that does not has failed its hello by then.
DEVICES_FIRST_S = 2.0
EXIT_STATE_UNUSABLE = 65  # EX_DATAERR: restarting cannot help (systemd RestartPreventExitStatus)


class Daemon:
    def __init__(
        self, config: Config, clock: Clock = SYSTEM, *, checked_ahead: CheckAhead | None = None
    ) -> None:
        """`clock` is the one clock every component reads (a test's may run on virtual time);
        `checked_ahead`: the outbox's check, started while the daemon's modules were imported."""
        self.config = config
        self.clock = clock
        self.node = config.node.name
        self.started = clock.wall()
        state_dir = Path(config.node.state_dir)
        self.bus = EventBus(clock.wall)
        self.notifier = Notifier()
        self.supervisor = Supervisor(self.bus, on_healthy=self.notifier.watchdog)
        self.guard = StorageGuard(self.bus)
        self.reference = ReferenceClock(FrameRate.from_fps(config.project.frame_rate), clock.wall)
        outbox = state_dir / OUTBOX_FILE
        self.outbox = Outbox.configured(
            outbox, config.outbox, guard=self.guard, clock=clock,
            checked=checked_ahead is not None and checked_ahead.passed(outbox),
        )  # fmt: skip
        self.pacer = Pacer(clock=clock.monotonic)
        self.stream = StreamPublisher(
            self.node, self.outbox, self.pacer, window=config.mqtt.publish_window, opened=False
        )
        self.bus.subscribe(self._event_to_ground)  # from here on: what the budgets restore
        self.limits = LimitMonitor(
            self.bus, default_limits(config.limits), config.limits.hysteresis_fraction, clock=clock
        )
        self.ground = GroundLink(
            self.node,
            config.mqtt,
            self.stream,
            self.bus,
            birth=self.birth,
            limits=self.limits.active,
            backlog=self.outbox.backlog,
            on_command=self._receive_command,
            on_priority_command=functools.partial(self._receive_command, priority=True),
            next_bd_seq=self.outbox.next_bd_seq,
            stream_id=self.outbox.stream_id,
            clock=clock,
        )
        failsafe = config.failsafe
        self.taps = {d.name: LinkTap(d.name, d.baud, clock.wall) for d in config.devices}
        self.tap_server = TapServer(state_dir / config.node.tap_socket, self.taps)
        agents = AgentFactory()  # native, or real gear by its protocol (firmware_host/gear)
        self.devices: dict[str, DeviceAgent] = {
            d.name: agents.make(
                d,
                self.bus,
                self.reference,
                self._device_updated,
                on_adopted=self._device_adopted,
                on_device_event=self._device_event,
                beat=self.supervisor.beater(f"device:{d.name}"),
                host_timeout_ms=round(failsafe.host_timeout_s * 1000),
                light_failsafe_permille=round(failsafe.light_pct * 10),
                tap=self.taps[d.name],
            )
            for d in config.devices
        }
        self.shotlog = ShotLog(state_dir / "shotlog.db", self.guard, clock=clock)
        self.ledger = BudgetLedger(state_dir / "budget.db", self.guard)
        self.power = PowerManager(
            config, self.devices, self.bus,
            clock=clock.monotonic, wall=clock.wall, ledger=self.ledger,
        )  # fmt: skip
        self.data = DataBudgets(
            config.data, self.bus, self.pacer,
            ledger=self.ledger, on_hold=self.ground.set_hold, clock=clock.wall,
        )  # fmt: skip
        self.takes = TakeController(
            self.devices,
            self.reference,
            self.bus,
            self.shotlog,
            {g.name: g.cameras for g in config.groups},
            power=self.power,
            data=self.data,
            lead_s=config.project.record_lead_ms / 1000,
        )
        self.drift = DriftMonitor(
            self.devices,
            self.reference,
            self.bus,
            interval_s=config.project.drift_check_s,
            limit_frames=config.project.drift_limit_frames,
            auto_rejam=config.project.auto_rejam,
            beat=self.supervisor.beater("timecode-drift"),
        )
        self.dispatcher = Dispatcher()
        self.sequences = SequenceRunner(self.dispatcher, self.devices, self.bus)
        self.dailies: Dailies | None = None
        if config.dailies is not None:
            # ffmpeg's proxies, ASC MHL and their libraries: imported for a node that offloads
            # cards, not by every daemon (a quarter of its import).
            from firmware_host.dailies.wiring import Dailies

            self.dailies = Dailies(
                config.dailies, state_dir, self.bus, data=self.data, ledger=self.ledger,
                ground=self.ground, shotlog=self.shotlog, proxy_kbps=config.data.proxy_kbps,
                clock=clock,
            )  # fmt: skip
        offload = self.dailies.offload if self.dailies else None
        device_commands = DeviceCommands(
            self.devices, self.power, config.presets,
            format_guard=offload.format_refusal if offload else None,
            delete_guard=offload.delete_refusal if offload else None,
        )  # fmt: skip
        for spec in [
            *device_commands.commands(),
            *CameraSettingsCommand(self.devices, self.reference.rate).commands(),
            *self.takes.commands(),
            *self.sequences.commands(),
            *self.power.commands(),
            *(self.dailies.commands() if self.dailies else []),
            CommandSpec("budget.status", NoArgs, self.budget_status,
                        "Power draw against the cap, media and downlink budgets."),
            CommandSpec("health", NoArgs, self.health, "Limits, tasks, links, timecode."),
            CommandSpec("rebirth", NoArgs, self.rebirth, "Publish the birth certificate again."),
            CommandSpec("events.recent", RecentEventsArgs, self.recent_events,
                        "The onboard event log, newest first."),
        ]:  # fmt: skip
            self.dispatcher.register(spec)
        keyring_path = Path(config.auth.keyring)
        self.authority = None
        if config.auth.authority != "off":
            self.authority = CommandAuthority(
                config.auth.authority, state_dir / "authority.db", self.bus, clock.wall
            )
        self.intake = CommandIntake(
            read_keyring(keyring_path),
            self.dispatcher,
            self.bus,
            state_dir / "commands.db",
            self._publish_result,
            max_skew_s=config.auth.max_skew_s,
            max_lifetime_s=config.auth.max_lifetime_s,
            arm_window_s=config.auth.arm_window_s,
            two_person=config.auth.two_person,
            refusal_summary_s=config.auth.refusal_summary_s,
            load_keyring=lambda: read_keyring(keyring_path),
            guard=self.guard,
            gate=self.authority,
            clock=clock.wall,
        )
        self._shutting_down = False
        self._online_published: dict[str, bool] = {}  # a change is published at once
        self._taking_commands = asyncio.Event()  # the command worker consumes the intake
        self._report_recoveries()
        self.stop_reason = "daemon shut down"  # the death certificate's reason

    def _report_recoveries(self) -> None:
        """Damaged state files that were moved aside at start-up: say so, loudly, and what went."""
        recovered: list[tuple[Recovery | None, str]] = [
            (self.outbox.recovery, "events, results and telemetry not yet delivered; the stream "
             "numbering starts again (new stream id)"),
            (self.shotlog.recovery, "the takes logged so far, their circles and notes (clips "
             "still on the cameras come back as the cameras are adopted)"),
            (self.intake.recovery, "stored command results (a repeated command id is now refused "
             "as a replay, not answered again)"),
            (self.ledger.recovery, "the cap and timeline the ground set, today's media and "
             "downlink use"),
            (self.authority.recovery if self.authority else None, "who held command "
             "authority: nobody does until a console claims it"),
        ]  # fmt: skip
        for recovery, lost in recovered:
            if recovery is not None:
                self.bus.emit(
                    "storage.corrupt", Severity.CRITICAL, recovery.message(lost),
                    source=recovery.path.name, file=str(recovery.path),
                    moved_to=str(recovery.moved_to), detail=recovery.detail,
                )  # fmt: skip
        if self.ledger.recovery is not None:
            # A ground-set cap is never forgotten silently: without it, the lowest cap known.
            cap = conservative_cap(self.config.power)
            self.power.base_cap_w = cap
            self.power.set_cap(
                cap, "budget.db was damaged: the ground's cap is unknown, so the most "
                "conservative cap known applies until the ground sets it again",
            )  # fmt: skip

    def _event_to_ground(self, event: Event) -> None:
        body = event.as_dict()
        self.ground.publish_local_event(body)  # the crew sees it now, whatever the link does
        if event.name.startswith("limit."):
            self.ground.publish_local_limits(self.limits.active())
        alarm = event.severity >= Severity.WARNING
        self.outbox.append_soon(ground.EVENT, body, URGENT if alarm else EVENTS)
        self.stream.notify(urgent=alarm)

    def _publish_result(self, body: dict[str, Any]) -> None:
        self.outbox.append_soon(ground.RESULT, body, URGENT)
        self.stream.notify()
        self.ground.publish_local_result(body)

    async def _device_adopted(self, agent: DeviceAgent) -> None:
        """A device (back) online: the shot log reconciles a camera's clips, the power manager
        learns a PDU's channels."""
        await self.takes.adopt_camera(agent)
        await self.power.adopt_pdu(agent)

    def _device_event(self, agent: DeviceAgent, event: DeviceEvent) -> None:
        self.takes.on_camera_event(agent, event)

    def _device_updated(self, agent: DeviceAgent) -> None:
        self.limits.check(agent.name, agent.kind, agent.status, agent.stats, agent.unmeasured)
        self.power.on_device_update(agent)
        self.data.on_device_update(agent)
        self.takes.on_device_update(agent)
        came_or_went = self._online_published.get(agent.name) != agent.online
        self._online_published[agent.name] = agent.online
        self.ground.update_state(agent.name, agent.snapshot, at_once=came_or_went)

    def birth(self, session_started: float) -> ground.BirthBody:
        return ground.BirthBody(
            node=self.node,
            schema=ground.SCHEMA_VERSION,
            started=self.started,
            session_started=session_started,
            frame_rate=self.reference.rate.fps,
            devices={name: agent.snapshot() for name, agent in self.devices.items()},
            groups={g.name: g.cameras for g in self.config.groups},
            commands={**self.dispatcher.signatures(), **self.intake.signatures()},
            limits=self.limits.active(),
            sequence=self.sequences.status_dict(),
            backlog=self.outbox.backlog(),
            budget=self.budget(),
        )

    def budget(self) -> dict[str, Any]:
        return {"power": self.power.status(), **self.data.status()}

    async def budget_status(self, _: NoArgs) -> dict[str, Any]:
        return self.budget()

    async def health(self, _: NoArgs) -> dict[str, Any]:
        return {
            "limits": self.limits.active(),
            "tasks": self.supervisor.status(),
            "timecode": {
                name: agent.clock_summary()
                for name, agent in self.devices.items()
                if agent.kind == "camera"
            },
            "links": {name: agent.stats.as_dict() for name, agent in self.devices.items()},
            "sequence": self.sequences.status_dict(),
            "outbox": self.outbox.backlog(),
        }

    async def rebirth(self, _: NoArgs) -> dict[str, Any]:
        await self.ground.rebirth()
        return {"bd_seq": self.ground.bd_seq}

    async def recent_events(self, args: RecentEventsArgs) -> dict[str, Any]:
        return {"events": self.outbox.recent_events(args.limit, args.min_severity)}

    def sample(self) -> ground.TelemetryBody:
        """One routine telemetry sample: device readings, budgets, backlog, limits out of bounds."""
        devices = {}
        for name, agent in self.devices.items():
            entry: dict[str, Any] = {"online": agent.online}
            if agent.status is not None:
                for field in _SAMPLED_FIELDS[agent.kind]:
                    if field not in agent.unmeasured:  # real gear: no reading, no sample
                        entry[field] = to_jsonable(getattr(agent.status, field))
            if agent.kind == "camera":
                entry.update(agent.clock_summary())
            devices[name] = entry
        power = self.power.status()
        budget = {k: power[k] for k in ("cap_w", "draw_w", "free_w", "shedding", "reserve_w")}
        budget["next_change"] = self.power.next_change()
        return ground.TelemetryBody(
            ts=self.clock.wall(),
            devices=devices,
            power=budget,
            data={**self.data.summary(), **(self.dailies.status() if self.dailies else {})},
            backlog=self.outbox.backlog(),
            limits=self.limits.active(),
        )

    async def _sample_telemetry(self) -> None:
        beat = self.supervisor.beater("telemetry")
        while True:
            beat()
            self.outbox.append(ground.TELEMETRY, self.sample(), ROUTINE)
            self.stream.notify(urgent=False)  # a sample waits for an open stream
            await asyncio.sleep(self.config.telemetry.interval_s)

    async def _receive_command(self, payload: bytes, *, priority: bool = False) -> None:
        if self._shutting_down:
            log.info("shutting down: a command arriving now is not taken (the ground may resend)")
            return
        # authenticated at once; forged traffic is only counted
        self.intake.receive(payload, priority=priority)

    async def _command_worker(self) -> None:
        """Commands run one at a time, so their effects never interleave; the intake answers
        whatever one of them raises and goes on (nothing outside can restart this task)."""
        beat = self.supervisor.beater("commands")
        self._taking_commands.set()
        while True:
            beat()
            await self.intake.process_next(COMMAND_IDLE_BEAT_S)

    async def _watch_storage(self) -> None:
        """Probe a degraded state disk; every change of state is told at once in a new birth
        (retained, on the onboard broker and to the ground: `backlog.held`)."""
        degraded = False
        while True:
            await asyncio.sleep(self.guard.probe_interval_s)
            self.guard.probe()
            if self.guard.degraded != degraded:
                degraded = self.guard.degraded
                self.stream.notify()
                try:
                    await self.ground.rebirth()
                except aiomqtt.MqttError as exc:
                    log.warning("birth after a storage change not published: %s", exc)

    async def run(self, stop: asyncio.Event) -> None:
        supervisor = self.supervisor
        supervisor.add("ground-link", self.ground.run)
        supervisor.add(
            "telemetry", self._sample_telemetry, watchdog_s=self.config.telemetry.interval_s + 30
        )
        supervisor.add("power", self.power.run)
        supervisor.add("link-tap", self.tap_server.run, started=self.tap_server.ready)
        supervisor.add("storage", self._watch_storage)
        supervisor.add("data-budgets", self.data.run)
        supervisor.add("takes", self.takes.run)
        supervisor.add("sequencer", self.sequences.run)
        if self.dailies is not None:
            self.dailies.supervise(supervisor)
        supervisor.add(
            "commands",
            self._command_worker,
            watchdog_s=self.dispatcher.timeout_s + 10,
            started=self._taking_commands,
        )
        supervisor.add(
            "timecode-drift", self.drift.run, watchdog_s=3 * self.config.project.drift_check_s + 30
        )
        for name, agent in self.devices.items():
            watchdog_s = max(30.0, 5 * agent.config.offline_after_s)
            supervisor.add(f"device:{name}", agent.run, watchdog_s=watchdog_s)
        notifier = self.notifier
        tasks_stop = asyncio.Event()
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(supervisor.run(tasks_stop), name="supervisor")
                announce = group.create_task(self._announce_ready(notifier), name="readiness")
                gate = group.create_task(self._open_the_stream(), name="stream-gate")
                try:
                    await stop.wait()
                    announce.cancel()  # stopped before it was ever up: never say ready
                    gate.cancel()  # the shutdown's flush opens the stream itself
                    notifier.stopping()
                    await self._shut_down()
                finally:
                    tasks_stop.set()  # the ground link, last of the tasks
        finally:
            self.close()  # the databases, once no task is left to touch them

    async def _open_the_stream(self) -> None:
        """The backlog goes once every device has had its first try (online, or failed) and
        the states of those online are with the broker's client, or after DEVICES_FIRST_S.
        Draining a full outbox at a restart took the CPU the devices needed to come online (64
        in 0.96-1.18 s instead of 0.35-0.54 s) and put their states behind it on the socket
        (the ground saw them up to a second later; opened as the last device came online, the
        first batch still held that one's state 50-100 ms). Births, states, alarms and command
        results go at once meanwhile; other events wait, in order."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DEVICES_FIRST_S):
                for agent in self.devices.values():
                    await agent.tried.wait()
                await self.ground.changes_published.wait()
        self.stream.open()

    async def _announce_ready(self, notifier: Notifier) -> None:
        """READY=1 once every task is up: the databases are open (they open as the daemon is
        built), the intake consumed, the tap socket bound, every component running."""
        await self.supervisor.all_started()
        notifier.ready(f"{len(self.devices)} devices configured")

    async def _shut_down(self) -> None:
        """Take no more commands, stop every task but the ground link, give the backlog its
        chance to reach the ground, then say goodbye (a clean disconnect fires no will)."""
        self._shutting_down = True
        tasks = self.supervisor.tasks
        await self.supervisor.stop([name for name in tasks if name != "ground-link"])
        if not await self.ground.flush(SHUTDOWN_FLUSH_S):
            left = self.outbox.backlog()["messages"]
            log.warning("shutting down: %d messages stay queued for the next start", left)
        await self.ground.publish_death(self.stop_reason)

    def close(self) -> None:
        if self.dailies is not None:
            self.dailies.close()
        self.shotlog.close()
        self.intake.close()
        if self.authority is not None:
            self.authority.close()
        self.outbox.close()
        self.ledger.close()


class RecentEventsArgs(msgspec.Struct, forbid_unknown_fields=True):
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100
    min_severity: Literal["diagnostic", "info", "warning", "critical"] | None = None


# What telemetry samples of each kind's status (SPEC.md's CameraStatus, LightStatus, PduStatus).
_SAMPLED_FIELDS: dict[str, tuple[str, ...]] = {
    "camera": ("state", "timecode", "temperature_cdeg", "draw_mw", "media_used_bytes",
               "media_free_bytes"),
    "light": ("on", "intensity_permille", "cct_k", "temperature_cdeg", "draw_mw", "faults"),
    "pdu": ("total_power_mw", "bus_voltage_mv"),
}  # fmt: skip


def on_hangup(daemon: Daemon, shut_down: Callable[[str], None], *, in_terminal: bool) -> None:
    """SIGHUP means what it means where the daemon runs.

    Started from a terminal, it is the hang-up of that terminal (closed, or its session
    ended): the daemon ends cleanly with a death certificate, as on SIGTERM, rather than run
    on unseen. As a service (no terminal: systemd's `ExecReload`, `kill -HUP`), it re-reads
    the keyring (`cupola keys revoke` says so) and keeps running.
    """
    if in_terminal:
        shut_down("its terminal hung up (SIGHUP)")
        return
    log.info("SIGHUP: re-reading the keyring %s", daemon.config.auth.keyring)
    daemon.intake.reload_keyring()


def _started_in_a_terminal() -> bool:
    return any(os.isatty(fd) for fd in (0, 1, 2))


def run_daemon(config: Config, checked_ahead: CheckAhead | None = None) -> int:
    """Run until SIGINT or SIGTERM (or SIGHUP from its terminal); each ends it cleanly, with
    a death certificate."""

    async def main() -> None:
        stop = asyncio.Event()
        daemon = Daemon(config, checked_ahead=checked_ahead)
        settle_heap()

        def shut_down(reason: str) -> None:
            log.warning("shutting down: %s", reason)
            daemon.stop_reason = f"daemon shut down: {reason}"
            stop.set()

        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, shut_down, "interrupted (SIGINT)")
        loop.add_signal_handler(signal.SIGTERM, shut_down, "asked to stop (SIGTERM)")
        in_terminal = _started_in_a_terminal()  # decided now: a hung-up terminal still is one
        loop.add_signal_handler(
            signal.SIGHUP, lambda: on_hangup(daemon, shut_down, in_terminal=in_terminal)
        )
        devices = ", ".join(f"{d.name} ({d.kind})" for d in config.devices)
        log.info("node %r started with %d devices: %s; broker %s", config.node.name,
                 len(config.devices), devices, _without_password(config.mqtt.url))  # fmt: skip
        roll_call = asyncio.create_task(_roll_call(daemon))
        await daemon.run(stop)
        roll_call.cancel()
        log.warning("stopped cleanly (%s)", daemon.stop_reason)

    try:
        asyncio.run(main())
    except StorageError as exc:  # a state file it cannot start without: one clear line
        print(f"cupola daemon: cannot start: {exc}", file=sys.stderr)
        return EXIT_STATE_UNUSABLE if isinstance(exc, StorageCorrupt) else 1
    return 0


def settle_heap() -> None:
    """What is built by now (modules, protocol tables, the daemon) lives as long as the
    process: out of the collector's sight, a full collection walks only what came after (64
    devices: 28 ms a full collection, every poll waiting behind it); then the collector is on,
    whether or not start-up had it off.

    `cupola daemon` has it off through its imports, its config and building the daemon:
    collections there walked the same objects again and again (11 ms of the start on
    fc-v657). The little garbage start-up makes is frozen with the rest, kept for the life of
    the process: about 940 objects, 340 KiB, mostly the classes `@record` replaces by
    Structs. Collecting it first would cost 19 ms, more than the collector's pause saves."""
    gc.freeze()
    gc.enable()


async def _roll_call(daemon: Daemon) -> None:
    """Once every device had its time to answer: who is online, and why the others are not.

    Later changes are events (device.online, device.offline), logged as they happen.
    """
    await asyncio.sleep(max(d.config.offline_after_s for d in daemon.devices.values()))
    offline = [f"{a.name} ({a.offline_reason})" for a in daemon.devices.values() if not a.online]
    online = len(daemon.devices) - len(offline)
    level = logging.WARNING if offline else logging.INFO
    log.log(level, "%d of %d devices online%s", online, len(daemon.devices),
            f"; offline: {', '.join(offline)}" if offline else "")  # fmt: skip


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))
