"""A simulated camera's media card: a folder holding each clip as a real, small video file.

When a clip closes, ffmpeg renders it (a test pattern with the scene, take, camera and a
burnt-in timecode starting at the clip's timecode in) at the nominal bitrate scaled down by
`scale`, so a day's footage is megabytes, not terabytes. The camera's own media figures (and
the daemon's data budget) keep counting nominal sizes. Rendering runs as a subprocess and
never blocks the bench's event loop; a file appears under its final name only when whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from pathlib import Path

from hil.models.camera import Clip
from protocols.media import PARTIAL_SUFFIX, clip_file_name
from protocols.timecode import format_timecode

log = logging.getLogger(__name__)

DEFAULT_SCALE = 1e-4  # 700 Mbit/s ProRes -> 70 kbit/s
MIN_KBPS = 20.0
MAX_RENDER_S = 600.0  # longer clips are rendered this long (the file stays small)
SIZE = "320x180"


def ffmpeg_available() -> bool:
    return shutil.which("ffmpeg") is not None


def render_args(clip: Clip, camera: str, out: Path, scale: float) -> list[str]:
    """The ffmpeg command line that renders `clip` to `out`."""
    fps = clip.rate.fps
    seconds = min(max(clip.frames, 1) / fps, MAX_RENDER_S)
    kbps = max(MIN_KBPS, clip.bitrate_kbps * scale)
    tc = format_timecode(clip.timecode_in, clip.rate)
    label = f"{camera}  S{clip.scene} T{clip.take}  {clip_file_name(clip.roll, clip.clip_id)}"
    label = label.replace("\\", "").replace("'", "").replace(":", " ")
    text = "fontsize=14:fontcolor=white:box=1:boxcolor=black@0.6"
    drawn = (
        f"drawtext=text='{label}':x=6:y=6:{text},"
        f"drawtext=timecode='{tc.replace(':', chr(92) + ':')}':rate={fps:g}:x=6:y=156:{text}"
    )
    return [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={SIZE}:rate={fps:g}",
        "-t", f"{seconds:.3f}", "-vf", drawn,
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-b:v", f"{kbps:.0f}k", "-maxrate", f"{kbps:.0f}k", "-bufsize", f"{kbps:.0f}k",
        "-timecode", tc, "-f", "mov", str(out),
    ]  # fmt: skip


class Card:
    """The folder of one camera's media, kept in step with the camera's clips."""

    def __init__(self, folder: Path, camera: str, scale: float = DEFAULT_SCALE) -> None:
        self.folder = folder
        self.camera = camera
        self.scale = scale
        self.rendering: dict[int, asyncio.Task[None]] = {}
        folder.mkdir(parents=True, exist_ok=True)

    def path(self, clip: Clip) -> Path:
        return self.folder / clip_file_name(clip.roll, clip.clip_id)

    def clip_closed(self, clip: Clip) -> None:
        if clip.frames <= 0 or clip.clip_id in self.rendering:
            return
        # At once, before the camera answers the cut: the host sees a clip being written.
        self._partial(clip).touch()
        task = asyncio.get_running_loop().create_task(self._render(clip))
        self.rendering[clip.clip_id] = task
        task.add_done_callback(lambda _: self.rendering.pop(clip.clip_id, None))

    def _partial(self, clip: Clip) -> Path:
        final = self.path(clip)
        return final.with_name(final.name + PARTIAL_SUFFIX)

    async def _render(self, clip: Clip) -> None:
        final = self.path(clip)
        partial = self._partial(clip)
        try:
            process = await asyncio.create_subprocess_exec(
                *render_args(clip, self.camera, partial, self.scale),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:  # no ffmpeg (scripts/ensure-system-packages.sh): no clip file
            log.error("%s: cannot render %s: %s", self.camera, final.name, exc)  # noqa: TRY400
            partial.unlink(missing_ok=True)
            return
        try:
            _, err = await process.communicate()
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            partial.unlink(missing_ok=True)
            raise
        if process.returncode != 0:
            log.error("%s: ffmpeg failed on %s: %s", self.camera, final.name, err.decode()[-300:])
            partial.unlink(missing_ok=True)
            return
        partial.rename(final)

    def clip_deleted(self, clip: Clip) -> None:
        task = self.rendering.pop(clip.clip_id, None)
        if task is not None:
            task.cancel()
        self.path(clip).unlink(missing_ok=True)
        self._partial(clip).unlink(missing_ok=True)

    def formatted(self) -> None:
        for task in self.rendering.values():
            task.cancel()
        self.rendering.clear()
        for entry in self.folder.iterdir():
            if entry.is_file():
                entry.unlink()

    async def settle(self) -> None:
        """Wait for every clip being rendered (tests, a clean bench stop)."""
        await asyncio.gather(*list(self.rendering.values()), return_exceptions=True)
