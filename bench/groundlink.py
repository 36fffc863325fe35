"""The ground link at the daemon's own publish window, in one run, rounds interleaved.

- sliding: a backlog in the SQLite outbox drained by the real StreamPublisher to a local
  mosquitto (QoS 1, each message deleted on its PUBACK) at the window the daemon uses
  (`[mqtt] publish_window`, read from MqttConfig so this follows the product);
- batch: the same outbox drained as before this round, re-implemented here as the
  baseline: take a batch of `window` messages, publish them back to back, gather every
  PUBACK, delete the batch (a fully synced transaction, as the outbox then did), repeat
  (the whole window idles while the slowest PUBACK is out);
- bare: the same number of QoS 1 publishes of the same size from a plain aiomqtt loop with the
  same sliding window and no outbox: what MQTT costs through aiomqtt's publish (the target's
  reference);
- paho: the same again handed to paho directly, the window kept by counting PUBACKs in
  paho's on_publish (as the product now does): what MQTT costs with no outbox at all, the
  floor;
- latency: events queued at 200/s through the running stream (no backlog behind them),
  timed from queueing to a ground subscriber's receipt (p50, p99).

Every publishing client is built with the daemon's own session options
(`firmware_host.groundlink.mqtt.SESSION_OPTIONS`: no in-flight cap of paho's, TCP_NODELAY, a
persistent session), every outbox with the daemon's limits (`OutboxConfig`), and every rate is
timed from the first publish to the last PUBACK, before the client disconnects. The counting
subscribers are the ground's: plain clients, each with its own connection. paho decodes PUBACKs
as the daemon has it (`firmware_host.groundlink.paho_puback`), for every client of the run
alike: the pairings compare the drains, not two versions of the library.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiomqtt
import msgspec

from bench.machine import describe
from firmware_host.config import MqttConfig, OutboxConfig
from firmware_host.groundlink import paho_puback
from firmware_host.groundlink.mqtt import SESSION_OPTIONS
from firmware_host.groundlink.outbox import ROUTINE, Outbox
from firmware_host.groundlink.pacing import Pacer
from firmware_host.groundlink.sender import PahoSender
from firmware_host.groundlink.stream import StreamPublisher
from hil.broker import Mosquitto
from protocols import ground

NODE = "bench-node"
WINDOW = MqttConfig().publish_window  # the daemon's default
SAMPLE = {"ts": 0.0, "devices": {f"dev{i}": {"online": True, "state": "standby",
          "temperature_cdeg": 3712, "draw_mw": 10_000} for i in range(4)}}  # fmt: skip
BODY_BYTES = len(msgspec.json.encode(SAMPLE))


def _client(port: int, name: str, window: int) -> aiomqtt.Client:
    """A publisher built as firmware_host/groundlink/mqtt.py builds the daemon's client; a bare
    aiomqtt loop keeps a window of calls pending, which aiomqtt would otherwise warn of as a
    backlog."""
    client = aiomqtt.Client("127.0.0.1", port, identifier=name, **SESSION_OPTIONS)
    client.pending_calls_threshold = 4 * window
    return client


def _subscriber(port: int, name: str) -> aiomqtt.Client:
    """A ground-side client counting what arrives: its own connection, a clean session."""
    return aiomqtt.Client("127.0.0.1", port, identifier=name)


def _outbox(path: Path) -> Outbox:
    """An outbox with the daemon's limits."""
    return Outbox.configured(path, OutboxConfig())


async def _received(port: int, topic: str, expected: int, ready: asyncio.Event) -> float:
    """Subscribe, then return when `expected` messages arrived (monotonic time)."""
    got = 0
    async with _subscriber(port, "counter") as sub:
        await sub.subscribe(topic, qos=1)
        ready.set()
        async for _ in sub.messages:
            got += 1
            if got >= expected:
                break
    return time.monotonic()


Drain = Callable[[aiomqtt.Client, Outbox, int], Awaitable[None]]


async def sliding(client: aiomqtt.Client, outbox: Outbox, window: int) -> None:
    """The product: the daemon's StreamPublisher, until the outbox is empty."""
    publisher = StreamPublisher(NODE, outbox, Pacer(), window=window)
    reachable = asyncio.Event()
    reachable.set()
    drain = asyncio.create_task(publisher.drain(PahoSender.of(client), lambda: 0.0, reachable))
    try:
        if not await publisher.flush(600.0):
            raise RuntimeError("the stream did not drain in 10 minutes")
    finally:
        drain.cancel()


async def batch_at_a_time(client: aiomqtt.Client, outbox: Outbox, window: int) -> None:
    """The former drain, as the baseline: a whole batch out, every PUBACK in, then the next."""
    publisher = StreamPublisher(NODE, outbox, Pacer(), window=window)  # for its payloads only
    while batch := outbox.next_batch(window):
        await asyncio.gather(
            *(
                client.publish(ground.topic(NODE, row.kind), publisher.payload(row, 0.0), qos=1)
                for row in batch
            )
        )
        with outbox.db:  # the former acknowledgement: deleted in a fully synced transaction
            outbox.db.execute("BEGIN IMMEDIATE")
            outbox.db.executemany("DELETE FROM outbox WHERE id = ?", [(r.id,) for r in batch])


async def drain_rate(port: int, workdir: Path, count: int, drain: Drain, name: str) -> float:
    """Messages per second from the first publish until the outbox is empty."""
    outbox = _outbox(workdir / f"{name}.db")
    outbox.append_many(ground.TELEMETRY, [SAMPLE] * count, ROUTINE)
    ready = asyncio.Event()
    counter = asyncio.create_task(_received(port, ground.topic(NODE, "#"), count, ready))
    await ready.wait()
    async with _client(port, name, WINDOW) as client:
        start = time.monotonic()
        await drain(client, outbox, WINDOW)
        done = time.monotonic()
    assert outbox.backlog()["messages"] == 0
    outbox.close()
    await asyncio.wait_for(counter, 60)
    return count / (done - start)


async def bare_rate(port: int, count: int, window: int) -> float:
    """A plain aiomqtt loop, `window` publishes in flight, the next as soon as one is acked."""
    payload = b"x" * (BODY_BYTES + 120)  # the envelope around the body
    ready = asyncio.Event()
    counter = asyncio.create_task(_received(port, "bare/#", count, ready))
    await ready.wait()
    slots = asyncio.Semaphore(window)

    async def one(client: aiomqtt.Client) -> None:
        try:
            await client.publish("bare/t", payload, qos=1)
        finally:
            slots.release()

    async with _client(port, "bare", window) as client:
        start = time.monotonic()
        async with asyncio.TaskGroup() as group:
            for _ in range(count):
                await slots.acquire()
                group.create_task(one(client))
        done = time.monotonic()
    await asyncio.wait_for(counter, 60)
    return count / (done - start)


async def paho_rate(port: int, count: int, window: int) -> float:
    """Paho's own publish, `window` in flight, the next as soon as one is acked."""
    payload = b"x" * (BODY_BYTES + 120)
    ready = asyncio.Event()
    counter = asyncio.create_task(_received(port, "paho/#", count, ready))
    await ready.wait()
    room = asyncio.Event()
    in_flight = 0

    def on_ack(mid: int, refused: bool) -> None:
        nonlocal in_flight
        in_flight -= 1
        room.set()

    async with _client(port, "paho", window) as client:
        sender = PahoSender.of(client)
        sender.listen(on_ack)
        start = time.monotonic()
        for _ in range(count):
            while in_flight >= window:
                room.clear()
                await room.wait()
            sender.publish("paho/t", payload)
            in_flight += 1
        while in_flight:
            room.clear()
            await room.wait()
        done = time.monotonic()
    await asyncio.wait_for(counter, 60)
    return count / (done - start)


async def latency(port: int, workdir: Path, rate_hz: float, seconds: float) -> dict[str, float]:
    outbox = _outbox(workdir / "latency.db")
    publisher = StreamPublisher(NODE, outbox, Pacer(), window=WINDOW)
    reachable = asyncio.Event()
    reachable.set()
    delays: list[float] = []
    expected = int(rate_hz * seconds)

    async def watch(ready: asyncio.Event) -> None:
        async with _subscriber(port, "ground") as sub:
            await sub.subscribe(ground.topic(NODE, ground.EVENT), qos=1)
            ready.set()
            async for message in sub.messages:
                assert isinstance(message.payload, bytes)
                sent = msgspec.json.decode(message.payload)["body"]["ts"]
                delays.append(time.time() - sent)
                if len(delays) >= expected:
                    return

    ready = asyncio.Event()
    watcher = asyncio.create_task(watch(ready))
    await ready.wait()
    async with _client(port, "node-latency", WINDOW) as client:
        drain = asyncio.create_task(publisher.drain(PahoSender.of(client), lambda: 0.0, reachable))
        for _ in range(expected):
            outbox.append(ground.EVENT, {"name": "bench", "severity": "info", "ts": time.time()})
            publisher.notify()
            await asyncio.sleep(1 / rate_hz)
        await asyncio.wait_for(watcher, 30)
        drain.cancel()
    outbox.close()
    delays.sort()
    return {
        "events": len(delays),
        "p50_ms": 1000 * statistics.median(delays),
        "p99_ms": 1000 * delays[int(0.99 * (len(delays) - 1))],
    }


async def measure(count: int, rounds: int, latency_s: float) -> dict[str, Any]:
    rates: dict[str, list[float]] = {"sliding": [], "batch": [], "bare": [], "paho": []}
    with tempfile.TemporaryDirectory(prefix="cupola-bench-gl-") as tmp:
        workdir = Path(tmp)
        with Mosquitto(workdir / "broker") as broker:
            for n in range(rounds):  # interleaved, so a noisy moment hits all three alike
                rates["sliding"].append(
                    await drain_rate(broker.port, workdir, count, sliding, f"sliding{n}")
                )
                rates["batch"].append(
                    await drain_rate(broker.port, workdir, count, batch_at_a_time, f"batch{n}")
                )
                rates["bare"].append(await bare_rate(broker.port, count, WINDOW))
                rates["paho"].append(await paho_rate(broker.port, count, WINDOW))
            lat = await latency(broker.port, workdir, 200.0, latency_s)
    return {"count": count, "rounds": rounds, "rates": rates, "latency": lat}


def report(result: dict[str, Any]) -> str:
    rates, lat = result["rates"], result["latency"]
    median = {name: statistics.median(values) for name, values in rates.items()}
    per_round = "; ".join(
        f"{s / b:.2f}x" for s, b in zip(rates["sliding"], rates["batch"], strict=True)
    )
    return "\n".join([
        f"machine: {describe()}",
        f"setting: publish window {WINDOW} (the daemon's default, MqttConfig.publish_window); "
        f"{result['rounds']} interleaved rounds of {result['count']:,} messages of "
        f"{BODY_BYTES} B body; medians",
        "",
        "| drain (outbox -> QoS 1 -> PUBACK -> deleted) | msg/s | vs bare aiomqtt |",
        "| --- | ---: | ---: |",
        f"| StreamPublisher, sliding window {WINDOW} (the product) | {median['sliding']:,.0f} | "
        f"{median['sliding'] / median['bare']:.2f}x |",
        f"| former batch-at-a-time drain, window {WINDOW} (baseline) | {median['batch']:,.0f} | "
        f"{median['batch'] / median['bare']:.2f}x |",
        f"| bare aiomqtt loop, sliding window {WINDOW}, no outbox | {median['bare']:,.0f} | "
        "1.00x |",
        f"| bare paho loop, sliding window {WINDOW}, no outbox (the floor) | "
        f"{median['paho']:,.0f} | {median['paho'] / median['bare']:.2f}x |",
        "",
        f"sliding / batch-at-a-time: {median['sliding'] / median['batch']:.2f}x "
        f"(per round: {per_round}); sliding / bare paho: "
        f"{median['sliding'] / median['paho']:.2f}x",
        "",
        "| end-to-end latency, event queued -> ground subscriber | p50 | p99 | events |",
        "| --- | ---: | ---: | ---: |",
        f"| 200 events/s through the stream, no backlog | {lat['p50_ms']:.2f} ms | "
        f"{lat['p99_ms']:.2f} ms | {lat['events']} |",
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few seconds: 5,000 x 1 round")
    parser.add_argument("--count", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    count, rounds, latency_s = (5_000, 1, 2.0) if args.quick else (args.count, args.rounds, 10.0)
    paho_puback.install()  # as the daemon runs paho, every side of every pairing
    print("Ground link: outbox drain at the daemon's window, and end-to-end latency")
    print(report(asyncio.run(measure(count, rounds, latency_s))))


if __name__ == "__main__":
    main()
