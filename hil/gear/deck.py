"""A Sony 9-pin recorder (a HyperDeck-like deck) over the camera model's physics.

The deck answers on the line as the public protocol descriptions say: ACK, NAK with error
bits, device type, time data, status data, within the 9 ms reply deadline (it answers as
soon as the block has crossed the wire). Behind it, the same CameraModel as a native camera:
draw, heat, media filling at the bitrate, a drifting clock. Recording starts at the frame
boundary after the REC block arrives, as a deck does when told to record "now". What the
protocol cannot say (media fill, draw, temperature) the deck does not say either.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from hil.gear.base import GearDevice
from hil.models.base import Refusal
from hil.models.camera import CameraModel
from protocols import sony9pin as s9
from protocols.messages.camera import CameraState
from protocols.messages.common import DeviceClass
from protocols.timecode import START_NOW

DEVICE_TYPE = bytes.fromhex("f1e0")  # HyperDeck Studio Mini, 625-line (25 fps) family
NEAR_END_S = 180.0  # HyperDeck: near end of media under 3 minutes
END_S = 30.0  # and end of media under 30 seconds


class SonyDeck(GearDevice):
    device_class = DeviceClass.CAMERA
    protocol = "sony9pin"
    model: CameraModel

    def __init__(self, name: str, model: CameraModel, path: Path, **kwargs: Any) -> None:
        kwargs.setdefault("baud", s9.BAUD)
        super().__init__(name, model, path, bits_per_byte=s9.BITS_PER_BYTE, parity=True, **kwargs)
        self.deframer = s9.Deframer()
        self.playing = False
        self.rec_refusals = 0  # REC acknowledged but not carried out (no media, too hot)

    def on_reboot(self) -> None:
        self.deframer.reset()
        self.playing = False

    def handle(self, data: bytes) -> list[bytes]:
        if self.link.parity_errors:  # the UART flagged a byte: the block is lost, say why
            self.link.parity_errors = 0
            self.deframer.reset()
            self.errors_answered += 1
            return [s9.command(s9.Cmd.NAK, bytes([s9.NakError.PARITY]))]
        replies = []
        for item in self.deframer.feed(data, asyncio.get_running_loop().time()):
            if isinstance(item, s9.Rejected):
                error = {"checksum": s9.NakError.CHECKSUM, "gap": s9.NakError.TIMEOUT}.get(
                    item.reason, s9.NakError.UNDEFINED_COMMAND
                )
                self.errors_answered += 1
                replies.append(s9.command(s9.Cmd.NAK, bytes([error])))
                continue
            self.requests_handled += 1
            replies.append(self._execute(item))
        return replies

    def _execute(self, block: s9.Block) -> bytes:
        m = self.model
        m.advance()
        cmd = block.command
        ack = s9.command(s9.Cmd.ACK)
        if cmd is s9.Cmd.DEVICE_TYPE_REQUEST:
            return s9.command(s9.Cmd.DEVICE_TYPE, DEVICE_TYPE)
        if cmd in (s9.Cmd.LOCAL_DISABLE, s9.Cmd.LOCAL_ENABLE):
            return ack
        if cmd is s9.Cmd.RECORD:
            self._try(lambda: m.record_start("", 0, "", START_NOW))
            return ack
        if cmd is s9.Cmd.STOP:
            self.playing = False
            if m.state in (CameraState.ARMED, CameraState.RECORDING):
                self._try(m.record_stop)
            return ack
        if cmd is s9.Cmd.PLAY:
            self.playing = m.state is CameraState.STANDBY
            return ack
        if cmd in (s9.Cmd.STANDBY_ON, s9.Cmd.STANDBY_OFF):
            self._try(lambda: m.set_awake(cmd is s9.Cmd.STANDBY_ON))
            return ack
        if cmd is s9.Cmd.TIME_CODE_PRESET and len(block.data) == 4:
            time = s9.decode_time(block.data)
            m.preset_timecode(time.to_frames(m.rate.timebase), m.rate)
            return ack
        if cmd is s9.Cmd.CURRENT_TIME_SENSE and len(block.data) == 1:
            frames, _ = m.timecode()
            reply = (
                s9.Cmd.VITC_TIME_DATA
                if block.data[0] == s9.TimeSense.VITC
                else (s9.Cmd.LTC_TIME_DATA)
            )
            return s9.command(
                reply, s9.encode_time(s9.TimeData.from_frames(frames, m.rate.timebase))
            )
        if cmd is s9.Cmd.STATUS_SENSE and len(block.data) == 1:
            first, count = block.data[0] >> 4, block.data[0] & 0x0F
            status = s9.encode_status(self.status())[first : first + count]
            return s9.encode(s9.Group.SENSE_RETURN, 0x20, status)
        self.errors_answered += 1
        return s9.command(s9.Cmd.NAK, bytes([s9.NakError.UNDEFINED_COMMAND]))

    def status(self) -> s9.Status:
        m = self.model
        rolling = m.state in (CameraState.ARMED, CameraState.RECORDING)
        seconds_left = m.media_free / m.byte_rate if m.byte_rate else float("inf")
        return s9.Status(
            play=rolling or self.playing,
            record=rolling,
            stop=not (rolling or self.playing),
            standby=m.state is not CameraState.OFF,
            hard_error=m.state is CameraState.ERROR,
            near_eot=seconds_left < NEAR_END_S,
            eot=seconds_left < END_S,
        )

    def _try(self, action: Any) -> None:
        try:
            action()
        except Refusal:
            self.rec_refusals += 1
