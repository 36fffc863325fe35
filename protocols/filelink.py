"""File downlink on MQTT, after CCSDS CFDP class 2: segments, acknowledged, missing ones sent
again, resumable across passes and restarts (documented in GROUND.md, "File downlink").

- `cupola/v1/<node>/file/meta` (node -> ground, JSON, QoS 1): what a file is, before and
  whenever the ground asks for it: id, name, size, segment size and count, its xxh64 (the
  hash its ASC MHL history records) and where it goes.
- `cupola/v1/<node>/file/chunk` (node -> ground, binary, QoS 0: the protocol, not MQTT,
  makes it reliable, and no chunk takes a QoS 1 slot the housekeeping stream needs): one
  segment, its header and data covered by a CRC-32C.
- `file.ack` (ground -> node, a signed command): every segment the ground holds, as ranges;
  `verified` once the whole file's xxh64 matched; `restart` if it did not; `need_meta` if a
  segment came for a file it does not know.

A segment that fails its CRC (a flipped or truncated byte) is dropped by the ground: never
acknowledged, so the node sends it again.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from construct import Bytes, Const, Int16ul, Int32ul, Struct, this

from protocols.crc import crc32c

META = "file/meta"
CHUNK = "file/chunk"
MAGIC = b"CF"
VERSION = 1

CHUNK_HEADER = Struct(
    "magic" / Const(MAGIC),
    "version" / Const(VERSION, Int16ul),
    "file_id" / Int32ul,
    "index" / Int32ul,
    "count" / Int32ul,
    "length" / Int32ul,
)
HEADER_SIZE = CHUNK_HEADER.sizeof()
CHUNK_FRAME = Struct(
    "header" / CHUNK_HEADER,
    "data" / Bytes(this.header.length),
    "crc" / Int32ul,
)
MAX_CHUNK = 1_000_000


class ChunkError(ValueError):
    """Not a whole, intact chunk: the ground drops it (and the node sends it again)."""


class Chunk(msgspec.Struct, frozen=True):
    file_id: int
    index: int
    count: int
    data: bytes


def encode_chunk(chunk: Chunk) -> bytes:
    header: bytes = CHUNK_HEADER.build(
        {"file_id": chunk.file_id, "index": chunk.index, "count": chunk.count,
         "length": len(chunk.data)}
    )  # fmt: skip
    body = header + chunk.data
    return body + crc32c(body).to_bytes(4, "little")


def decode_chunk(payload: bytes) -> Chunk:
    """The chunk in `payload`, or ChunkError: wrong magic, length or CRC."""
    if len(payload) < HEADER_SIZE + 4:
        raise ChunkError(f"{len(payload)} bytes: shorter than a chunk header")
    try:
        header = CHUNK_HEADER.parse(payload[:HEADER_SIZE])
    except Exception as exc:  # construct raises its own errors for a wrong magic or version
        raise ChunkError(f"not a chunk header: {exc}") from None
    if header.length > MAX_CHUNK or len(payload) != HEADER_SIZE + header.length + 4:
        raise ChunkError(f"length {header.length} does not match the {len(payload)} bytes")
    if crc32c(payload[:-4]) != int.from_bytes(payload[-4:], "little"):
        raise ChunkError(f"file {header.file_id} chunk {header.index}: CRC mismatch")
    if header.index >= header.count:
        raise ChunkError(f"chunk {header.index} of {header.count}")
    return Chunk(header.file_id, header.index, header.count, payload[HEADER_SIZE:-4])


Hex16 = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{16}$")]
SafeName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.-]{1,100}$")]


class FileMeta(msgspec.Struct, forbid_unknown_fields=True):
    file_id: Annotated[int, msgspec.Meta(ge=1, lt=2**32)]
    name: SafeName  # the file's name (no folders: the ground decides where it goes)
    folder: SafeName  # the ground files it under this (the camera)
    day: Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}$")]  # shoot day, UTC
    size: Annotated[int, msgspec.Meta(ge=0, le=2**40)]
    chunk_bytes: Annotated[int, msgspec.Meta(ge=1, le=MAX_CHUNK)]
    chunks: Annotated[int, msgspec.Meta(ge=0, lt=2**32)]
    xxh64: Hex16  # the whole file, as its ASC MHL history records it
    kind: str = "proxy"
    take_id: int | None = None


Index = Annotated[int, msgspec.Meta(ge=0, lt=2**32)]
Range = Annotated[list[Index], msgspec.Meta(min_length=2, max_length=2)]


class FileAck(msgspec.Struct, forbid_unknown_fields=True):
    """`file.ack`'s arguments."""

    file_id: Annotated[int, msgspec.Meta(ge=1, lt=2**32)]
    have: Annotated[list[Range], msgspec.Meta(max_length=4096)] = msgspec.field(
        default_factory=list
    )  # inclusive ranges of segment indexes the ground holds
    verified: bool = False  # the whole file is here and its xxh64 matches
    restart: bool = False  # the whole file arrived and its hash did not match: send it all again
    need_meta: bool = False


def ranges(indexes: set[int]) -> list[list[int]]:
    """Sorted indexes as inclusive [first, last] ranges."""
    out: list[list[int]] = []
    for index in sorted(indexes):
        if out and out[-1][1] == index - 1:
            out[-1][1] = index
        else:
            out.append([index, index])
    return out


def meta_decode(payload: bytes) -> FileMeta:
    return msgspec.json.decode(payload, type=FileMeta)
