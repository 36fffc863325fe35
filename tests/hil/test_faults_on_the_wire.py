"""Every fault mode, as the daemon's side of the cable sees it when it is switched on."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from pathlib import Path

import pytest

from firmware_host.link.errors import LinkDown, LinkTimeout
from hil.bench import DeviceSpec
from hil.control import ControlClient, ControlServer
from hil.link import EmulatedLink
from protocols.catalogue import (
    LIGHT_STATUS,
    PDU_CHANNEL_SET,
    PDU_STATUS,
    PING,
    RECORD_START,
    NackReceived,
)
from protocols.messages.camera import RecordStart
from protocols.messages.common import Empty, NackCode, Ping
from protocols.messages.pdu import ChannelSwitch
from protocols.timecode import START_NOW
from tests.harness import until
from tests.hil.host import bench, connected, one_device

pytestmark = pytest.mark.long

PING_BODY = Ping(token=0xFEEDBEEF)


async def _read_raw(path: Path, count: int, timeout: float) -> tuple[float, float]:
    """(first byte, last byte) arrival times of `count` raw bytes read from `path`."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    loop = asyncio.get_running_loop()
    got = 0
    first = last = 0.0
    done = asyncio.Event()

    def readable() -> None:
        nonlocal got, first, last
        data = os.read(fd, 65536)
        now = time.monotonic()
        if data and not got:
            first = now
        got += len(data)
        last = now
        if got >= count:
            done.set()

    loop.add_reader(fd, readable)
    try:
        await asyncio.wait_for(done.wait(), timeout)
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    return first, last


def assert_line_rate(took_s: float, size: int, baud: int) -> None:
    """Never faster than the wire (10 bits a byte), and late by no more than a busy machine
    delays one timer: the cable paces against a schedule, so lateness never adds up byte by
    byte (10,000 bytes each 0.1 ms late would be a whole second). A tight upper bound on
    wall time failed by chance under `make flake`."""
    wire_s = size * 10 / baud
    assert wire_s * 0.98 <= took_s < wire_s + 0.3, f"{took_s:.3f} s for {wire_s:.3f} s of wire"


async def test_baud_pacing_10_kilobytes_at_115200_takes_0_87_s(tmp_path: Path) -> None:
    link = EmulatedLink(tmp_path / "dev", lambda _: None, baud=115200)
    link.plug()
    try:
        reader = asyncio.create_task(_read_raw(link.path, 10_000, 5))
        await asyncio.sleep(0.05)
        start = time.monotonic()
        link.send(bytes(range(256)) * 39 + bytes(16))
        _, last = await reader
    finally:
        link.close()
    assert_line_rate(last - start, 10_000, 115_200)


async def test_bytes_from_the_host_reach_the_device_at_line_rate(tmp_path: Path) -> None:
    arrivals: list[tuple[float, int]] = []
    complete = asyncio.Event()

    def arrive(data: bytes) -> None:
        arrivals.append((time.monotonic(), len(data)))
        if sum(n for _, n in arrivals) >= 10_000:
            complete.set()

    link = EmulatedLink(tmp_path / "dev", arrive, baud=115200)
    link.plug()
    try:
        fd = os.open(link.path, os.O_RDWR | os.O_NOCTTY)
        start = time.monotonic()
        os.write(fd, bytes(10_000))
        await asyncio.wait_for(complete.wait(), 5)
        os.close(fd)
    finally:
        link.close()
    assert_line_rate(arrivals[-1][0] - start, 10_000, 115_200)


async def test_latency_delays_both_directions(tmp_path: Path) -> None:
    """60 ms each way: no round trip can be quicker than 120 ms (one direction alone would
    allow 60). Only that lower bound is asserted: how much slower a busy machine makes the
    round trip is a benchmark's business, and an upper bound here failed by chance."""
    async with bench(tmp_path, DeviceSpec(name="key", kind="light")) as b:
        light = b.devices["key"]
        async with connected(light.path) as host:
            await host.hello()
            b.apply_fault("key", "latency_ms", 60)
            start = time.monotonic()
            await host.call(PING, PING_BODY, timeout_s=1.0)
            delayed = time.monotonic() - start
    assert delayed >= 0.12


async def test_bit_errors_are_caught_by_the_crc_and_counted(tmp_path: Path) -> None:
    async with bench(tmp_path, DeviceSpec(name="key", kind="light", seed=5)) as b:
        light = b.devices["key"]
        async with connected(light.path, timeout_s=0.05, retries=0) as host:
            await host.hello()
            b.apply_fault("key", "ber", 2e-3)
            answered = failed = 0
            for token in range(300):
                try:
                    reply = await host.call(PING, Ping(token=token))
                    assert reply.token == token  # never a corrupted answer accepted
                    answered += 1
                except LinkTimeout:
                    failed += 1
                except NackReceived:
                    failed += 1  # the request arrived corrupted: MALFORMED/UNKNOWN_TYPE
            counters = light.link.counters
    bits = 8 * (counters.bytes_tx + counters.bytes_rx)
    expected = 2e-3 * bits
    assert abs(counters.bits_flipped - expected) < 5 * math.sqrt(expected)
    assert host.stats.frames.crc_errors > 0 and failed > 0
    assert answered > 100  # most frames get through a 2e-3 line


async def test_dropped_bytes_break_frames_that_are_then_dropped(tmp_path: Path) -> None:
    async with bench(tmp_path, DeviceSpec(name="key", kind="light", seed=9)) as b:
        light = b.devices["key"]
        async with connected(light.path, timeout_s=0.05) as host:
            await host.hello()
            b.apply_fault("key", "drop_rate", 0.01)
            for _ in range(200):
                with contextlib.suppress(LinkTimeout, NackReceived):
                    await host.call(PING, PING_BODY)
    assert light.link.counters.bytes_dropped > 0
    assert host.stats.frames.rejected > 0 and host.stats.timeouts > 0


async def test_noise_bursts_cost_frames_not_the_link(tmp_path: Path) -> None:
    async with bench(tmp_path, DeviceSpec(name="key", kind="light", seed=3)) as b:
        light = b.devices["key"]
        async with connected(light.path, timeout_s=0.1, retries=3) as host:
            await host.hello()
            b.apply_fault("key", "noise_rate_hz", 50)
            for _ in range(100):
                await host.call(PING, PING_BODY)
                await asyncio.sleep(0.005)
    assert light.link.counters.noise_bursts > 5
    assert host.stats.frames.rejected > 0 and host.stats.frames.resyncs > 0


async def test_a_babbling_device_floods_the_line_with_garbage(tmp_path: Path) -> None:
    async with one_device(tmp_path, DeviceSpec(name="key", kind="light", baud=115200)) as (b, host):
        b.apply_fault("key", "babble", True)
        # At 115200 baud the line carries 11,520 bytes/s: nearly all of it garbage. However
        # busy the machine, the host sees it arrive and rejects it (bounded wait, no sleep).
        await until(lambda: host.stats.frames.bytes_in > 9_000, "9,000 bytes of babble")
        b.apply_fault("key", "babble", False)
        assert host.stats.frames.rejected > 20 and host.stats.frames.frames < 5


async def test_unplugging_makes_the_port_vanish_and_replugging_brings_it_back(
    tmp_path: Path,
) -> None:
    async with bench(tmp_path, DeviceSpec(name="key", kind="light")) as b:
        light = b.devices["key"]
        old_pts = light.link.port.device_path
        async with connected(light.path) as host:
            await host.hello()
            b.apply_fault("key", "unplug")
            await asyncio.wait_for(host.lost.wait(), 2)
            assert not light.path.exists()
            with pytest.raises(LinkDown):
                await host.call(PING, PING_BODY)
        b.apply_fault("key", "plug")
        assert light.path.exists() and old_pts is not None
        async with connected(light.path) as host:
            await host.hello()
            assert await host.call(PING, PING_BODY) == PING_BODY


async def test_a_stuck_device_answers_nothing(tmp_path: Path) -> None:
    async with one_device(
        tmp_path, DeviceSpec(name="key", kind="light"), timeout_s=0.1, retries=2
    ) as (b, host):
        await host.hello()
        b.apply_fault("key", "stuck", True)
        events_before = len(host.events)
        with pytest.raises(LinkTimeout):
            await host.call(PING, PING_BODY)
        await asyncio.sleep(1.2)
        assert len(host.events) == events_before  # not even heartbeats
        b.apply_fault("key", "stuck", False)
        assert await host.call(PING, PING_BODY) == PING_BODY


async def test_a_slow_device_answers_late(tmp_path: Path) -> None:
    async with one_device(tmp_path, DeviceSpec(name="key", kind="light"), timeout_s=1.0) as (
        b,
        host,
    ):
        await host.hello()
        b.apply_fault("key", "slow_ms", 250)
        start = time.monotonic()
        await host.call(PING, PING_BODY)
        assert time.monotonic() - start >= 0.25


async def test_a_reset_forgets_the_session_and_restarts_sequence_numbers(tmp_path: Path) -> None:
    async with one_device(tmp_path, DeviceSpec(name="key", kind="light")) as (b, host):
        first = await host.hello()
        await asyncio.sleep(2.2)  # a few heartbeats
        assert host.events[-1].seq >= 1
        b.apply_fault("key", "reset")
        with pytest.raises(NackReceived) as refusal:
            await host.call(LIGHT_STATUS, Empty())
        assert refusal.value.code is NackCode.NO_SESSION
        second = await host.hello()
        assert second.boot_id != first.boot_id
        count = len(host.events)
        await asyncio.sleep(1.2)
        assert host.events[count].seq == 0


async def test_a_reset_mid_command_loses_the_reply_and_the_retry_gets_no_session(
    tmp_path: Path,
) -> None:
    async with bench(tmp_path, DeviceSpec(name="cam", kind="camera")) as b:
        camera = b.devices["cam"]
        async with connected(camera.path, timeout_s=0.4, retries=1) as host:
            await host.hello()
            b.apply_fault("cam", "slow_ms", 300)
            call = asyncio.create_task(
                host.call(
                    RECORD_START, RecordStart(scene="1", take=1, roll="A", start_timecode=START_NOW)
                )
            )
            await asyncio.sleep(0.1)  # the camera is working on it
            b.apply_fault("cam", "reset")
            with pytest.raises(NackReceived) as refusal:
                await call
            assert refusal.value.code is NackCode.NO_SESSION
            assert host.stats.retries == 1


async def test_a_retransmitted_command_acts_once(tmp_path: Path) -> None:
    async with bench(tmp_path, DeviceSpec(name="cam", kind="camera")) as b:
        camera = b.devices["cam"]
        async with connected(camera.path, timeout_s=0.05, retries=3) as host:
            await host.hello()
            b.apply_fault("cam", "slow_ms", 120)  # every first attempt times out
            started = await host.call(
                RECORD_START, RecordStart(scene="5", take=2, roll="A", start_timecode=START_NOW)
            )
    assert host.stats.retries >= 2
    assert camera.duplicates_answered >= 1
    assert [c.clip_id for c in camera.model.clips] == [started.clip_id]  # one clip, not three


async def test_switching_a_pdu_channel_off_powers_the_device_down(tmp_path: Path) -> None:
    async with (
        bench(
            tmp_path,
            DeviceSpec(name="pdu", kind="pdu"),
            DeviceSpec(name="key", kind="light", pdu_channel=2),
        ) as b,
        connected(b.devices["pdu"].path) as pdu,
        connected(b.devices["key"].path, timeout_s=0.1) as light,
    ):
        await pdu.hello()
        first = await light.hello()
        before = await pdu.call(PDU_STATUS, Empty())
        assert before.channels[2].power_mw > 0
        await pdu.call(PDU_CHANNEL_SET, ChannelSwitch(channel=2, on=False))
        with pytest.raises(LinkTimeout):
            await light.call(PING, PING_BODY)
        after = await pdu.call(PDU_STATUS, Empty())
        assert after.channels[2].power_mw == 0 and not after.channels[2].on
        await pdu.call(PDU_CHANNEL_SET, ChannelSwitch(channel=2, on=True))
        assert (await light.hello()).boot_id != first.boot_id  # a fresh boot


async def test_faults_are_logged_with_timestamps_and_switchable_over_the_socket(
    tmp_path: Path,
) -> None:
    async with bench(tmp_path, DeviceSpec(name="key", kind="light")) as b:
        server = ControlServer(b, tmp_path / "control.sock")
        await server.start()
        try:
            client = ControlClient(tmp_path / "control.sock")
            before = time.time()
            record = await asyncio.to_thread(client.fault, "key", "ber", 1e-5)
            described = await asyncio.to_thread(client.describe, "key")
            log = await asyncio.to_thread(client.call, "faults")
            with pytest.raises(Exception, match="unknown fault"):
                await asyncio.to_thread(client.fault, "key", "gremlins", 1)
        finally:
            await server.stop()
    assert record["fault"] == "ber" and before <= record["wall"] <= time.time()
    assert described["link"]["bits_flipped"] >= 0
    assert [entry["fault"] for entry in log] == ["ber"]
