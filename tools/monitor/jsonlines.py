"""`cupola monitor --json`: one JSON line per message, for scripts; reconnects on its own."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import ssl
import sys
import time
from pathlib import Path

import aiomqtt
import msgspec

from firmware_host.config import BrokerAddress
from protocols import ground


def broker_client(
    url: str, ca_file: Path | None, identifier: str | None = None, *, clean: bool = True
) -> aiomqtt.Client:
    address = BrokerAddress.parse(url)
    tls_context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    return aiomqtt.Client(
        address.host,
        address.port,
        username=address.username,
        password=address.password,
        identifier=identifier,
        tls_context=tls_context if address.tls else None,
        clean_session=clean,
        timeout=10,
    )


def render(topic: str, payload: bytes) -> dict[str, object]:
    line: dict[str, object] = {"topic": topic, "received": round(time.time(), 6)}
    try:
        line["message"] = msgspec.to_builtins(ground.decode(payload))
    except (msgspec.DecodeError, msgspec.ValidationError):
        try:
            line["raw"] = json.loads(payload)
        except ValueError:
            line["raw_hex"] = payload.hex()
    return line


async def watch(url: str, node: str, ca_file: Path | None, stop: asyncio.Event) -> None:
    backoff = 0.2
    while not stop.is_set():
        try:
            async with broker_client(url, ca_file) as client:
                await client.subscribe(f"{ground.ROOT}/{node}/#", qos=1)
                _status("connected", url)
                backoff = 0.2
                async for message in client.messages:
                    payload = message.payload
                    if isinstance(payload, bytes | bytearray):
                        sys.stdout.write(json.dumps(render(str(message.topic), bytes(payload))))
                        sys.stdout.write("\n")
                        sys.stdout.flush()
        except aiomqtt.MqttError as exc:
            _status("disconnected", str(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), backoff)
        backoff = min(backoff * 2, 5.0)


def _status(state: str, detail: str) -> None:
    sys.stdout.write(json.dumps({"monitor": state, "detail": detail, "at": time.time()}) + "\n")
    sys.stdout.flush()


def run_json_monitor(url: str, node: str, ca_file: Path | None = None) -> int:
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        task = asyncio.create_task(watch(url, node, ca_file, stop))
        await stop.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())
    return 0
