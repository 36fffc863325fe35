"""`cupola receive`: the ground end of the file downlink, into a dailies folder.

Segments are written into `<out>/.partial/<file id>.part` at their offset as they come; one
whose CRC fails (a flipped byte, a truncated payload) is dropped and counted, so it is never
acknowledged and the node sends it again. Every `ack_every_s` each file that changed is
acknowledged with every segment held (ranges), after the segments are on disk: what was
acknowledged is never lost, across a restart of the receiver too (`.partial/<id>.json`).
A whole file is hashed (xxh64) and compared with the hash its meta carries, the one its ASC
MHL history records onboard: equal, it moves to `<out>/<day>/<folder>/<name>` and is
acknowledged `verified`; different, it is acknowledged `restart` and comes again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import msgspec

from firmware_host.dailies.hashing import xxh64_file
from protocols import filelink, ground
from protocols.filelink import ChunkError, FileMeta
from tools.ground_client import GroundSession

log = logging.getLogger(__name__)


@dataclass
class Incoming:
    meta: FileMeta
    part: Path
    have: set[int] = field(default_factory=set)
    verified: bool = False
    restart: bool = False
    dirty: bool = True  # an acknowledgement is owed


class Receiver:
    def __init__(self, out: Path, *, on_file: Callable[[Path, FileMeta], None] | None = None):
        self.out = out
        self.partial = out / ".partial"
        self.partial.mkdir(parents=True, exist_ok=True)
        self.files: dict[int, Incoming] = {}
        self.need_meta: set[int] = set()
        self.rejected = 0  # segments dropped: CRC, length, or for no known file
        self.duplicates = 0  # segments that came again (already held)
        self.segments = 0  # segments accepted
        self.on_file = on_file
        self._restore()

    def _restore(self) -> None:
        for saved in sorted(self.partial.glob("*.json")):
            try:
                state = json.loads(saved.read_text())
                meta = msgspec.convert(state["meta"], FileMeta)
            except (OSError, ValueError, KeyError, msgspec.ValidationError) as exc:
                log.warning("%s: unreadable, ignored: %s", saved, exc)
                continue
            incoming = Incoming(meta, self.partial / f"{meta.file_id}.part",
                                {i for a, b in state["have"] for i in range(a, b + 1)},
                                bool(state["verified"]))  # fmt: skip
            self.files[meta.file_id] = incoming

    def _save(self, incoming: Incoming) -> None:
        state = {"meta": msgspec.to_builtins(incoming.meta), "verified": incoming.verified,
                 "have": filelink.ranges(incoming.have)}  # fmt: skip
        target = self.partial / f"{incoming.meta.file_id}.json"
        temporary = target.with_suffix(".tmp")
        temporary.write_text(json.dumps(state))
        temporary.replace(target)

    # -- what arrives ----------------------------------------------------------------------

    def on_meta(self, payload: bytes) -> None:
        try:
            meta = filelink.meta_decode(payload)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning("file meta refused: %s", exc)
            return
        if meta.chunks != -(-meta.size // meta.chunk_bytes):
            log.warning("file meta refused: %d segments cannot hold %d bytes", meta.chunks,
                        meta.size)  # fmt: skip
            return
        self.need_meta.discard(meta.file_id)
        known = self.files.get(meta.file_id)
        if known is not None and known.meta == meta:
            known.dirty = True  # the node asks again: tell it what we have
            return
        part = self.partial / f"{meta.file_id}.part"
        with part.open("wb") as handle:
            handle.truncate(meta.size)
        self.files[meta.file_id] = Incoming(meta, part)
        self._save(self.files[meta.file_id])

    def on_chunk(self, payload: bytes) -> None:
        try:
            chunk = filelink.decode_chunk(payload)
        except ChunkError as exc:
            self.rejected += 1
            log.info("segment dropped: %s", exc)
            return
        incoming = self.files.get(chunk.file_id)
        if incoming is None:
            self.rejected += 1
            self.need_meta.add(chunk.file_id)
            return
        meta = incoming.meta
        expected = min(meta.chunk_bytes, meta.size - chunk.index * meta.chunk_bytes)
        if chunk.count != meta.chunks or len(chunk.data) != expected:
            self.rejected += 1
            log.info("segment %d of file %d dropped: %d bytes, %d expected", chunk.index,
                     chunk.file_id, len(chunk.data), expected)  # fmt: skip
            return
        incoming.dirty = True
        if chunk.index in incoming.have or incoming.verified:
            self.duplicates += 1
            return
        with incoming.part.open("r+b") as handle:
            handle.seek(chunk.index * meta.chunk_bytes)
            handle.write(chunk.data)
        incoming.have.add(chunk.index)
        self.segments += 1
        if len(incoming.have) == meta.chunks:
            self._complete(incoming)

    def _complete(self, incoming: Incoming) -> None:
        meta = incoming.meta
        if xxh64_file(incoming.part) != meta.xxh64:
            log.warning("%s/%s: whole but its xxh64 differs from the MHL's: asked again",
                        meta.folder, meta.name)  # fmt: skip
            incoming.have.clear()
            incoming.restart = True
            return
        target = self.out / meta.day / meta.folder / meta.name
        target.parent.mkdir(parents=True, exist_ok=True)
        incoming.part.replace(target)
        incoming.verified = True
        self._save(incoming)
        if self.on_file is not None:
            self.on_file(target, meta)

    # -- what goes back --------------------------------------------------------------------

    def acks(self) -> list[dict[str, Any]]:
        """The `file.ack` arguments owed now; what they acknowledge is on disk first."""
        owed = []
        for incoming in self.files.values():
            if not incoming.dirty:
                continue
            if not incoming.verified and incoming.part.exists():
                with incoming.part.open("r+b") as handle:
                    os.fsync(handle.fileno())
            self._save(incoming)
            owed.append({"file_id": incoming.meta.file_id,
                         "have": filelink.ranges(incoming.have),
                         "verified": incoming.verified, "restart": incoming.restart})  # fmt: skip
            incoming.dirty = incoming.restart = False
        owed += [{"file_id": file_id, "need_meta": True} for file_id in sorted(self.need_meta)]
        self.need_meta.clear()
        return owed

    def acknowledged(self, args: dict[str, Any], command_id: str) -> None:
        """An acknowledgement reached the broker (QoS 1): the node has it, or will (its
        result, on the stream, says when it did)."""
        log.debug("acknowledged %s (command %s)", args, command_id)

    def owe(self, args: dict[str, Any]) -> None:
        """An acknowledgement that did not go: it is owed again."""
        if args.get("need_meta"):
            self.need_meta.add(args["file_id"])
        elif args["file_id"] in self.files:
            self.files[args["file_id"]].dirty = True
            self.files[args["file_id"]].restart |= bool(args.get("restart"))

    def on_message(self, topic: str, payload: bytes, _: float = 0.0) -> None:
        parsed = ground.parse_topic(topic)
        if parsed is None or parsed[1] != ground.FILE:
            return
        if parsed[2] == ("meta",):
            self.on_meta(payload)
        elif parsed[2] == ("chunk",):
            self.on_chunk(payload)


async def receive(
    url: str, node: str, key_path: Path, out: Path, *, ca_file: Path | None = None,
    ack_every_s: float = 0.5, until: Callable[[Receiver], bool] = lambda _: False,
    receiver: Receiver | None = None,
) -> Receiver:  # fmt: skip
    """Receive into `out` until `until` says so (or forever), acknowledging as it goes; an
    acknowledgement that cannot be published (the link is down) is owed again."""

    def delivered(path: Path, meta: FileMeta) -> None:
        print(f"{path}: {meta.size} bytes, xxh64 {meta.xxh64} verified against the MHL",
              flush=True)  # fmt: skip

    receiver = receiver or Receiver(out, on_file=delivered)
    key = ground.read_key(key_path)
    async with GroundSession(url, node, key=key, ca_file=ca_file, client_id=f"receive-{node}",
                             persistent=True) as session:  # fmt: skip
        session.on_message = receiver.on_message
        while True:
            for args in receiver.acks():
                command = session.build_command("file.ack", args)
                try:
                    await session.publish_command(command)
                except aiomqtt.MqttError as exc:
                    log.warning("acknowledgement not sent (%s): owed again", exc)
                    receiver.owe(args)
                else:
                    receiver.acknowledged(args, command["id"])
            if until(receiver):
                return receiver
            await asyncio.sleep(ack_every_s)
