"""A device agent keeps one device connected, identified, polled and honestly reported.

Lifecycle: open the port -> HELLO (identity, version, boot id) -> adopt (read the device's
real state; jam cameras) -> poll at the configured rate. A NO_SESSION refusal means the
device reset: re-identify and re-adopt without declaring it offline. No valid frame for
`offline_after_s`, or the port failing, declares it offline; reconnection then retries
with exponential backoff, forever, without anyone having to ask.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from firmware_host.backoff import Backoff
from firmware_host.config import DeviceConfig
from firmware_host.devices.offline_reasons import humanise
from firmware_host.devices.schedule import grid_tick, poll_after
from firmware_host.drivers.camera import CameraDriver
from firmware_host.drivers.light import LightDriver
from firmware_host.drivers.pdu import PduDriver
from firmware_host.events import EventBus
from firmware_host.gear.capabilities import NATIVE
from firmware_host.link.connection import LinkConnection, open_link
from firmware_host.link.errors import LinkError, LinkTimeout
from firmware_host.link.session import RequestSession
from firmware_host.link.stats import LinkStats
from firmware_host.link.transport import Tap
from firmware_host.tasks import stop_if_cancelled
from firmware_host.workflow.timecode import (
    ClockReading,
    ReferenceClock,
    clock_reading,
    least_delayed,
    wire_seconds,
)
from protocols import ground
from protocols.catalogue import HELLO, MsgType, NackReceived, decode_event
from protocols.errors import ProtocolError
from protocols.framing import MIN_FRAME, Frame
from protocols.messages.camera import CameraSettings, CameraState
from protocols.messages.common import (
    PROTOCOL_VERSION,
    DeviceClass,
    DeviceEvent,
    Hello,
    HelloRequest,
    NackCode,
    Severity,
)
from protocols.records import to_jsonable
from protocols.timecode import format_timecode

log = logging.getLogger(__name__)

Driver = CameraDriver | LightDriver | PduDriver
_CLASS_OF_KIND = {"camera": DeviceClass.CAMERA, "light": DeviceClass.LIGHT, "pdu": DeviceClass.PDU}
_JAM_FRAME_BYTES = MIN_FRAME + 9 + 3  # header, crc, body, COBS and delimiters
_READ_FRAME_BYTES = MIN_FRAME + 3  # TIMECODE_GET: empty body
_READING_FRAME_BYTES = MIN_FRAME + 10 + 3  # its reply, a TimecodeReading
CLOCK_FIELDS = ("timecode_offset_frames", "timecode_uncertainty_frames", "timecode_measured_at")
CLOCK_SAMPLES = 5  # readings per clock measurement; the least delayed is kept
JAM_ATTEMPTS = 5
RECONNECT_FIRST_S = 0.05
JAM_TOLERANCE_FRAMES = 0.05  # a jam leaving more (offset + uncertainty) is done again


# What takes a device offline and back to connecting (its line, its silence, its answers),
# as opposed to a fault of ours, which the supervisor reports as a crash.
DEVICE_LOST = (LinkError, NackReceived, ProtocolError)


class DeviceSilent(LinkError):
    """Nothing valid heard from the device for longer than its offline limit."""


class SessionLost(LinkError):
    """The device answered NO_SESSION: it has reset and must be re-identified."""


class WrongDevice(LinkError):
    """The port answers as a different kind of device than configured."""


class DeviceUnavailable(Exception):
    """A command needs a device that is offline or of another kind."""


class DeviceAgent:
    def __init__(
        self,
        config: DeviceConfig,
        bus: EventBus,
        reference: ReferenceClock,
        on_update: Callable[[DeviceAgent], None],
        *,
        on_adopted: Callable[[DeviceAgent], Awaitable[None]] | None = None,
        on_device_event: Callable[[DeviceAgent, DeviceEvent], None] | None = None,
        beat: Callable[[], None] = lambda: None,
        reconnect_max_s: float = 2.0,
        host_timeout_ms: int = 0,
        light_failsafe_permille: int = 0,
        tap: Tap | None = None,
    ) -> None:
        """`on_adopted` runs each time the device comes (back) online, after the agent's own
        adoption; `on_device_event` gets what the device says unasked; `beat` is the
        supervisor's watchdog."""
        self.config = config
        self.tap = tap
        self.name = config.name
        self.kind = config.kind
        self.protocol = "native"
        self.reports = NATIVE[config.kind]  # capabilities: what it measures (firmware_host/gear)
        self.unmeasured: frozenset[str] = frozenset()  # status fields it does not read at all
        self.bus = bus
        self.reference = reference
        self.on_update = on_update
        self._backoff = Backoff(RECONNECT_FIRST_S, reconnect_max_s)
        self.host_timeout_ms = host_timeout_ms
        self.light_failsafe_permille = light_failsafe_permille
        self.on_adopted = on_adopted
        self.beat = beat
        self.camera_settings: CameraSettings | None = None
        self.look: str | None = None  # the look (LUT) the DP named: kept here, not in the camera
        self.clock: ClockReading | None = None  # cameras: the last measured clock offset
        self.stats = LinkStats()
        self.online = False
        self.identity: Hello | None = None
        self.status: Any = None
        self.status_at = 0.0
        self.poll_started: float | None = None  # monotonic: when the status being stored was asked
        self.offline_reason = "not connected yet"
        self.missed_polls = 0
        self.driver: Driver | None = None
        self.session: RequestSession | None = None
        self.on_device_event = on_device_event
        self._link: LinkConnection | None = None
        self._ever_online = False
        self.online_changed = asyncio.Event()
        self.tried = asyncio.Event()  # its first try is over: online, or failed (or crashed)

    # -- what commands use -----------------------------------------------------------------

    def camera(self) -> CameraDriver:
        driver = self._live_driver()
        if not isinstance(driver, CameraDriver):
            raise DeviceUnavailable(f"{self.name} is a {self.kind}, not a camera")
        return driver

    def light(self) -> LightDriver:
        driver = self._live_driver()
        if not isinstance(driver, LightDriver):
            raise DeviceUnavailable(f"{self.name} is a {self.kind}, not a light")
        return driver

    def pdu(self) -> PduDriver:
        driver = self._live_driver()
        if not isinstance(driver, PduDriver):
            raise DeviceUnavailable(f"{self.name} is a {self.kind}, not a PDU")
        return driver

    async def refresh_status(self) -> Any:
        """Poll the device now: a decision about its state must not rest on the last periodic
        poll, which may be older than the take just started or cut."""
        status = await self._live_driver().poll()
        self._store_status(status)
        return status

    def _live_driver(self) -> Driver:
        if not self.online or self.driver is None:
            raise DeviceUnavailable(f"{self.name} is offline ({self.offline_reason})")
        return self.driver

    # -- lifecycle -------------------------------------------------------------------------

    async def run(self) -> None:
        """Keep the device connected for as long as the daemon runs."""
        while True:
            stop_if_cancelled()
            self.beat()
            try:
                await self._connect()
                self._backoff.reset()
                await self._serve()
            except DEVICE_LOST as exc:
                reason = str(exc)
            finally:
                self._close_port()
                self.tried.set()
            self._set_offline(reason)
            await asyncio.sleep(self._backoff.next())

    async def _connect(self) -> None:
        config = self.config
        self._link = await open_link(
            self.name,
            config.port,
            config.baud,
            self.stats,
            timeout_s=config.timeout_ms / 1000.0,
            retries=config.retries,
            on_event=self._on_event_frame,
            wall=self.reference.wall,
            tap=self.tap,
        )
        self.session = self._link.session
        self.stats.reconnects += 1
        self.driver = self._make_driver(self.session)

    def _make_driver(self, session: RequestSession) -> Driver:
        if self.kind == "camera":
            return CameraDriver(session)
        if self.kind == "light":
            return LightDriver(session)
        return PduDriver(session)

    def _close_port(self) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None

    async def _serve(self) -> None:
        while True:
            await self._handshake()
            try:
                await self._poll_loop()
            except SessionLost:
                self.bus.emit(
                    "device.reset",
                    Severity.WARNING,
                    f"{self.name} lost its session (device reset); re-identifying",
                    source=self.name,
                )

    async def _handshake(self) -> None:
        assert self.session is not None
        hello = await self.session.call(
            HELLO,
            HelloRequest(
                proto_min=1, proto_max=PROTOCOL_VERSION, host_timeout_ms=self.host_timeout_ms
            ),
        )
        expected = _CLASS_OF_KIND[self.kind]
        if hello.device_class is not expected:
            raise WrongDevice(
                f"{self.config.port} answers as a {hello.device_class.name.lower()}, "
                f"configured as a {self.kind}"
            )
        previous = self.identity
        self.identity = hello
        if previous is not None and previous.boot_id != hello.boot_id:
            self.bus.emit(
                "device.rebooted",
                Severity.WARNING,
                f"{self.name} restarted (boot id {previous.boot_id:08x} -> {hello.boot_id:08x}); "
                "state re-read from the device",
                source=self.name,
            )
        await self._adopt()
        self._set_online()

    async def _adopt(self) -> None:
        """Read the device's real state; never assume what it had before."""
        driver = self.driver
        assert driver is not None
        status: Any = await driver.poll()
        if isinstance(driver, CameraDriver):
            self.camera_settings = await driver.settings()
            if status.state in (CameraState.ARMED, CameraState.RECORDING):
                self.bus.emit(
                    "timecode.jam_deferred",
                    Severity.INFO,
                    f"{self.name} is rolling: timecode left as is until the take ends",
                    source=self.name,
                )
            else:
                await self._jam(driver)
        elif isinstance(driver, LightDriver):
            await driver.set_failsafe(self.light_failsafe_permille)
        self._store_status(status)
        if self.on_adopted is not None:
            await self.on_adopted(self)

    async def jam(self) -> ClockReading:
        """Jam this camera's timecode to the reference; returns the offset it left."""
        return await self._jam(self.camera())

    async def _jam(self, driver: CameraDriver) -> ClockReading:
        """Jam, then measure what the jam left, and jam again while that is not certainly
        within JAM_TOLERANCE_FRAMES: a jam delayed on its way (host or camera busy at the
        wrong instant) is redone at once rather than left for the drift monitor."""
        reference = self.reference
        wire = wire_seconds(_JAM_FRAME_BYTES, self.config.baud)
        tolerance = JAM_TOLERANCE_FRAMES * reference.rate.frame_seconds
        for _ in range(JAM_ATTEMPTS):
            await driver.jam(lambda written: reference.at(written + wire), reference.rate)
            reading = await self._read_clock(driver)
            if abs(reading.offset_s) + reading.uncertainty_s <= tolerance:
                break
        return reading

    async def read_clock(self) -> ClockReading:
        """How far this camera's timecode is ahead of the reference, with its uncertainty."""
        return await self._read_clock(self.camera())

    async def _read_clock(self, driver: CameraDriver) -> ClockReading:
        baud = self.config.baud
        readings: list[ClockReading] = []
        lost: LinkTimeout | None = None
        for _ in range(CLOCK_SAMPLES):
            try:
                stamped = await driver.timecode()
            except LinkTimeout as exc:
                lost = exc  # one reading lost on a noisy line: the others still count
                continue
            readings.append(
                clock_reading(
                    self.reference,
                    stamped.reply.frames,
                    stamped.reply.subframe_us,
                    sent_at=stamped.sent_at,
                    received_at=stamped.received_at,
                    request_wire_s=wire_seconds(_READ_FRAME_BYTES, baud),
                    reply_wire_s=wire_seconds(_READING_FRAME_BYTES, baud),
                )
            )
        if not readings:
            assert lost is not None
            raise lost
        self.clock = least_delayed(readings)
        return self.clock

    async def _poll_loop(self) -> None:
        assert self.driver is not None and self.session is not None
        loop, task = asyncio.get_running_loop(), asyncio.current_task()
        period = 1.0 / self.config.poll_hz
        next_poll = grid_tick(loop.time(), period)
        while True:
            stop_if_cancelled(task)
            self.beat()
            try:
                self._store_status(await self.driver.poll())
            except NackReceived as exc:
                if exc.code is NackCode.NO_SESSION:
                    raise SessionLost(str(exc)) from exc
                log.warning("%s refused a status poll: %s", self.name, exc)
            except LinkTimeout:
                pass  # counted in stats; silence is judged below
            silent_for = loop.time() - self.session.last_rx
            if silent_for > self.config.offline_after_s:
                raise DeviceSilent(f"{self.name}: nothing heard for {silent_for:.1f} s")
            next_poll = await self._wait_for_next_poll(loop, next_poll, period)

    async def _wait_for_next_poll(
        self, loop: asyncio.AbstractEventLoop, due: float, period: float
    ) -> float:
        """Sleep until the poll after the one `due`, on its grid (`poll_after`), counting the
        whole periods skipped and how late the wake-up came; returns when that poll is due."""
        now = loop.time()
        due, skipped = poll_after(due, now, period)
        self.missed_polls += skipped
        await _sleep_until(loop, due)
        self.stats.record_poll_lateness(loop.time() - due)
        return due

    def _store_status(self, status: Any) -> None:
        self.status = status
        self.status_at = self.reference.wall()
        self.on_update(self)

    def _on_event_frame(self, frame: Frame) -> None:
        if frame.msg_type == MsgType.HEARTBEAT:
            return  # liveness only, which the session has noted (`last_rx`): not decoded
        try:
            spec, body = decode_event(frame)
        except ProtocolError as exc:
            log.warning("%s sent an undecodable event: %s", self.name, exc)
            return
        if isinstance(body, DeviceEvent):
            self.bus.emit(
                f"{self.kind}.{body.code.name.lower()}",
                body.severity,
                f"{self.name}: {body.detail}" if body.detail else f"{self.name}: {body.code.name}",
                source=self.name,
                value=body.value,
            )
            if self.on_device_event is not None:
                self.on_device_event(self, body)
        elif spec.code.name == "ERROR_REPORT":
            self.bus.emit(
                "camera.error_report",
                Severity.CRITICAL,
                f"{self.name}: {getattr(body, 'detail', '')}",
                source=self.name,
                report=to_jsonable(body),
            )

    # -- state reporting -------------------------------------------------------------------

    def _set_online(self) -> None:
        self.tried.set()
        if self.online:
            return
        self.online = True
        identity = self.identity
        assert identity is not None
        self.bus.emit(
            "device.online",
            Severity.INFO,
            f"{self.name} online: {identity.model} {identity.serial} fw {identity.firmware}",
            source=self.name,
            reconnected=self._ever_online,
        )
        self._ever_online = True
        self.online_changed.set()
        self.on_update(self)

    def _set_offline(self, reason: str) -> None:
        reason = humanise(reason)
        self.offline_reason = reason
        self.driver = None
        if not self.online:
            return
        self.online = False
        self.bus.emit(
            "device.offline",
            Severity.WARNING,
            f"{self.name} offline: {reason}",
            source=self.name,
        )
        self.online_changed.set()
        self.on_update(self)

    def settings_record(self) -> dict[str, Any] | None:
        """A camera's settings in force as the shot log and the ground keep them: what the
        camera reports, and the look the DP named."""
        if self.camera_settings is None:
            return None
        record: dict[str, Any] = to_jsonable(self.camera_settings)
        if self.look:
            record["look"] = self.look
        return record

    def snapshot(self) -> ground.DeviceSnapshot:
        """The device as the ground sees it (built when it is published, not at every poll)."""
        identity = self.identity
        status = to_jsonable(self.status) if self.status is not None else None
        if status is not None and self.kind == "camera":
            status["timecode_label"] = format_timecode(self.status.timecode, self.status.rate)
        clock = self.clock
        offset = uncertainty = measured_at = None
        if clock is not None and self.kind == "camera":
            offset, uncertainty = (round(v, 4) for v in clock.in_frames(self.reference.rate))
            measured_at = round(clock.at, 6)
        return ground.DeviceSnapshot(
            device=self.name,
            kind=self.kind,
            online=self.online,
            offline_reason=None if self.online else self.offline_reason,
            identity=to_jsonable(identity) if identity else None,
            status=status,
            status_at=self.status_at or None,
            missed_polls=self.missed_polls,
            link=self.stats.as_dict(),
            timecode_offset_frames=offset,
            timecode_uncertainty_frames=uncertainty,
            timecode_measured_at=measured_at,
            pdu_channel=self.config.pdu_channel,
            camera_settings=self.settings_record(),
        )

    def clock_summary(self) -> dict[str, float | None]:
        """The last measured clock offset, its uncertainty (frames) and when it was read."""
        clock = self.clock
        if clock is None:
            return dict.fromkeys(CLOCK_FIELDS)
        offset, uncertainty = clock.in_frames(self.reference.rate)
        return {
            "timecode_offset_frames": round(offset, 4),
            "timecode_uncertainty_frames": round(uncertainty, 4),
            "timecode_measured_at": round(clock.at, 6),
        }


async def _sleep_until(loop: asyncio.AbstractEventLoop, when: float) -> None:
    """`asyncio.sleep` to the loop-time instant `when`, on the loop the caller holds: sleep
    asks for the running loop, which in Python 3.11 is a getpid system call, at every poll of
    every device. Cancelled, it stops waiting, as sleep does."""
    woken = loop.create_future()
    timer = loop.call_at(when, _wake, woken)
    try:
        await woken
    finally:
        timer.cancel()


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
