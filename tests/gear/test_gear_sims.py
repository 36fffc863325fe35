"""The simulators of real gear on their ptys, spoken to byte by byte: the 9-pin deck's answers,
NAKs and line timing, the widget's RDM exchanges and discovery, faults that apply to them."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from firmware_host.gear.enttec import DmxLight, WidgetConnection
from firmware_host.gear.settings import GearConfig
from firmware_host.link.stats import LinkStats
from hil.bench import Bench, DeviceSpec
from hil.gear.deck import SonyDeck
from hil.gear.widget import EnttecWidget
from protocols import enttec, rdm
from protocols import sony9pin as s9
from tests.hil.host import bench


class Raw:
    """The host end of a pty: write bytes, read whatever comes back within a deadline."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        asyncio.get_running_loop().add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        with contextlib.suppress(BlockingIOError):
            self.queue.put_nowait(os.read(self.fd, 4096))

    def write(self, data: bytes) -> None:
        os.write(self.fd, data)

    async def silent(self, for_s: float) -> bool:
        try:
            await asyncio.wait_for(self.queue.get(), for_s)
        except TimeoutError:
            return True
        return False

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.fd)
        os.close(self.fd)


@contextlib.asynccontextmanager
async def deck(tmp_path: Path) -> AsyncIterator[tuple[SonyDeck, Raw, Bench]]:
    async with bench(tmp_path, DeviceSpec(name="deck", kind="camera", protocol="sony9pin")) as b:
        device = b.devices["deck"]
        assert isinstance(device, SonyDeck)
        raw = Raw(device.path)
        try:
            yield device, raw, b
        finally:
            raw.close()


async def ask(raw: Raw, request: bytes) -> s9.Block:
    """Send one block; the deck's first answer block (its deframer reads the stream)."""
    raw.write(request)
    deframer = s9.Deframer()
    async with asyncio.timeout(2):
        while True:
            for item in deframer.feed(await raw.queue.get()):
                if isinstance(item, s9.Block):
                    return item


async def test_the_deck_answers_as_the_protocol_says(tmp_path: Path) -> None:
    async with deck(tmp_path) as (sim, raw, _):
        assert sim.link.byte_time == pytest.approx(11 / 38400)  # 8O1 at 38,400 baud
        answer = await ask(raw, s9.command(s9.Cmd.DEVICE_TYPE_REQUEST))
        assert answer.command is s9.Cmd.DEVICE_TYPE and len(answer.data) == 2
        status = s9.decode_status((await ask(raw, s9.status_sense())).data)
        assert status.stop and status.standby and not status.record
        assert (await ask(raw, s9.command(s9.Cmd.RECORD))).command is s9.Cmd.ACK
        assert sim.model.current is not None  # armed for the next frame boundary
        status = s9.decode_status((await ask(raw, s9.status_sense())).data)
        assert status.record and status.play and not status.stop
        time = await ask(raw, s9.command(s9.Cmd.CURRENT_TIME_SENSE, bytes([s9.TimeSense.VITC])))
        assert time.command is s9.Cmd.VITC_TIME_DATA
        frames, _ = sim.model.timecode()
        assert abs(s9.decode_time(time.data).to_frames(25) - frames) <= 1
        assert (await ask(raw, s9.command(s9.Cmd.STOP))).command is s9.Cmd.ACK
        assert sim.model.current is None and sim.model.state.name == "STANDBY"


async def test_the_deck_naks_a_bad_checksum_a_stale_partial_and_an_unknown_command(
    tmp_path: Path,
) -> None:
    async with deck(tmp_path) as (sim, raw, _):
        xor_checksum = bytes.fromhex("610c01") + bytes([0x61 ^ 0x0C ^ 0x01])
        nak = await ask(raw, xor_checksum)
        assert nak.command is s9.Cmd.NAK and nak.data[0] & s9.NakError.CHECKSUM
        assert await raw.silent(0.05)  # the rest waits as a partial block, then the line idles
        raw.write(s9.encode(2, 0x7F))
        deframer, naks = s9.Deframer(), []
        async with asyncio.timeout(2):
            while s9.NakError.UNDEFINED_COMMAND not in naks:
                naks += [
                    b.data[0]
                    for b in deframer.feed(await raw.queue.get())
                    if isinstance(b, s9.Block)
                ]
        assert naks[0] == s9.NakError.TIMEOUT  # the partial voided by the 10 ms gap rule
        assert sim.errors_answered >= 3


async def test_a_stuck_deck_answers_nothing_and_a_preset_sets_its_clock(tmp_path: Path) -> None:
    async with deck(tmp_path) as (sim, raw, b):
        preset = s9.encode_time(s9.TimeData(10, 0, 0, 0))
        assert (await ask(raw, s9.command(s9.Cmd.TIME_CODE_PRESET, preset))).command is s9.Cmd.ACK
        assert sim.model.timecode()[0] // 25 == 10 * 3600
        b.apply_fault("deck", "stuck", True)
        raw.write(s9.command(s9.Cmd.PLAY))
        assert await raw.silent(0.2)


FIXTURES = [
    DeviceSpec(
        name="a",
        kind="light",
        protocol="enttec-dmx",
        gear={"widget": "w", "rdm_uid": "7a70:00000001"},
    ),
    DeviceSpec(
        name="b",
        kind="light",
        protocol="enttec-dmx",
        gear={"widget": "w", "dmx_address": 5, "rdm_uid": "7a70:00000002"},
    ),
]


class WidgetReader:
    """The widget's messages in order, however the pty splits or joins them."""

    def __init__(self, raw: Raw) -> None:
        self.raw = raw
        self.deframer = enttec.Deframer()
        self.pending: list[enttec.Message] = []

    async def next(self) -> enttec.Message:
        async with asyncio.timeout(2):
            while not self.pending:
                items = self.deframer.feed(await self.raw.queue.get())
                self.pending += [i for i in items if isinstance(i, enttec.Message)]
        return self.pending.pop(0)


async def test_widget_rdm_get_discovery_and_collision(tmp_path: Path) -> None:
    async with bench(tmp_path, *FIXTURES) as b:
        widget = b.devices["w"]
        assert isinstance(widget, EnttecWidget)
        raw = Raw(widget.path)
        reader = WidgetReader(raw)
        try:
            get = rdm.Packet(
                rdm.parse_uid("7a70:00000002"),
                1,
                0,
                1,
                0,
                0,
                rdm.CommandClass.GET,
                rdm.Pid.DMX_START_ADDRESS,
            )
            raw.write(enttec.encode(enttec.Label.SEND_RDM, rdm.encode(get)))
            answer = await reader.next()
            assert answer.label == enttec.Label.RECEIVED_DMX and answer.data[0] == 0
            assert rdm.decode(answer.data[1:]).data == (5).to_bytes(2, "big")
            everyone = bytes(6) + b"\xff" * 6
            dub = rdm.Packet(
                rdm.BROADCAST,
                1,
                1,
                1,
                0,
                0,
                rdm.CommandClass.DISCOVERY,
                rdm.Pid.DISC_UNIQUE_BRANCH,
                everyone,
            )
            raw.write(enttec.encode(enttec.Label.SEND_RDM_DISCOVERY, rdm.encode(dub)))
            collided = await reader.next()
            with pytest.raises(Exception, match="checksum"):
                rdm.decode_dub_response(collided.data[1:])
            assert (await reader.next()).label == enttec.Label.RDM_TIMEOUT
            only_b = (rdm.parse_uid("7a70:00000002")).to_bytes(6, "big") * 2
            raw.write(
                enttec.encode(
                    enttec.Label.SEND_RDM_DISCOVERY, rdm.encode(dub._replace(data=only_b))
                )
            )
            found = await reader.next()
            assert rdm.format_uid(rdm.decode_dub_response(found.data[1:])) == "7a70:00000002"
            assert (await reader.next()).label == enttec.Label.RDM_TIMEOUT
        finally:
            raw.close()


async def test_odd_parity_catches_odd_flips_and_the_deck_naks_them(tmp_path: Path) -> None:
    """A byte with an odd number of flipped bits fails its parity; the deck drops the block
    and answers NAK with the parity bit, as its UART would have it."""
    async with deck(tmp_path) as (sim, _, _b):
        sim.link.faults.ber = 0.125
        received = sim.link._corrupt(bytes(256), sim.link._rx_cursor, parity=True)
        odd = sum(bin(byte).count("1") % 2 for byte in received)  # zeros in: flips show
        assert odd > 0 and sim.link.parity_errors == odd
        answers = sim.handle(s9.command(s9.Cmd.PLAY))
        assert answers == [s9.command(s9.Cmd.NAK, bytes([s9.NakError.PARITY]))]
        assert sim.link.parity_errors == 0 and sim.handle(s9.command(s9.Cmd.PLAY)) == [
            s9.command(s9.Cmd.ACK)
        ]


async def test_the_daemons_widget_discovers_the_rdm_fixtures_and_checks_their_patch(
    tmp_path: Path,
) -> None:
    """Discovery by binary search through collisions (E1.20), then DEVICE_INFO against the
    configuration: a wrong start address or personality is named, not silently driven."""
    specs = [
        *FIXTURES,
        DeviceSpec(
            name="c", kind="light", protocol="enttec-dmx", gear={"widget": "w", "dmx_address": 9}
        ),
    ]
    async with bench(tmp_path, *specs) as b:
        widget = WidgetConnection(str(b.devices["w"].path), LinkStats(), timeout_s=1.0)
        await widget.connect(None)
        try:
            assert widget.discovered == [
                rdm.parse_uid("7a70:00000001"),
                rdm.parse_uid("7a70:00000002"),
            ]
            right = DmxLight("b", widget, GearConfig(dmx_address=5, rdm_uid="7a70:00000002"))
            assert await right.check_rdm() == []
            wrong = DmxLight(
                "b",
                widget,
                GearConfig(dmx_address=6, rdm_uid="7a70:00000002", personality="led-panel-4ch"),
            )
            problems = await wrong.check_rdm()
            assert "starts at DMX slot 5, configured 6" in problems[0]
            assert "reads 2 slots" in problems[1]
            absent = DmxLight("x", widget, GearConfig(rdm_uid="7a70:00000099"))
            assert "did not find 7a70:00000099" in (await absent.check_rdm())[0]
            assert await DmxLight("c", widget, GearConfig(dmx_address=9)).check_rdm() == []
        finally:
            widget.close()
