"""Command round trip: Cupola's client against pymodbus's and against the wire, in one run.

Cupola: the daemon's own link layer (`open_link`, a request session) sends PING to lights
served by one `cupola sim` process on pseudo-terminals: one light unpaced (the pty moves bytes
as fast as the kernel does), one behind an emulated cable at 115,200 baud and one at 921,600
(8N1 both ways; the simulator runs on 1 ns of timer slack, hil/timerslack.py, and spins
through pacing waits under 0.3 ms as a UART is punctual, hil/precise_selector.py). The peer:
pymodbus's async RTU client reading two holding registers from pymodbus's own server
(`bench.modbus_peer`, its own process on the master end of a pty, as our simulator is): the
same shape of exchange, 8 bytes out and 9 back against Cupola's 16 and 16. Both servers run
on the last core and the clients on the others (`bench.machine.devices_apart`): a device is
other hardware, and a server sharing the client's core costs the client CPU of its own.

The clients are measured in rounds, one request in flight. Within a round the three unpaced
clients take 18 turns each, 50 calls a turn, their order going through every permutation
(each round starting from the next one); then the two paced ones the same way, 10 calls a
turn (a paced turn mostly waits, leaving the core idle). This host's noise moves within a
tenth of a second: in rounds of one client at a time (a tenth of a second each) the
per-round ratio of the two clients' CPU spread 0.26-0.96x around its median. Reported per
client: wall time per round trip (p50, and p99, which includes the first calls after each
change of client) and the client's own CPU per round trip (this thread's CPU time over the
client's turns in a round divided by its calls there, the median over rounds; the servers
run in other processes and are not counted). Paced links are judged against the wire floor
plus the unpaced p50 of the same run (the floor the client and the simulator can reach
together).

A fifth client in the same rounds is the event loop's own floor: a PING's bytes written to a
fourth light and its reply awaited through a reader callback and a future, with no protocol
(nothing encoded, checked, decoded or counted). Every asyncio client pays at least that, so
the figures above it say how much each client's own code costs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient
from serial import Serial

from bench.machine import describe, devices_apart
from firmware_host.link.connection import LinkConnection, open_link
from firmware_host.link.stats import LinkStats
from hil.link import BITS_PER_BYTE
from hil.processes import ProcessGroup
from hil.timerslack import timer_slack_ns
from protocols.catalogue import HELLO, PING, encode_reply, encode_request
from protocols.messages.common import HelloRequest, Ping
from tools.simulator_process import start_simulator

WARMUP = 200
PACED = (115200, 921600)
SPIN_BELOW_US = 300  # the simulator spins through shorter waits: it wakes on time, as a UART does
UNPACED = ("unpaced", "floor")  # Cupola's link, and the event loop's floor
FLOOR_NAME = "the event loop alone (PING's bytes)"
ROUND_TIMEOUT_S = 60.0  # a round takes about a second; one that hangs fails the run instead
Call = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class Shape:
    """How a round is cut: each client's turns, and the calls in each turn."""

    turns: int  # a multiple of 6: every order of the three unpaced clients equally often
    unpaced: int
    paced: int


DEFAULT_SHAPE = Shape(turns=18, unpaced=50, paced=10)
QUICK_SHAPE = Shape(turns=6, unpaced=50, paced=10)


@dataclass
class Client:
    name: str
    link: str
    call: Call
    floor_s: float | None = None
    wall: list[float] = field(default_factory=list)
    cpu_per_call: list[float] = field(default_factory=list)  # one figure per round


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def one_round(clients: list[Client], shape: Shape, start: int) -> None:
    """One round: the unpaced clients take their turns, then the paced ones (a paced block
    mostly waits, leaving the core idle)."""
    async with asyncio.timeout(ROUND_TIMEOUT_S):  # once a round: nothing added per call
        await _turns([c for c in clients if not c.floor_s], shape.turns, shape.unpaced, start)
        await _turns([c for c in clients if c.floor_s], shape.turns, shape.paced, start)


async def _turns(clients: list[Client], turns: int, block: int, start: int) -> None:
    """`turns` blocks of `block` calls per client. The order of the clients goes through
    every permutation, from the `start`th: no client always leads, always follows the same
    one, or always inherits the same one's leftovers (its garbage, its pending callbacks)."""
    orders = list(itertools.permutations(range(len(clients))))
    spent = [0.0] * len(clients)
    for turn in range(turns):
        for index in orders[(start + turn) % len(orders)]:
            client = clients[index]
            wall = client.wall
            cpu_started = time.thread_time()
            for _ in range(block):
                started = time.perf_counter()
                await client.call()
                wall.append(time.perf_counter() - started)
            spent[index] += time.thread_time() - cpu_started
    for index, client in enumerate(clients):
        client.cpu_per_call.append(spent[index] / (block * turns))


def wire_floor_s(baud: int) -> float:
    ping = Ping(token=0)
    size = len(encode_request(PING, ping, 1)) + len(encode_reply(PING, ping, 1))
    return size * BITS_PER_BYTE / baud


def _bench_file() -> str:
    lines = [f"[bench]\nspin_below_us = {SPIN_BELOW_US}\n"]
    lines += [f'[[device]]\nname = "{name}"\nkind = "light"\n' for name in UNPACED]
    lines += [f'[[device]]\nname = "b{baud}"\nkind = "light"\nbaud = {baud}\n' for baud in PACED]
    return "\n".join(lines)


class LoopFloor:
    """The least an asyncio client does for a round trip: write a request's bytes and await a
    future that a reader callback completes once the reply's bytes are in. No encoding, no
    checks, no decoding, no statistics: what is left is the event loop's and the kernel's."""

    def __init__(self, path: str) -> None:
        self._port = Serial(path, 115200, exclusive=True)  # pyserial opens it non-blocking
        self._fd = self._port.fileno()
        self._loop = asyncio.get_running_loop()
        self._request = encode_request(PING, Ping(token=0), 1)
        self._reply_size = len(encode_reply(PING, Ping(token=0), 1))
        self._received = 0
        self._waiting: asyncio.Future[None] | None = None
        self._loop.add_reader(self._fd, self._on_readable)

    def _on_readable(self) -> None:
        # Every byte is a PING reply: the light gets no HELLO, so it opens no session and
        # sends no events. A port gone away reads as an error or as nothing.
        try:
            read = len(os.read(self._fd, 4096))
        except OSError:
            read = 0
        waiting = self._waiting
        if not read:
            self._loop.remove_reader(self._fd)
            if waiting is not None:
                waiting.set_exception(ConnectionError("the floor's light went away"))
            return
        self._received += read
        if self._received >= self._reply_size and waiting is not None:
            self._received -= self._reply_size
            waiting.set_result(None)
            self._waiting = None

    async def call(self) -> None:
        self._waiting = self._loop.create_future()
        os.write(self._fd, self._request)
        await self._waiting

    def close(self) -> None:
        self._loop.remove_reader(self._fd)
        self._port.close()


@contextlib.asynccontextmanager
async def cupola_links(
    group: ProcessGroup,
) -> AsyncIterator[tuple[dict[str, LinkConnection], LoopFloor, int | None, int]]:
    """({device: link} for three lights, the loop's floor on a fourth, the simulator's timer
    slack in ns, its pid)."""
    workdir = Path(tempfile.mkdtemp(prefix="cupola-rtt-"))
    links: dict[str, LinkConnection] = {}
    floor: LoopFloor | None = None
    try:
        (workdir / "bench.toml").write_text(_bench_file())
        devices = len(UNPACED) + len(PACED)
        sim, entries = start_simulator(group, workdir / "bench.toml", workdir / "ports", devices)
        for entry in entries:
            name = entry["device"]
            if name == "floor":
                floor = LoopFloor(entry["path"])
                continue
            baud = int(name[1:]) if name != "unpaced" else 115200
            link = await open_link(name, entry["path"], baud, LinkStats(), timeout_s=1.0, retries=0)
            links[name] = link
            await link.session.call(
                HELLO, HelloRequest(proto_min=1, proto_max=1, host_timeout_ms=0)
            )
        assert floor is not None
        yield links, floor, timer_slack_ns(sim.pid), sim.pid
    finally:
        for link in links.values():
            link.close()
        if floor is not None:
            floor.close()
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.asynccontextmanager
async def pymodbus_client(
    group: ProcessGroup,
) -> AsyncIterator[tuple[AsyncModbusSerialClient, int]]:
    """pymodbus's client on its own server, and that server's pid."""
    peer = group.start(
        "modbus-peer", [sys.executable, "-m", "bench.modbus_peer"], stdout=subprocess.PIPE
    )
    assert peer.stdout is not None
    path = peer.stdout.readline().decode().strip()
    client = AsyncModbusSerialClient(
        port=path, framer=FramerType.RTU, baudrate=115200, timeout=1, retries=0
    )
    if not await client.connect():
        raise RuntimeError(f"pymodbus could not open {path}")
    try:
        yield client, peer.pid
    finally:
        client.close()


def _ping(link: LinkConnection) -> Call:
    tokens = iter(range(1 << 30))
    return lambda: link.session.call(PING, Ping(token=next(tokens)))


def _clients(
    links: dict[str, LinkConnection], floor: LoopFloor, peer: AsyncModbusSerialClient
) -> list[Client]:
    return [
        Client("Cupola (PING)", "pty, unpaced", _ping(links["unpaced"])),
        Client(
            "pymodbus RTU (read 2 registers)",
            "pty, unpaced",
            lambda: peer.read_holding_registers(0, count=2, device_id=1),
        ),
        *(
            Client("Cupola (PING)", f"{baud} baud", _ping(links[f"b{baud}"]), wire_floor_s(baud))
            for baud in PACED
        ),
        Client(FLOOR_NAME, "pty, unpaced", floor.call),
    ]


async def _interleaved(clients: list[Client], rounds: int, shape: Shape) -> None:
    for client in clients:  # warm-up, not counted
        for _ in range(WARMUP):
            await client.call()
        client.wall.clear()
    for index in range(rounds):
        await one_round(clients, shape, start=index)


async def measure(rounds: int, shape: Shape = DEFAULT_SHAPE) -> dict[str, Any]:
    group = ProcessGroup()
    try:
        async with (
            cupola_links(group) as (links, floor, slack, simulator),
            pymodbus_client(group) as (peer, server),
        ):
            clients = _clients(links, floor, peer)
            with devices_apart(simulator, server) as placement:
                await _interleaved(clients, rounds, shape)
    finally:
        group.stop_all()
    return {
        "clients": clients,
        "slack_ns": slack,
        "rounds": rounds,
        "shape": shape,
        "placement": placement,
    }


def report(result: dict[str, Any]) -> str:
    clients: list[Client] = result["clients"]
    cupola, peer = clients[0], clients[1]
    (loop_alone,) = (c for c in clients if c.name == FLOOR_NAME)
    unpaced_p50 = statistics.median(cupola.wall)
    shape: Shape = result["shape"]
    lines = [
        f"machine: {describe()}",
        f"setting: one request in flight; {result['rounds']} rounds, each of {shape.turns} "
        f"turns per client ({shape.unpaced} calls unpaced, {shape.paced} paced), in every "
        "order in turn; simulator "
        f"timer slack {result['slack_ns']} ns, waits under {SPIN_BELOW_US} us spun; "
        f"{result['placement']}",
        "",
        "| client | link | wall p50 | wall p99 | client CPU per round trip | wire floor "
        "| p50 / (floor + unpaced p50) | round trips |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in clients:
        p50 = statistics.median(c.wall)
        floor = f"{1000 * c.floor_s:.3f} ms" if c.floor_s else "-"
        ratio = f"{p50 / (c.floor_s + unpaced_p50):.3f}x" if c.floor_s else "-"
        lines.append(
            f"| {c.name} | {c.link} | {1000 * p50:.3f} ms | {1000 * _p(c.wall, 0.99):.3f} ms | "
            f"{1e6 * statistics.median(c.cpu_per_call):.1f} us | {floor} | {ratio} | "
            f"{len(c.wall)} |"
        )
    cpu_ratio = statistics.median(cupola.cpu_per_call) / statistics.median(peer.cpu_per_call)
    per_round = ", ".join(
        f"{a / b:.2f}x" for a, b in zip(cupola.cpu_per_call, peer.cpu_per_call, strict=True)
    )
    wall_ratio = unpaced_p50 / statistics.median(peer.wall)
    lines += [
        "",
        f"Cupola's client CPU per round trip is {cpu_ratio:.2f}x pymodbus's (per round: "
        f"{per_round}); wall p50 {wall_ratio:.2f}x.",
        _above_the_floor(cupola, peer, loop_alone),
    ]
    return "\n".join(lines)


def _above_the_floor(cupola: Client, peer: Client, floor: Client) -> str:
    """The loop's share of pymodbus's CPU, and each client's own code against the other's,
    round by round (the rounds are interleaved, so a round's three figures share a moment)."""
    shares, own = [], []
    rounds = zip(cupola.cpu_per_call, peer.cpu_per_call, floor.cpu_per_call, strict=True)
    for mine, theirs, loop in rounds:
        shares.append(loop / theirs)
        if theirs > loop:  # a round where the floor cost as much as pymodbus says nothing
            own.append((mine - loop) / (theirs - loop))
    line = (
        f"The event loop alone costs {1e6 * statistics.median(floor.cpu_per_call):.1f} us per "
        f"round trip, {statistics.median(shares):.2f}x pymodbus's client (per round "
        f"{min(shares):.2f}-{max(shares):.2f}x)."
    )
    if not own:
        return line
    return (
        f"{line} Above it, Cupola's own code costs {statistics.median(own):.2f}x pymodbus's "
        f"own (per round {min(own):.2f}-{max(own):.2f}x, {len(own)} rounds)."
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 6 turns")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args(argv)
    rounds, shape = (2, QUICK_SHAPE) if args.quick else (args.rounds, DEFAULT_SHAPE)
    print("Command round trip over a pseudo-terminal")
    print(report(asyncio.run(measure(rounds, shape))))


if __name__ == "__main__":
    main()
