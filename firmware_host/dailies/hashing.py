"""xxHash64, as the film industry hashes footage (and ASC MHL records it): streamed, in
blocks, so a file of any size costs a fixed amount of memory."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import xxhash

BLOCK = 4 * 1024 * 1024
Progress = Callable[[int], None]  # bytes just done


def xxh64_file(path: Path, progress: Progress | None = None) -> str:
    """The file's xxHash64 as ASC MHL writes it: 16 lower-case hex digits."""
    digest = xxhash.xxh64()
    with path.open("rb") as source:
        while block := source.read(BLOCK):
            digest.update(block)
            if progress is not None:
                progress(len(block))
    return digest.hexdigest()


def copy_hashed(source: Path, target: Path, progress: Progress | None = None) -> str:
    """Copy `source` to `target` (written, flushed to disk) hashing what was read; returns
    the source's xxHash64. The copy is made under a temporary name and renamed when whole."""
    digest = xxhash.xxh64()
    temporary = target.with_name(f".{target.name}.copying")
    with source.open("rb") as reader, temporary.open("wb") as writer:
        while block := reader.read(BLOCK):
            digest.update(block)
            writer.write(block)
            if progress is not None:
                progress(len(block))
        writer.flush()
        os.fsync(writer.fileno())
    temporary.replace(target)
    return digest.hexdigest()
