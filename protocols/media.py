"""How a camera names its clip files on its media: the one convention camera and host share.

A clip is `<roll>C<clip id, 3 digits or more>.mov` (ARRI-like: `A001C007.mov`) in the card's
top folder; a file still being written ends in `.partial` and is renamed when complete, so a
file without that suffix is whole. Clip ids never repeat on a camera (not even after a
format), so a name is unique per camera for the whole shoot.
"""

from __future__ import annotations

import re

CLIP_SUFFIX = ".mov"
PARTIAL_SUFFIX = ".partial"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def clip_file_name(roll: str, clip_id: int) -> str:
    """The file of clip `clip_id` of roll `roll` (characters unsafe in a path become `_`)."""
    return f"{_UNSAFE.sub('_', roll) or '_'}C{clip_id:03d}{CLIP_SUFFIX}"


def is_clip_file(name: str) -> bool:
    return name.endswith(CLIP_SUFFIX) and not name.startswith(".")
