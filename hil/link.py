"""The cable between a simulated device and the daemon: pacing, latency and line faults.

Both directions cross the emulated wire. Bytes the device sends leave no faster than the
configured baud (8N1: ten bit times per byte); bytes the daemon writes reach the device only
after the time they would take on the wire. Bit errors and byte drops are drawn by geometric
gaps between events, so cost grows with the number of errors, not of bits.
"""

from __future__ import annotations

import asyncio
import collections
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hil.pty_port import PtyPort

BITS_PER_BYTE = 10  # start + 8 data + stop
_MIN_TIMER_S = 0.0005
_BABBLE_CHUNK = 64


@dataclass
class LineFaults:
    """Faults of the cable itself, switchable at run time."""

    ber: float = 0.0  # probability that any one bit is flipped
    drop_rate: float = 0.0  # probability that any one byte is lost
    latency_ms: float = 0.0  # one-way delay added to every byte
    noise_rate_hz: float = 0.0  # mean rate of noise bursts
    noise_burst_bytes: int = 8  # random bytes per burst
    babble: bool = False  # the device floods the line with garbage


@dataclass
class _ErrorCursor:
    """Distance to the next bit error and next byte drop, carried across writes."""

    to_bit_error: float = math.inf
    to_drop: float = math.inf


@dataclass
class LinkCounters:
    bytes_tx: int = 0
    bytes_rx: int = 0
    bits_flipped: int = 0
    bytes_dropped: int = 0
    noise_bursts: int = 0
    babble_bytes: int = 0
    plugs: int = 0
    unplugs: int = 0


class EmulatedLink:
    """Owns the pty and applies the line model to every byte in both directions."""

    def __init__(
        self,
        path: Path,
        on_receive: Callable[[bytes], None],
        *,
        baud: int | None = None,
        rng: random.Random | None = None,
        bits_per_byte: int = BITS_PER_BYTE,
        parity: bool = False,
    ) -> None:
        self.port = PtyPort(path, self._from_host)
        self.baud = baud
        self.bits_per_byte = bits_per_byte  # 11 for 8O1 (Sony 9-pin) and for 8N2 (DMX512)
        self.parity = parity  # a parity bit per byte: an odd number of flips in one is seen
        self.parity_errors = 0  # bytes from the host whose parity failed (device's UART)
        self.faults = LineFaults()
        self.counters = LinkCounters()
        self._on_receive = on_receive
        self._rng = rng or random.Random()
        self._tx_cursor = _ErrorCursor()
        self._rx_cursor = _ErrorCursor()
        self._tx_queue: collections.deque[tuple[float, bytes]] = collections.deque()
        self._tx_line_free = 0.0
        self._rx_line_free = 0.0
        self._tx_timer: asyncio.TimerHandle | None = None
        self._noise_task: asyncio.Task[None] | None = None
        self._babble_task: asyncio.Task[None] | None = None

    # -- cable ---------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self.port.path

    @property
    def byte_time(self) -> float:
        return self.bits_per_byte / self.baud if self.baud else 0.0

    def plug(self) -> None:
        if not self.port.connected:
            self.port.open()
            self.counters.plugs += 1

    def unplug(self) -> None:
        if self.port.connected:
            self.port.close()
            self.counters.unplugs += 1
        self._tx_queue.clear()
        if self._tx_timer is not None:
            self._tx_timer.cancel()
            self._tx_timer = None

    def close(self) -> None:
        self.unplug()
        for task in (self._noise_task, self._babble_task):
            if task is not None:
                task.cancel()

    def set_faults(self, **changes: float | int | bool) -> None:
        """Change line faults; unknown names raise AttributeError naming the fault."""
        for name, value in changes.items():
            if not hasattr(self.faults, name):
                raise AttributeError(f"no line fault called {name!r}")
            setattr(self.faults, name, type(getattr(self.faults, name))(value))
        self._tx_cursor = _ErrorCursor()
        self._rx_cursor = _ErrorCursor()
        self._sync_background_tasks()

    def set_baud(self, baud: int | None) -> None:
        self.baud = baud

    # -- device -> host ------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Transmit bytes from the device towards the daemon."""
        if not self.port.connected or not data:
            return
        self.counters.bytes_tx += len(data)
        self._transmit(self._corrupt(data, self._tx_cursor))

    def _transmit(self, data: bytes) -> None:
        if not data:
            return
        latency = self.faults.latency_ms / 1000.0
        if not self.baud and not latency and not self._tx_queue:
            self.port.write(data)
            return
        loop = asyncio.get_running_loop()
        start = max(loop.time() + latency, self._tx_line_free)
        self._tx_line_free = start + len(data) * self.byte_time
        self._tx_queue.append((start, data))
        if self._tx_timer is None:
            self._flush_tx()

    def _flush_tx(self) -> None:
        self._tx_timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        byte_time = self.byte_time
        queue = self._tx_queue
        while queue:
            start, data = queue[0]
            if now < start + byte_time:
                break
            elapsed_bytes = (now - start) / byte_time + 1e-9 if byte_time else len(data)
            due = min(len(data), int(elapsed_bytes))
            self.port.write(data[:due])
            if due < len(data):
                queue[0] = (start + due * byte_time, data[due:])
                break
            queue.popleft()
        if queue:
            # Trickle out in steps of _MIN_TIMER_S, but never let the last byte of a write
            # land later than the wire would deliver it: frames complete on time.
            start, data = queue[0]
            end = start + len(data) * byte_time
            wake = max(start + byte_time, min(now + _MIN_TIMER_S, end))
            self._tx_timer = loop.call_at(wake, self._flush_tx)

    # -- host -> device ------------------------------------------------------------------

    def _from_host(self, data: bytes) -> None:
        self.counters.bytes_rx += len(data)
        data = self._corrupt(data, self._rx_cursor, parity=self.parity)
        latency = self.faults.latency_ms / 1000.0
        if not self.baud and not latency:
            if data:
                self._on_receive(data)
            return
        loop = asyncio.get_running_loop()
        arrive = max(loop.time(), self._rx_line_free) + len(data) * self.byte_time
        self._rx_line_free = arrive
        loop.call_at(arrive + latency, self._deliver, data)

    def _deliver(self, data: bytes) -> None:
        if data and self.port.connected:
            self._on_receive(data)

    # -- line faults ---------------------------------------------------------------------

    def _corrupt(self, data: bytes, cursor: _ErrorCursor, *, parity: bool = False) -> bytes:
        ber, drop = self.faults.ber, self.faults.drop_rate
        if ber <= 0 and drop <= 0:
            return data
        buf = bytearray(data)
        if ber > 0:
            bits = len(buf) * 8
            if math.isinf(cursor.to_bit_error):
                cursor.to_bit_error = self._gap(ber)
            pos = cursor.to_bit_error
            odd: set[int] = set()  # bytes flipped an odd number of times: parity sees them
            while pos < bits:
                index = int(pos)
                buf[index >> 3] ^= 1 << (index & 7)
                odd ^= {index >> 3}
                self.counters.bits_flipped += 1
                pos += 1 + self._gap(ber)
            cursor.to_bit_error = pos - bits
            if parity:
                self.parity_errors += len(odd)
        if drop > 0:
            if math.isinf(cursor.to_drop):
                cursor.to_drop = self._gap(drop)
            kept = bytearray()
            pos = cursor.to_drop
            last = 0
            while pos < len(buf):
                index = int(pos)
                kept += buf[last:index]
                last = index + 1
                self.counters.bytes_dropped += 1
                pos += 1 + self._gap(drop)
            kept += buf[last:]
            cursor.to_drop = pos - len(buf)
            buf = kept
        return bytes(buf)

    def _gap(self, probability: float) -> float:
        """Number of clean units before the next event, geometric with `probability`."""
        if probability >= 1.0:
            return 0.0
        return math.floor(math.log1p(-self._rng.random()) / math.log1p(-probability))

    def _sync_background_tasks(self) -> None:
        if self.faults.noise_rate_hz > 0 and self._noise_task is None:
            self._noise_task = asyncio.create_task(self._noise_loop())
        elif self.faults.noise_rate_hz <= 0 and self._noise_task is not None:
            self._noise_task.cancel()
            self._noise_task = None
        if self.faults.babble and self._babble_task is None:
            self._babble_task = asyncio.create_task(self._babble_loop())
        elif not self.faults.babble and self._babble_task is not None:
            self._babble_task.cancel()
            self._babble_task = None

    def _garbage(self, size: int) -> bytes:
        return self._rng.randbytes(size)

    async def _noise_loop(self) -> None:
        while True:
            await asyncio.sleep(self._rng.expovariate(self.faults.noise_rate_hz))
            if not self.port.connected:
                continue
            size = self.faults.noise_burst_bytes
            self.counters.noise_bursts += 1
            self._transmit(self._garbage(size))
            self._on_receive(self._garbage(size))

    async def _babble_loop(self) -> None:
        while True:
            if self.port.connected:
                self.counters.babble_bytes += _BABBLE_CHUNK
                self._transmit(self._garbage(_BABBLE_CHUNK))
            # Unpaced links still babble at a bounded rate (about 64 kB/s).
            pace = _BABBLE_CHUNK * self.byte_time if self.baud else 0.001
            await asyncio.sleep(pace)
