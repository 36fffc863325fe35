"""DMX/RDM lights through an Enttec DMX USB Pro widget, behind the light driver's interface.

Several lights share one widget (one port): a WidgetConnection per port holds the universe
and serialises RDM exchanges (a request goes out as label 7, its answer comes back as label 5
or the exchange ends with label 12). Each light's driver sets its own slots through the
fixture's personality file and, if the fixture has an RDM UID, reads its sensors (LED board
temperature, input power) and status messages. A DMX-only light reports nothing: its level
is what Cupola sent, its draw and heat are Cupola's model. Fades are stepped by the daemon
(DMX has no fade), and there is no fail-safe level: the widget repeats the last frame.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from firmware_host.drivers.light import LightDriver
from firmware_host.gear.line import BytePort
from firmware_host.gear.settings import GearConfig
from firmware_host.link.errors import LinkDown, LinkError, LinkTimeout
from firmware_host.link.stats import LinkStats
from firmware_host.link.transport import Tap
from protocols import enttec, rdm
from protocols.dmx_personality import Personality, load_personality
from protocols.errors import ProtocolError
from protocols.messages.light import CCT_MAX_K, CCT_MIN_K, LightFault, LightStatus

BAUD = 115_200  # a USB serial widget: the setting is ignored, the USB link is the speed
ESTA_ENTTEC = 0x454E
FADE_STEP_S = 0.04  # 25 DMX frames a second while fading


class WidgetConnection:
    """One widget on one port, shared by the lights behind it."""

    def __init__(
        self,
        path: str,
        stats: LinkStats,
        *,
        timeout_s: float,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.stats = stats
        self.timeout_s = timeout_s
        self.wall = wall
        self.port: BytePort | None = None
        self.deframer = enttec.Deframer()
        self.universe = bytearray(enttec.DMX_SLOTS)
        self.users = 0
        self.serial = 0
        self.firmware = (0, 0)
        self.controller_uid = 0
        self.rdm_lock = asyncio.Lock()
        self.last_rx = 0.0
        self._transaction = 0
        self._waiters: dict[int, asyncio.Future[enttec.Message]] = {}
        self._dub: list[bytes] | None = None  # discovery answers while a DUB is out
        self.discovered: list[int] | None = None  # UIDs found when the widget was opened

    @property
    def open(self) -> bool:
        return self.port is not None and not self.port.closed

    async def connect(self, tap: Tap | None) -> None:
        if self.open:
            return
        self.port = await BytePort.open(self.path, BAUD, self._on_data, tap=tap)
        self.deframer.reset()
        try:
            params = await self.request(enttec.Label.GET_WIDGET_PARAMS, b"\x00\x00")
            self.firmware = enttec.decode_widget_params(params.data).firmware
            serial = await self.request(enttec.Label.GET_SERIAL)
            self.serial = enttec.decode_serial(serial.data)
        except (LinkError, ProtocolError):
            self.close()
            raise
        self.controller_uid = ESTA_ENTTEC << 32 | self.serial
        self.send_universe()
        self.discovered = await self.discover()

    def close(self) -> None:
        if self.port is not None:
            self.port.close()
            self.port = None
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_exception(LinkDown(f"{self.path} closed"))
                waiter.exception()  # whoever awaits it gets it; nobody need
        self._waiters.clear()

    def _on_data(self, data: bytes) -> None:
        for item in self.deframer.feed(data):
            if isinstance(item, enttec.Rejected):
                self.stats.frames.rejected += 1
                self.stats.frames.framing_errors += 1
                continue
            self.stats.frames.frames += 1
            self.last_rx = asyncio.get_running_loop().time()
            if item.label == enttec.Label.RECEIVED_DMX and self._dub is not None:
                self._dub.append(item.data)  # a discovery answer: the exchange ends with 12
                continue
            label = item.label
            if label == enttec.Label.RDM_TIMEOUT and label not in self._waiters:
                label = enttec.Label.RECEIVED_DMX  # a request nobody answered
            waiter = self._waiters.pop(label, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(item)
            else:
                self.stats.unmatched += 1

    def write(self, label: int, data: bytes = b"") -> None:
        if self.port is None:
            raise LinkDown(f"{self.path} is not open")
        self.port.write(enttec.encode(label, data))

    async def request(
        self, label: int, data: bytes = b"", *, until: int | None = None
    ) -> enttec.Message:
        """A message the widget answers with the same label (RDM: with 5, or 12 if nobody
        answered; `until`: wait for that label instead)."""
        wait_label = until or (enttec.Label.RECEIVED_DMX if label == 7 else label)
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[enttec.Message] = loop.create_future()
        self._waiters[wait_label] = waiter
        self.stats.requests += 1
        sent = loop.time()
        self.write(label, data)
        try:
            reply = await asyncio.wait_for(waiter, self.timeout_s)
        except TimeoutError:
            self._waiters.pop(wait_label, None)
            self.stats.timeouts += 1
            self.stats.failures += 1
            raise LinkTimeout(self.path, f"widget label {label}", 1, self.timeout_s) from None
        self.stats.replies += 1
        self.stats.record_rtt(loop.time() - sent)
        return reply

    def send_universe(self) -> None:
        self.write(enttec.Label.SEND_DMX, b"\x00" + bytes(self.universe))

    def set_slots(self, address: int, levels: bytes) -> None:
        self.universe[address - 1 : address - 1 + len(levels)] = levels
        self.send_universe()

    # -- discovery (E1.20 section 7: unique branch, mute, binary search on collisions) ------

    def _packet(self, uid: int, cc: int, pid: rdm.Pid, data: bytes = b"") -> bytes:
        self._transaction = (self._transaction + 1) & 0xFF
        return rdm.encode(
            rdm.Packet(uid, self.controller_uid, self._transaction, 1, 0, 0, cc, pid, data)
        )

    async def discover(self) -> list[int]:
        """Every RDM responder on the line, as OLA's discovery agent finds them."""
        async with self.rdm_lock:
            discovery = rdm.CommandClass.DISCOVERY
            await self.request(
                enttec.Label.SEND_RDM, self._packet(rdm.BROADCAST, discovery, rdm.Pid.DISC_UN_MUTE)
            )
            found: list[int] = []
            await self._branch(0, rdm.UID_MAX, found)
            return sorted(found)

    async def _branch(self, lower: int, upper: int, found: list[int]) -> None:
        while True:
            answers = await self._unique_branch(lower, upper)
            if not answers:
                return  # silence: nobody unmuted in this range
            try:
                uid = rdm.decode_dub_response(answers[0][1:]) if answers[0][:1] == b"\x00" else -1
            except ProtocolError:
                uid = -1  # a collision: several answered at once
            if not lower <= uid <= upper or not await self._mute(uid):
                break
            found.append(uid)  # muted now: the same branch may hold others
        if lower < upper:
            middle = (lower + upper) // 2
            await self._branch(lower, middle, found)
            await self._branch(middle + 1, upper, found)

    async def _unique_branch(self, lower: int, upper: int) -> list[bytes]:
        bounds = rdm.uid_bytes(lower) + rdm.uid_bytes(upper)
        packet = self._packet(
            rdm.BROADCAST, rdm.CommandClass.DISCOVERY, rdm.Pid.DISC_UNIQUE_BRANCH, bounds
        )
        self._dub = []
        try:
            await self.request(
                enttec.Label.SEND_RDM_DISCOVERY, packet, until=enttec.Label.RDM_TIMEOUT
            )
            return self._dub
        finally:
            self._dub = None

    async def _mute(self, uid: int) -> bool:
        packet = self._packet(uid, rdm.CommandClass.DISCOVERY, rdm.Pid.DISC_MUTE)
        reply = await self.request(enttec.Label.SEND_RDM, packet)
        if reply.label != enttec.Label.RECEIVED_DMX or reply.data[:1] != b"\x00":
            return False
        try:
            answer = rdm.decode(reply.data[1:])
        except ProtocolError:
            return False
        return answer.pid == rdm.Pid.DISC_MUTE and answer.source == uid

    async def rdm_get(self, uid: int, pid: rdm.Pid, data: bytes = b"") -> bytes:
        """GET a parameter from a fixture; its data, or LinkError when it does not answer."""
        async with self.rdm_lock:
            request = self._packet(uid, rdm.CommandClass.GET, pid, data)
            reply = await self.request(enttec.Label.SEND_RDM, request)
            if reply.label == enttec.Label.RDM_TIMEOUT or len(reply.data) < 2:
                raise LinkTimeout(rdm.format_uid(uid), f"RDM GET {pid.name}", 1, self.timeout_s)
            if reply.data[0] != 0:
                raise LinkError(f"{rdm.format_uid(uid)}: RDM answer corrupted on the line")
            answer = rdm.decode(reply.data[1:])
            if answer.port_or_response != rdm.ResponseType.ACK or answer.pid != pid:
                raise LinkError(f"{rdm.format_uid(uid)}: RDM {pid.name} not acknowledged")
            return answer.data


class WidgetRegistry:
    """The widgets of one daemon, by port: lights on the same port share one connection."""

    def __init__(self) -> None:
        self.widgets: dict[str, WidgetConnection] = {}

    def get(self, path: str, stats: LinkStats, timeout_s: float) -> WidgetConnection:
        widget = self.widgets.get(path)
        if widget is None:
            widget = self.widgets[path] = WidgetConnection(path, stats, timeout_s=timeout_s)
        return widget


class DmxLight(LightDriver):
    """LightDriver for one fixture on a widget's line."""

    def __init__(
        self,
        name: str,
        widget: WidgetConnection,
        gear: GearConfig,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # No native session: the light is driven through the widget's universe.
        self.name = name
        self.widget = widget
        self.gear = gear
        self.clock = clock
        self.personality: Personality = load_personality(gear.personality)
        self.uid = rdm.parse_uid(gear.rdm_uid) if gear.rdm_uid else None
        self.on = True  # powered fixtures light at the level they are sent
        self._from = self._to = 0.0
        self._cct_from = self._cct_to = 5600.0
        self._fade_start = 0.0
        self._fade_s = 0.0
        self.temperature_c: float | None = None
        self.draw_w: float | None = None
        self.overheating = False

    # -- levels ---------------------------------------------------------------------------

    def _progress(self) -> float:
        if self._fade_s <= 0:
            return 1.0
        return min(1.0, (self.clock() - self._fade_start) / self._fade_s)

    def level_now(self) -> tuple[float, float]:
        p = self._progress()
        return (
            self._from + (self._to - self._from) * p,
            self._cct_from + (self._cct_to - self._cct_from) * p,
        )

    @property
    def fading(self) -> bool:
        return self._progress() < 1.0

    def apply(self) -> None:
        """Send this fixture's slots for the level now."""
        level, cct = self.level_now()
        self.widget.set_slots(
            self.gear.dmx_address, self.personality.levels(level if self.on else 0.0, cct)
        )

    async def set_level(self, intensity_permille: int, cct_k: int, fade_ms: int) -> LightStatus:
        level, cct = self.level_now()
        self._from, self._cct_from = level, cct
        self._to, self._cct_to = float(intensity_permille), float(cct_k)
        self._fade_start, self._fade_s = self.clock(), fade_ms / 1000.0
        self.apply()
        return self.status()

    async def set_power(self, on: bool) -> LightStatus:
        self.on = on
        self.apply()
        return self.status()

    async def set_failsafe(self, intensity_permille: int) -> LightStatus:
        """Not supported: the widget keeps sending the last frame if the daemon stops."""
        return self.status()

    async def fade_loop(self) -> None:
        """Step fades: DMX fixtures have no fade of their own."""
        while True:
            if self.fading:
                self.apply()
            await asyncio.sleep(FADE_STEP_S)

    async def check_rdm(self) -> list[str]:
        """What the fixture itself says against the configuration: is it on the line (RDM
        discovery), at the configured start address, with the personality's footprint?"""
        if self.uid is None:
            return []
        uid = rdm.format_uid(self.uid)
        found = self.widget.discovered
        if found is not None and self.uid not in found:
            seen = ", ".join(rdm.format_uid(u) for u in found) or "none"
            return [f"RDM discovery did not find {uid} on the line (found: {seen})"]
        info = rdm.decode_device_info(await self.widget.rdm_get(self.uid, rdm.Pid.DEVICE_INFO))
        problems = []
        if info.start_address != self.gear.dmx_address:
            problems.append(
                f"{uid} starts at DMX slot {info.start_address}, configured {self.gear.dmx_address}"
            )
        if info.footprint != self.personality.footprint:
            problems.append(
                f"{uid} reads {info.footprint} slots, personality "
                f"{self.personality.name} has {self.personality.footprint}"
            )
        return problems

    # -- status ---------------------------------------------------------------------------

    async def poll(self) -> LightStatus:
        if self.fading:
            self.apply()
        if self.uid is not None:
            await self._read_rdm(self.uid)
        elif not self.widget.open:
            raise LinkDown(f"{self.widget.path} is closed")
        return self.status()

    async def _read_rdm(self, uid: int) -> None:
        temperature = rdm.decode_sensor_value(
            await self.widget.rdm_get(uid, rdm.Pid.SENSOR_VALUE, b"\x00")
        )
        power = rdm.decode_sensor_value(
            await self.widget.rdm_get(uid, rdm.Pid.SENSOR_VALUE, b"\x01")
        )
        messages = rdm.decode_status_messages(
            await self.widget.rdm_get(
                uid, rdm.Pid.STATUS_MESSAGES, bytes([rdm.StatusType.ADVISORY])
            )
        )
        self.temperature_c = float(temperature.present)
        self.draw_w = float(power.present)
        self.overheating = any(m.message_id == rdm.StatusId.OVERTEMP for m in messages)

    def status(self) -> LightStatus:
        level, cct = self.level_now()
        target = round(self._to) if self.on else 0
        remaining = max(0.0, self._fade_start + self._fade_s - self.clock())
        return LightStatus(
            on=self.on,
            intensity_permille=round(level) if self.on else 0,
            cct_k=max(CCT_MIN_K, min(CCT_MAX_K, round(cct))),
            target_intensity_permille=target,
            target_cct_k=max(CCT_MIN_K, min(CCT_MAX_K, round(self._cct_to))),
            fade_remaining_ms=round(remaining * 1000),
            output_limit_permille=1000,  # not reported: DMX gives no fold-back ceiling
            draw_mw=round((self.draw_w or 0.0) * 1000),
            temperature_cdeg=round((self.temperature_c or 0.0) * 100),
            faults=LightFault.THERMAL_FOLDBACK if self.overheating else LightFault(0),
        )
