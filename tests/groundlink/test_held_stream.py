"""A red alarm while the stream is held: the crew sees it at once, the ground knows it is blind.

End to end against the simulator, mosquitto and the daemon: the housekeeping class is
windowed and the next contact window opens a few seconds after the daemon starts, so the
daemon starts held. A camera goes red at once (its red limit is under the cabin's air).
"""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path

import aiomqtt
import pytest

from hil.broker import Mosquitto
from protocols import ground
from tests.harness import Credentials, DaemonProcess, SimProcess, daemon_config, until
from tools.monitor import rows
from tools.monitor.view import NodeView

pytestmark = pytest.mark.long

NODE = "test-node"
BENCH = """
[[device]]
name = "cam-a"
kind = "camera"
"""
RED = "limit.camera.temperature.red"
HOLD_S = 8.0  # the window opens this long after the configuration is written


def contact_config(opens_at: float) -> str:
    start = time.strftime("%H:%M:%S", time.gmtime(opens_at))
    return (
        "[limits]\ncamera_temperature_c = { yellow = 10.0, red = 12.0 }\n"
        "[telemetry]\ninterval_s = 0.5\n"
        f'[data]\n[[data.contact]]\nstart = "{start}"\nminutes = 5\n'
        "[data.housekeeping]\nwindowed = true\n"
    )


async def test_a_red_alarm_in_a_held_stream_reaches_the_crew_at_once_and_the_ground_sees_held(
    tmp_path: Path, broker: Mosquitto
) -> None:
    opens_at = float(math.ceil(time.time() + HOLD_S))  # the schedule is to the second
    sim = SimProcess(tmp_path, BENCH).start()
    credentials = Credentials(tmp_path)
    config = daemon_config(
        sim.paths, sim.kinds, broker.url(), tmp_path / "state", keyring=credentials.keyring,
        extra=contact_config(opens_at),
    )  # fmt: skip
    view = NodeView(NODE)
    view.set_connection(True, "connected", time.time())
    crew: list[tuple[float, dict[str, object]]] = []  # (received, event) on local/
    ground_states: list[tuple[float, str]] = []  # the monitor's status after each message
    stream: list[ground.Envelope] = []
    to_ground: list[tuple[float, str, int]] = []  # (received, leaf, bytes) on ground topics
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        await client.subscribe(f"{ground.ROOT}/{NODE}/#", qos=1)
        DaemonProcess(tmp_path, config).start()

        async def listen() -> None:
            async for message in client.messages:
                now = time.time()
                payload = bytes(message.payload)  # type: ignore[arg-type]
                parsed = ground.parse_topic(str(message.topic))
                assert parsed is not None
                if parsed[1] == ground.LOCAL:
                    if parsed[2] == ("event",):
                        crew.append((now, ground.decode(payload).body))
                    continue
                to_ground.append((now, parsed[1], len(payload)))
                view.absorb(str(message.topic), payload, now)
                ground_states.append((now, view.status(now).state))
                if parsed[1] in ground.STREAM_KINDS:
                    stream.append(ground.decode(payload))

        listener = asyncio.create_task(listen())
        try:
            await until(lambda: any(e["name"] == RED for _, e in crew), "a red alarm on local/")
            received, red = next((at, e) for at, e in crew if e["name"] == RED)
            assert time.time() < opens_at, "the alarm came after the hold: the test is too slow"
            assert received - float(red["ts"]) < 1.0  # type: ignore[arg-type]
            # the crew's copy does not wait for the ground's notice (nor the other way round)
            await until(
                lambda: view.status(time.time()).state == "held",
                "the ground sees the stream held", max(0.0, opens_at - 1.0 - time.time()),
            )  # fmt: skip
            assert "HELD until" in rows.node_line(view, time.time())[0].text
            assert stream == [], "nothing may flow to the ground while the stream is held"
            await until(
                lambda: any(m.kind == ground.EVENT and m.body["name"] == RED for m in stream),
                "the backlog with the alarm reaches the ground", 20 + HOLD_S,
            )  # fmt: skip
        finally:
            listener.cancel()
    before_window = [state for at, state in ground_states if at < opens_at - 1.0]
    assert before_window and "online" not in before_window, before_window
    # At rate zero the ground got the hold notice and nothing else: no birth, no states.
    held = [(leaf, size) for at, leaf, size in to_ground if at < opens_at - 1.0]
    assert {leaf for leaf, _ in held} == {ground.LINK}, held
    assert sum(size for _, size in held) < 2048
    seqs = [m.seq for m in stream]
    assert seqs == list(range(1, len(seqs) + 1)), "the backlog arrives in order, complete"
    red_on_ground = next(m for m in stream if m.kind == ground.EVENT and m.body["name"] == RED)
    assert red_on_ground.historical
    assert view.status(time.time()).state == "online"
