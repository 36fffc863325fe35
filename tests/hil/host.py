"""The daemon's side of a simulated cable, built from the daemon's own link layer."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypeVar

from firmware_host.link.connection import LinkConnection, open_link
from firmware_host.link.stats import LinkStats
from hil.bench import Bench, BenchSpec, DeviceSpec, check_bench
from protocols.catalogue import HELLO, Command
from protocols.framing import Frame
from protocols.messages.common import Hello, HelloRequest

HELLO_TIMEOUT_S = 5.0

Rep = TypeVar("Rep")


class HostLink:
    """A request session on a device path, plus what arrived unasked."""

    def __init__(self, link: LinkConnection, stats: LinkStats, events: list[Frame]) -> None:
        self.link = link
        self.session = link.session
        self.stats = stats
        self.events = events
        self.lost = link.session.closed

    @classmethod
    async def open(
        cls, path: Path | str, *, timeout_s: float = 0.3, retries: int = 0, baud: int = 115200
    ) -> HostLink:
        stats = LinkStats()
        events: list[Frame] = []
        link = await open_link(
            "dut", str(path), baud, stats, timeout_s=timeout_s, retries=retries,
            on_event=events.append,
        )  # fmt: skip
        return cls(link, stats, events)

    async def call(self, command: Command[Any, Rep], body: Any, **kwargs: Any) -> Rep:
        return await self.session.call(command, body, **kwargs)

    async def hello(self) -> Hello:
        """The session's opening, given time whatever the link's own timeout: tests that set
        a short one for the faults they inject must not fail on a busy machine before them."""
        request = HelloRequest(proto_min=1, proto_max=1, host_timeout_ms=0)
        return await self.call(HELLO, request, timeout_s=HELLO_TIMEOUT_S)

    def close(self) -> None:
        self.link.close()


@contextlib.asynccontextmanager
async def bench(tmp_path: Path, *devices: DeviceSpec, speed: float = 1.0) -> AsyncIterator[Bench]:
    spec = check_bench(BenchSpec(devices=list(devices)))
    spec.bench.speed = speed
    instance = Bench(spec, tmp_path / "ports")
    await instance.start()
    try:
        yield instance
    finally:
        await instance.stop()


@contextlib.asynccontextmanager
async def connected(path: Path | str, **kwargs: Any) -> AsyncIterator[HostLink]:
    link = await HostLink.open(path, **kwargs)
    try:
        yield link
    finally:
        link.close()


@contextlib.asynccontextmanager
async def one_device(
    tmp_path: Path, spec: DeviceSpec, **link: Any
) -> AsyncIterator[tuple[Bench, HostLink]]:
    """A bench of one device, and the daemon's side of its cable."""
    async with (
        bench(tmp_path, spec) as instance,
        connected(instance.devices[spec.name].path, **link) as host,
    ):
        yield instance, host
