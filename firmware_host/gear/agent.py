"""A device agent for real gear: the native agent's lifecycle over a foreign protocol.

Connect (open the protocol's transport), identify (what the protocol offers: a deck's
device type, the widget's serial, a meter reading), adopt (read its state, jam a deck),
poll, and report honestly what the device does not say: `reports` lists its capabilities,
`not_reported` the status fields that are Cupola's model or estimate rather than a reading.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import msgspec

from firmware_host.config import DeviceConfig
from firmware_host.devices.agent import DEVICE_LOST, DeviceAgent, DeviceSilent, Driver
from firmware_host.drivers.camera import CameraDriver
from firmware_host.events import EventBus
from firmware_host.gear.capabilities import not_reported, reports, unmeasured
from firmware_host.gear.enttec import DmxLight, WidgetRegistry
from firmware_host.gear.modbus import ModbusPdu
from firmware_host.gear.sony9pin import (
    DeckMemory,
    Sony9PinCamera,
    Sony9PinLink,
    frame_bounded_offset,
    wire_s,
)
from firmware_host.link.errors import LinkError, LinkTimeout
from firmware_host.tasks import stop_if_cancelled
from firmware_host.workflow.timecode import (
    ClockReading,
    ReferenceClock,
    clock_reading,
    least_delayed,
)
from protocols import ground, rdm
from protocols.messages.common import PROTOCOL_VERSION, DeviceClass, Hello, Severity

CLOCK_SAMPLES = 5
_CLASS = {"camera": DeviceClass.CAMERA, "light": DeviceClass.LIGHT, "pdu": DeviceClass.PDU}


class GearAgent(DeviceAgent):
    def __init__(
        self,
        config: DeviceConfig,
        bus: EventBus,
        reference: ReferenceClock,
        on_update: Callable[[DeviceAgent], None],
        *,
        widgets: WidgetRegistry,
        **kwargs: Any,
    ) -> None:
        super().__init__(config, bus, reference, on_update, **kwargs)
        self.protocol = config.protocol
        self.reports = reports(self.kind, config.protocol, rdm=config.gear.rdm_uid is not None)
        self.unmeasured = unmeasured(self.kind, self.reports)
        self.widgets = widgets
        self.deck = DeckMemory()  # a deck's clips and estimated media, across reconnects
        self._release: Callable[[], None] | None = None
        self._last_rx: Callable[[], float] = lambda: 0.0

    # -- transport ------------------------------------------------------------------------

    async def _connect(self) -> None:
        config = self.config
        timeout_s = config.timeout_ms / 1000.0
        if self.protocol == "sony9pin":
            link = Sony9PinLink(
                self.name,
                self.stats,
                timeout_s=timeout_s,
                retries=config.retries,
                wall=self.reference.wall,
            )
            await link.open(config.port, self.tap)
            self._release, self._last_rx = link.close, lambda: link.last_rx
            self.driver = Sony9PinCamera(
                self.name,
                link,
                self.reference,
                config.gear,
                clock=lambda: self.clock,
                memory=self.deck,
            )
        elif self.protocol == "enttec-dmx":
            widget = self.widgets.get(config.port, self.stats, timeout_s)
            await widget.connect(self.tap)
            widget.users += 1

            def release() -> None:
                widget.users -= 1
                if widget.users <= 0:
                    widget.close()

            self._release, self._last_rx = release, lambda: widget.last_rx
            self.driver = DmxLight(self.name, widget, config.gear)
        else:
            pdu = await ModbusPdu.connect(
                self.name,
                config.port,
                config.gear,
                self.stats,
                timeout_s=timeout_s,
                retries=config.retries,
                baud=config.baud,  # the meter's setting (SDM120: 2400-9600); 9-pin is fixed
            )
            loop = asyncio.get_running_loop()
            self._release, self._last_rx = pdu.close, lambda: pdu.last_ok or loop.time()
            self.driver = pdu
        self.stats.reconnects += 1

    def _close_port(self) -> None:
        if self._release is not None:
            self._release()
            self._release = None

    def _make_driver(self, session: Any) -> Driver:
        raise TypeError("real gear has no native session")

    # -- lifecycle ------------------------------------------------------------------------

    async def _serve(self) -> None:
        self.identity = await self._identify()
        await self._adopt()
        self._set_online()
        try:
            async with asyncio.TaskGroup() as group:
                if isinstance(self.driver, DmxLight):
                    group.create_task(self.driver.fade_loop())
                await self._poll_gear()
        except* DEVICE_LOST as lost:
            # The task group hands the poll loop's end (a line that failed, a device gone
            # silent) on wrapped in a group, which the agent's run would take for a crash of
            # ours: unwrapped, it takes the device offline and back to connecting.
            raise lost.exceptions[0] from None

    async def _identify(self) -> Hello:
        driver = self.driver
        if isinstance(driver, Sony9PinCamera):
            device_type = await driver.identify()
            model, serial = f"9-pin deck {device_type.hex()}", ""
        elif isinstance(driver, DmxLight):
            for problem in await driver.check_rdm():
                self.bus.emit(
                    "light.rdm_mismatch",
                    Severity.WARNING,
                    f"{self.name}: {problem}",
                    source=self.name,
                )
            widget = driver.widget
            uid = rdm.format_uid(driver.uid) if driver.uid is not None else "DMX only"
            model = f"DMX {driver.personality.name} @{self.config.gear.dmx_address}"
            serial = f"{uid} via widget {widget.serial}"
        else:
            assert isinstance(driver, ModbusPdu)
            await driver.poll()  # the meter and the relays both answer, or this raises
            model, serial = (
                f"Modbus {self.config.gear.register_map}",
                f"unit {self.config.gear.meter_unit}",
            )
        return Hello(
            proto=PROTOCOL_VERSION,
            device_class=_CLASS[self.kind],
            model=model[:24],
            serial=serial[:24],
            firmware=self.protocol[:16],
            boot_id=0,
            heartbeat_ms=1000,
        )

    async def _poll_gear(self) -> None:
        driver = self.driver
        assert driver is not None
        loop, task = asyncio.get_running_loop(), asyncio.current_task()
        period = 1.0 / self.config.poll_hz
        # Its own phase, from when it came online, not the shared grid (devices/schedule.py):
        # lights on one DMX widget share its line, and polls due together would queue there.
        next_poll = loop.time()
        last_ok = loop.time()
        while True:
            stop_if_cancelled(task)
            self.beat()
            try:
                self.poll_started = loop.time()  # the clock every agent and the governor share
                self._store_status(await driver.poll())
                last_ok = loop.time()
            except LinkTimeout:
                pass  # counted in stats; silence is judged below
            silent_for = loop.time() - max(self._last_rx(), last_ok)
            if silent_for > self.config.offline_after_s:
                raise DeviceSilent(f"{self.name}: nothing heard for {silent_for:.1f} s")
            next_poll = await self._wait_for_next_poll(loop, next_poll, period)

    # -- a deck's clock: whole frames only ------------------------------------------------

    async def _jam(self, driver: CameraDriver) -> ClockReading:
        """One preset landing on a frame boundary; a deck's clock is read to the frame, so
        jamming again cannot be told to be better."""
        if not isinstance(driver, Sony9PinCamera):
            return await super()._jam(driver)
        await driver.jam(self.reference.at, self.reference.rate)
        return await self._read_clock(driver)

    async def _read_clock(self, driver: CameraDriver) -> ClockReading:
        """Readings spread over one frame, so one of them straddles a frame boundary: the
        whole-frame readings bound the offset far tighter than a frame (frame_bounded_offset);
        if they disagree, the least delayed one stands, good to half a frame."""
        if not isinstance(driver, Sony9PinCamera):
            return await super()._read_clock(driver)
        spacing = self.reference.rate.frame_seconds / CLOCK_SAMPLES
        bounds: list[tuple[int, float, float]] = []
        singles: list[ClockReading] = []
        for index in range(CLOCK_SAMPLES):
            if index:
                await asyncio.sleep(spacing)
            with contextlib.suppress(LinkTimeout):
                stamped = await driver.timecode()
                earliest, latest = stamped.sent_at + wire_s(4), stamped.received_at - wire_s(7)
                bounds.append((stamped.reply.frames, earliest, max(earliest, latest)))
                reading = clock_reading(
                    self.reference,
                    stamped.reply.frames,
                    stamped.reply.subframe_us,
                    sent_at=stamped.sent_at,
                    received_at=stamped.received_at,
                    request_wire_s=wire_s(4),
                    reply_wire_s=wire_s(7),
                )
                singles.append(
                    ClockReading(
                        reading.offset_s,
                        reading.uncertainty_s + spacing * CLOCK_SAMPLES / 2,
                        reading.at,
                        reading.round_trip_s,
                    )
                )
        if not singles:
            raise LinkError(f"{self.name}: no time data from the deck")
        self.clock = frame_bounded_offset(self.reference, bounds) or least_delayed(singles)
        return self.clock

    # -- reporting ------------------------------------------------------------------------

    def settings_record(self) -> dict[str, Any] | None:
        """A deck's settings are what the crew configured, not a reading: the shot log says
        nothing rather than something unmeasured."""
        return super().settings_record() if "settings" in self.reports else None

    def snapshot(self) -> ground.DeviceSnapshot:
        """The native snapshot, with what the device does not measure null (never a zero)
        and its protocol, capabilities and unreported fields named."""
        snapshot = super().snapshot()
        status = snapshot.status
        if status is not None:
            for field in self.unmeasured:
                if field in status:
                    status[field] = None
                elif field.startswith("channels."):  # a feed meter's channels
                    for channel in status.get("channels") or []:
                        channel[field.split(".", 1)[1]] = None
        return msgspec.structs.replace(
            snapshot,
            protocol=self.protocol,
            reports=sorted(self.reports),
            not_reported=not_reported(self.kind, self.reports),
        )
