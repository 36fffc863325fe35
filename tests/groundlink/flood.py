"""An attacker's flood and a flight controller's urgent command, from their own process.

`python -m tests.groundlink.flood URL NODE FORGED KEY NAME ARGS` publishes every line of the
file FORGED on the node's command topic as fast as one client can (QoS 0: nothing waits for
the broker), then NAME with ARGS signed by the key file KEY as it is sent, on the
topic `cupola cmd` uses for that key's role (a flight controller's: the priority topic), and
prints one JSON line: how long the flood took to publish, and how long after its publish the
command's result arrived (the first copy: the node's local result or the ground stream). Its
own process, so neither the flood nor the timing shares an event loop (or a GIL) with the
test's ground view.
"""

from __future__ import annotations

import asyncio
import json
import queue
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
import paho.mqtt.client as mqtt

from firmware_host.config import BrokerAddress
from protocols import ground
from protocols.ground import KeyFile
from tools.ground_client import sign_command

ANSWER_WITHIN_S = 60.0


def flood_then(
    url: str, node: str, forged: list[bytes], key: KeyFile, *, name: str, args: dict[str, Any]
) -> dict[str, Any]:
    address = BrokerAddress.parse(url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    if address.username:
        client.username_pw_set(address.username, address.password)
    results: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
    subscribed: queue.Queue[bool] = queue.Queue()

    def on_message(_client: Any, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        arrived = time.monotonic()
        body = json.loads(message.payload).get("body", {})
        results.put((arrived, body))

    client.on_message = on_message
    client.on_subscribe = lambda *_: subscribed.put(True)
    client.connect(address.host, address.port)
    client.loop_start()
    try:
        client.subscribe([(ground.topic(node, ground.RESULT), 1),
                          (ground.topic(node, ground.LOCAL_RESULT), 1)])  # fmt: skip
        subscribed.get(timeout=10)
        topic = ground.topic(node, ground.COMMAND)
        started = time.monotonic()
        sent = [client.publish(topic, payload, qos=0) for payload in forged]
        for info in sent:
            info.wait_for_publish(timeout=60)
        command = sign_command(key, name, args)
        published = time.monotonic()
        urgent = ground.command_topic(node, key.role)  # as `cupola cmd` sends it
        client.publish(urgent, json.dumps(command).encode(), qos=1)
        deadline = published + ANSWER_WITHIN_S
        while True:
            arrived, body = results.get(timeout=max(deadline - time.monotonic(), 0))
            if body.get("id") == command["id"]:
                return {"flood_s": published - started, "answer_s": arrived - published,
                        "result": body}  # fmt: skip
    finally:
        client.loop_stop()
        client.disconnect()


async def flood_from_process(
    workdir: Path,
    url: str,
    node: str,
    forged: list[bytes],
    key: KeyFile,
    *,
    name: str,
    args: dict[str, Any],
) -> dict[str, Any]:
    """Run `flood_then` in its own process (files in `workdir`); its JSON outcome."""
    flood_file = workdir / "forged.jsonl"
    flood_file.write_bytes(b"\n".join(forged))
    key_file = workdir / "flood.key"
    key_file.write_bytes(msgspec.json.encode(key))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.groundlink.flood", url, node, str(flood_file),
        str(key_file), name, json.dumps(args), stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, out
    return dict(json.loads(out))


def main() -> None:
    url, node, forged_file, key_file, name, args = sys.argv[1:]
    forged = Path(forged_file).read_bytes().splitlines()
    key = msgspec.json.decode(Path(key_file).read_bytes(), type=KeyFile)
    outcome = flood_then(url, node, forged, key, name=name, args=json.loads(args))
    print(json.dumps(outcome), flush=True)


if __name__ == "__main__":
    main()
