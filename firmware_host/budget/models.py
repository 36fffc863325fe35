"""What the daemon assumes each kind of device draws, by state and setting.

These are the daemon's own models, configured per device and defaulting to the figures in
../shared/reference (documented in cupola.example.toml). They are not the simulators' physics:
on the bench the simulators play the part of real hardware, whose true draw the daemon only
learns from the PDU. Where a PDU channel feeds a device, its measurement replaces the model
for everything already running; the model still predicts what a change will cost.
"""

from __future__ import annotations

import msgspec

from protocols.messages.camera import CameraState

INTENSITY_FULL = 1000
UHD_25_PIXEL_RATE = 3840 * 2160 * 25.0


class LightModel(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    max_w: float = 100.0  # at full output (reference: 30-100 W panels)
    standby_w: float = 3.0  # on at 0 % (reference: 2-5 W)
    off_w: float = 0.5  # driver off, controller on
    linear_share: float = 0.5  # draw = standby + (max - standby)(a x + (1 - a) x^2)
    inrush_w: float = 40.0  # switching the driver on
    inrush_s: float = 0.3

    def draw(self, on: bool, permille: int) -> float:
        if not on:
            return self.off_w
        x = max(0.0, min(1.0, permille / INTENSITY_FULL))
        a = self.linear_share
        return self.standby_w + (self.max_w - self.standby_w) * (a * x + (1.0 - a) * x * x)

    def permille_within(self, watts: float) -> int:
        """The highest output whose draw fits in `watts` (0 if not even standby fits)."""
        lo, hi = 0, INTENSITY_FULL
        if self.draw(True, 0) > watts:
            return 0
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.draw(True, mid) <= watts:
                lo = mid
            else:
                hi = mid - 1
        return lo


class CameraModel(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    sleep_w: float = 1.0
    standby_w: float = 10.0  # reference: 8-12 W in standby
    armed_w: float = 12.0
    sensor_w: float = 8.0  # extra while recording UHD at 25 fps, scaled by pixel rate
    encoder_w_per_gbps: float = 8.0  # recording at 700 Mbit/s UHD 25: 23.6 W (reference 20-30)
    inrush_w: float = 30.0
    inrush_s: float = 1.0

    def draw(self, state: CameraState, recording: RecordingLoad) -> float:
        if state is CameraState.OFF:
            return self.sleep_w
        if state is CameraState.ARMED:
            return self.armed_w
        if state is CameraState.RECORDING:
            return (
                self.standby_w
                + self.sensor_w * recording.pixel_rate / UHD_25_PIXEL_RATE
                + self.encoder_w_per_gbps * recording.bitrate_kbps / 1e6
            )
        return self.standby_w


class PduModel(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    own_w: float = 2.0


class RecordingLoad(msgspec.Struct, frozen=True):
    """What a camera's recording settings cost: pixels per second and bitrate."""

    pixel_rate: float = UHD_25_PIXEL_RATE
    bitrate_kbps: int = 700_000
