"""The ground link's throughput and latency, beside a bare aiomqtt publish loop, in one run.

- drain: a 100,000-message backlog in the SQLite outbox, published QoS 1 by the real
  StreamPublisher to a local mosquitto, each message deleted on its PUBACK;
- bare: the same number of QoS 1 publishes of the same size from a plain aiomqtt loop with
  the same in-flight window: what MQTT costs without the outbox;
- latency: events queued at a steady rate while the stream runs, timed from queueing to a
  ground subscriber's receipt (p50, p99).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiomqtt
import msgspec

from bench.machine import describe
from firmware_host.groundlink.outbox import ROUTINE, Outbox
from firmware_host.groundlink.pacing import Pacer
from firmware_host.groundlink.stream import StreamPublisher
from hil.broker import Mosquitto
from protocols import ground

NODE = "bench-node"
SAMPLE = {"ts": 0.0, "devices": {f"dev{i}": {"online": True, "state": "standby",
          "temperature_cdeg": 3712, "draw_mw": 10_000} for i in range(4)}}  # fmt: skip


def _client(port: int, name: str) -> aiomqtt.Client:
    client = aiomqtt.Client(
        "127.0.0.1", port, identifier=name, max_inflight_messages=100, timeout=30
    )
    client.pending_calls_threshold = 2000  # pipelined windows of 500 are the point here
    return client


async def _count(port: int, topic: str, expected: int, ready: asyncio.Event) -> float:
    """Subscribe, then return when `expected` messages arrived (monotonic time)."""
    got = 0
    async with _client(port, "counter") as sub:
        await sub.subscribe(topic, qos=1)
        ready.set()
        async for _ in sub.messages:
            got += 1
            if got >= expected:
                return time.monotonic()
    return time.monotonic()


async def drain_rate(port: int, workdir: Path, count: int) -> dict[str, Any]:
    outbox = Outbox(workdir / "outbox.db", max_bytes=10**10)
    outbox.append_many(ground.TELEMETRY, [SAMPLE] * count, ROUTINE)
    publisher = StreamPublisher(NODE, outbox, Pacer(), window=500)
    reachable = asyncio.Event()
    reachable.set()
    ready = asyncio.Event()
    counter = asyncio.create_task(_count(port, ground.topic(NODE, "#"), count, ready))
    await ready.wait()
    async with _client(port, "node") as client:
        start = time.monotonic()
        drain = asyncio.create_task(publisher.drain(client, lambda: 0.0, reachable))
        received_at = await counter
        while outbox.backlog()["messages"]:  # noqa: ASYNC110 - the outbox has no signal for this
            await asyncio.sleep(0.01)
        acked_at = time.monotonic()
        drain.cancel()
    outbox.close()
    size = len(msgspec.json.encode(SAMPLE))
    return {
        "messages": count,
        "body_bytes": size,
        "acked_per_s": count / (acked_at - start),
        "received_per_s": count / (received_at - start),
    }


async def bare_rate(port: int, count: int, size: int) -> float:
    payload = b"x" * (size + 120)  # the envelope around the body
    ready = asyncio.Event()
    counter = asyncio.create_task(_count(port, "bare/#", count, ready))
    await ready.wait()
    async with _client(port, "bare") as client:
        start = time.monotonic()
        for first in range(0, count, 500):
            await asyncio.gather(
                *(client.publish("bare/t", payload, qos=1) for _ in range(min(500, count - first)))
            )
        acked_at = time.monotonic()
    await counter
    return count / (acked_at - start)


async def latency(port: int, workdir: Path, rate_hz: float, seconds: float) -> dict[str, float]:
    outbox = Outbox(workdir / "latency.db", max_bytes=10**9)
    publisher = StreamPublisher(NODE, outbox, Pacer())
    reachable = asyncio.Event()
    reachable.set()
    delays: list[float] = []
    expected = int(rate_hz * seconds)

    async def watch(ready: asyncio.Event) -> None:
        async with _client(port, "ground") as sub:
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
    async with _client(port, "node-latency") as client:
        drain = asyncio.create_task(publisher.drain(client, lambda: 0.0, reachable))
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


async def measure(count: int = 100_000) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cupola-bench-gl-") as tmp:
        workdir = Path(tmp)
        with Mosquitto(workdir / "broker") as broker:
            drain = await drain_rate(broker.port, workdir, count)
            bare = await bare_rate(broker.port, count, drain["body_bytes"])
            lat = await latency(broker.port, workdir, 200.0, 10.0)
    return {"drain": drain, "bare_per_s": bare, "latency": lat}


def report(result: dict[str, Any]) -> str:
    drain, lat = result["drain"], result["latency"]
    ratio = drain["acked_per_s"] / result["bare_per_s"]
    return "\n".join([
        f"machine: {describe()}",
        "",
        "| measurement | figure |",
        "| --- | ---: |",
        f"| backlog drained (outbox -> QoS 1 -> PUBACK -> deleted) | "
        f"{drain['messages']:,} messages of {drain['body_bytes']} B body |",
        f"| drain rate, acknowledged and deleted | {drain['acked_per_s']:,.0f} msg/s |",
        f"| drain rate, received by a ground subscriber | {drain['received_per_s']:,.0f} msg/s |",
        f"| bare aiomqtt QoS 1 publish loop, same window and size | "
        f"{result['bare_per_s']:,.0f} msg/s |",
        f"| outbox path / bare loop | {ratio:.2f}x |",
        f"| end-to-end latency, event queued -> ground subscriber, p50 | "
        f"{lat['p50_ms']:.2f} ms |",
        f"| end-to-end latency, p99 ({lat['events']} events at 200/s) | {lat['p99_ms']:.2f} ms |",
    ])  # fmt: skip


def main() -> None:
    print("Ground link: outbox drain and end-to-end latency, beside a bare aiomqtt loop")
    print(report(asyncio.run(measure())))


if __name__ == "__main__":
    main()
