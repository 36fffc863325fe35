"""One call from a device path to a working request session over it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from firmware_host.link.errors import LinkDown
from firmware_host.link.session import RequestSession
from firmware_host.link.stats import LinkStats
from firmware_host.link.transport import SerialPort, Tap
from protocols.framing import Frame


@dataclass
class LinkConnection:
    port: SerialPort
    session: RequestSession

    def close(self) -> None:
        self.port.close()


async def open_link(
    device: str,
    path: str,
    baud: int,
    stats: LinkStats,
    *,
    timeout_s: float,
    retries: int,
    on_event: Callable[[Frame], None] | None = None,
    wall: Callable[[], float] = time.time,
    tap: Tap | None = None,
) -> LinkConnection:
    """Open `path` as a serial port and put a request session on it."""
    port: SerialPort | None = None

    def write(data: bytes) -> None:
        if port is None:
            raise LinkDown(f"{device}: port is not open")
        port.write(data)

    session = RequestSession(
        device, write, stats, timeout_s=timeout_s, retries=retries, on_event=on_event, wall=wall
    )
    port = await SerialPort.open(
        path, baud, stats.frames, session.on_frame, session.link_lost, tap=tap
    )
    return LinkConnection(port, session)
