"""`camera.settings`: what a director of photography changes between takes.

Only the settings named change; the rest stay as the camera reports them. Values are held to
what the wire and the camera can carry before anything is sent; a rolling camera is refused
up front (as the camera itself would refuse); the frame rate must stay the project's, because
timecode and synchronised takes depend on it. Changing codec, resolution or frame rate without
a bitrate takes the codec's nominal bitrate at that pixel rate (../shared/reference/gear.md),
so the power and media budgets see the new cost. The look (a LUT or monitoring look's name) is
the daemon's to keep, not the camera's. The settings in force and the look are recorded with
every take in the shot log.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec

from firmware_host.commands.dispatcher import CommandFailed, CommandRejected, CommandSpec
from firmware_host.devices.agent import DeviceAgent, DeviceUnavailable
from firmware_host.link.errors import LinkError
from protocols.catalogue import NackReceived
from protocols.messages.camera import CameraSettings, CameraState, Codec
from protocols.messages.common import NackCode
from protocols.records import to_jsonable
from protocols.timecode import FrameRate

CodecName = Literal["prores_422_hq", "prores_422", "prores_422_lt", "h265", "raw"]

# Nominal recording bitrates at UHD 25 fps (reference figures: ProRes 422 HQ 700-900 Mbit/s,
# ProRes 422 500-600; H.265 and RAW by public camera specifications), scaled by pixel rate.
NOMINAL_MBPS_UHD25 = {
    Codec.PRORES_422_HQ: 800.0,
    Codec.PRORES_422: 550.0,
    Codec.PRORES_422_LT: 380.0,
    Codec.H265: 150.0,
    Codec.RAW: 1800.0,
}
UHD25_PIXEL_RATE = 3840 * 2160 * 25
_RESOLUTION = re.compile(r"^(\d{3,4})x(\d{3,4})$")
_SHUTTER_SPEED = re.compile(r"^1/(\d+(?:\.\d+)?)$")
MIN_BITRATE_KBPS, MAX_BITRATE_KBPS = 1_000, 3_000_000


class CameraSettingsArgs(msgspec.Struct, forbid_unknown_fields=True):
    camera: str
    iso: Annotated[int, msgspec.Meta(ge=50, le=25600)] | None = None
    shutter_angle: Annotated[float, msgspec.Meta(ge=1, le=360)] | None = None  # degrees
    shutter_speed: str | None = None  # "1/50": converted to an angle at the frame rate
    white_balance_k: Annotated[int, msgspec.Meta(ge=2000, le=10000)] | None = None
    frame_rate: float | None = None
    codec: CodecName | None = None
    resolution: str | None = None  # "3840x2160"
    bitrate_mbps: Annotated[float, msgspec.Meta(ge=1, le=3000)] | None = None
    look: Annotated[str, msgspec.Meta(max_length=32, pattern=r"^[\w .+-]*$")] | None = None


def nominal_bitrate_kbps(codec: Codec, width: int, height: int, rate: FrameRate) -> int:
    share = width * height * rate.fps / UHD25_PIXEL_RATE
    kbps = round(NOMINAL_MBPS_UHD25[codec] * share * 1000)
    return max(MIN_BITRATE_KBPS, min(MAX_BITRATE_KBPS, kbps))


def merged(current: CameraSettings, args: CameraSettingsArgs, project: FrameRate) -> CameraSettings:
    """The settings `args` ask for on top of `current`; CommandRejected says what cannot be."""
    if args.shutter_angle is not None and args.shutter_speed is not None:
        raise CommandRejected("give shutter_angle or shutter_speed, not both")
    rate = current.rate
    if args.frame_rate is not None:
        try:
            rate = FrameRate.from_fps(args.frame_rate)
        except ValueError as exc:
            raise CommandRejected(f"frame_rate: {exc}") from exc
        if rate is not project:
            raise CommandRejected(
                f"frame_rate {args.frame_rate:g}: the project runs at {project.fps:g} fps, and "
                "timecode and synchronised takes need every camera at it"
            )
    width, height = current.width, current.height
    if args.resolution is not None:
        match = _RESOLUTION.match(args.resolution)
        if not match:
            raise CommandRejected(f"resolution {args.resolution!r}: write it as 3840x2160")
        width, height = int(match.group(1)), int(match.group(2))
        if not (640 <= width <= 8192 and 480 <= height <= 4320):
            raise CommandRejected(
                f"resolution {args.resolution}: from 640x480 to 8192x4320 on this camera"
            )
    codec = Codec[args.codec.upper()] if args.codec is not None else current.codec
    shutter = current.shutter_decideg
    if args.shutter_angle is not None:
        shutter = _decidegrees(args.shutter_angle)
    elif args.shutter_speed is not None:
        match = _SHUTTER_SPEED.match(args.shutter_speed.strip())
        if not match or float(match.group(1)) <= 0:
            raise CommandRejected(f"shutter_speed {args.shutter_speed!r}: write it as 1/50")
        angle = 360.0 * rate.fps / float(match.group(1))
        if not 1.0 <= angle <= 360.0:
            raise CommandRejected(
                f"shutter_speed {args.shutter_speed} at {rate.fps:g} fps is a {angle:.1f} degree "
                "shutter; the camera takes 1 to 360"
            )
        shutter = _decidegrees(angle)
    if args.bitrate_mbps is not None:
        bitrate = round(args.bitrate_mbps * 1000)
    elif (codec, width, height, rate) != (current.codec, current.width, current.height, rate):
        bitrate = nominal_bitrate_kbps(codec, width, height, rate)
    else:
        bitrate = current.bitrate_kbps
    return CameraSettings(
        width=width,
        height=height,
        rate=rate,
        codec=codec,
        bitrate_kbps=bitrate,
        shutter_decideg=shutter,
        iso=args.iso if args.iso is not None else current.iso,
        white_balance_k=(
            args.white_balance_k if args.white_balance_k is not None else current.white_balance_k
        ),
    )


def _decidegrees(angle: float) -> int:
    return max(10, min(3600, round(angle * 10)))


def describe(settings: CameraSettings, look: str | None = None) -> dict[str, Any]:
    """The settings as a person reads them."""
    return {
        **({"look": look} if look else {}),
        **to_jsonable(settings),
        "resolution": f"{settings.width}x{settings.height}",
        "frame_rate": settings.rate.fps,
        "shutter_angle": settings.shutter_decideg / 10,
        "codec": settings.codec.name.lower(),
        "bitrate_mbps": settings.bitrate_kbps / 1000,
    }


class CameraSettingsCommand:
    def __init__(self, devices: Mapping[str, DeviceAgent], project_rate: FrameRate) -> None:
        self.devices = devices
        self.project_rate = project_rate

    async def apply(self, args: CameraSettingsArgs) -> dict[str, Any]:
        agent = self.devices.get(args.camera)
        if agent is None or agent.kind != "camera":
            cameras = sorted(n for n, a in self.devices.items() if a.kind == "camera")
            raise CommandRejected(f"{args.camera!r} is not a configured camera; cameras: {cameras}")
        status, current = agent.status, agent.camera_settings
        if status is None or current is None or not agent.online:
            raise CommandRejected(f"{args.camera} is offline ({agent.offline_reason})")
        if status.state in (CameraState.ARMED, CameraState.RECORDING):
            raise CommandRejected(f"{args.camera} is rolling: settings change between takes")
        wanted = merged(current, args, self.project_rate)
        try:
            applied = await agent.camera().apply_settings(wanted)
        except DeviceUnavailable as exc:
            raise CommandRejected(str(exc)) from exc
        except NackReceived as exc:
            if exc.code is NackCode.BAD_STATE:  # armed or rolling since its last poll
                raise CommandRejected(
                    f"{args.camera} refused the settings in its present state (armed or "
                    f"rolling: settings change between takes): {exc}"
                ) from exc
            raise CommandFailed(f"{args.camera}: {exc}") from exc
        except LinkError as exc:
            raise CommandFailed(f"{args.camera}: {exc}") from exc
        agent.camera_settings = applied  # what the camera says applies, for budgets and takes
        if args.look is not None:
            agent.look = args.look or None  # "" clears it
        return {"camera": args.camera, "settings": describe(applied, agent.look)}

    def commands(self) -> list[CommandSpec[Any]]:
        return [
            CommandSpec("camera.settings", CameraSettingsArgs, self.apply,
                        "Change a camera's ISO, shutter, white balance, codec, resolution or "
                        "bitrate between takes; only what is named changes."),
        ]  # fmt: skip
