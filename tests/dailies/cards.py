"""Real clip files for the dailies tests, rendered by the simulator's own card writer."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hil.media import Card
from hil.models.camera import Clip
from protocols.messages.camera import Codec
from protocols.timecode import FrameRate

TEN_HOURS = 10 * 3600 * 25


def clip(clip_id: int, *, scene: str = "12", take: int = 1, roll: str = "A001",
         frames: int = 25, timecode_in: int = TEN_HOURS) -> Clip:  # fmt: skip
    return Clip(clip_id=clip_id, scene=scene, take=take, roll=roll, timecode_in=timecode_in,
                rate=FrameRate.FPS_25, codec=Codec.PRORES_422_HQ, bitrate_kbps=700_000,
                frames=frames, closed=True)  # fmt: skip


async def _render(card: Card, clips: list[Clip]) -> None:
    for each in clips:
        card.clip_closed(each)
    await card.settle()


def render_card(folder: Path, camera: str, clips: list[Clip]) -> list[Path]:
    """The clips as files on a card folder, as a simulated camera writes them."""
    card = Card(folder, camera)
    asyncio.run(_render(card, clips))
    return [card.path(c) for c in clips]
