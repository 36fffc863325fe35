"""The bench control socket: JSON lines over a Unix socket, for tests and bench engineers.

Requests and their answers:

    {"op": "list"}                                   -> every device's description
    {"op": "describe", "device": "cam-a"}            -> one device (model state, link counters)
    {"op": "fault", "device": "cam-a", "fault": "ber", "value": 1e-4, "duration": 5}
    {"op": "faults"}                                 -> the timestamped fault log
    {"op": "speed", "value": 10}                     -> change the physics time scale
    {"op": "clock_offset", "device": "cam-a", "at": 1.8e9}
                                                     -> a camera clock's true offset from wall
                                                        time at that instant (now without `at`)

Every answer is one line: {"ok": true, "result": ...} or {"ok": false, "error": "..."}.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import socket
from pathlib import Path
from typing import Any

from hil.bench import Bench, BenchError

_LIMIT = 1 << 20


class ControlServer:
    def __init__(self, bench: Bench, path: Path) -> None:
        self.bench = bench
        self.path = path
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                writer.write(self.answer(line) + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def answer(self, line: bytes) -> bytes:
        """One request line's answer line (no newline): the result, or why there is none."""
        try:
            answer: dict[str, Any] = {"ok": True, "result": self.handle(json.loads(line))}
        except (BenchError, ValueError, TypeError, KeyError, AttributeError) as exc:
            answer = {"ok": False, "error": str(exc)}
        return json.dumps(answer, default=str).encode()

    def handle(self, request: dict[str, Any]) -> Any:
        op = request.get("op")
        bench = self.bench
        if op == "list":
            return [d.describe() for d in bench.devices.values()]
        if op == "describe":
            return bench.device(request["device"]).describe()
        if op == "fault":
            record = bench.apply_fault(
                request["device"],
                request["fault"],
                request.get("value", True),
                request.get("duration"),
            )
            return dataclasses.asdict(record)
        if op == "faults":
            return [dataclasses.asdict(r) for r in bench.fault_log]
        if op == "clock_offset":
            model: Any = bench.device(request["device"]).model
            if not hasattr(model, "clock_offset_s"):
                raise BenchError(f"{request['device']} has no timecode clock")
            at = request.get("at")
            return {"offset_s": model.clock_offset_s(None if at is None else float(at))}
        if op == "speed":
            bench.clock.set_speed(float(request["value"]))
            return {"speed": bench.clock.speed}
        raise BenchError(
            f"unknown op {op!r}; use list, describe, fault, faults, clock_offset or speed"
        )


class ControlClient:
    """Blocking client, so tests and the bench runner can poke a bench from any thread."""

    def __init__(self, path: Path | str, timeout: float = 5.0) -> None:
        self.path = str(path)
        self.timeout = timeout

    def call(self, op: str, **fields: Any) -> Any:
        answer = json.loads(self._ask(json.dumps({"op": op, **fields}).encode()))
        if not answer["ok"]:
            raise BenchError(answer["error"])
        return answer["result"]

    def _ask(self, line: bytes) -> bytes:
        """Send one request line, return its answer line."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(self.timeout)
            sock.connect(self.path)
            sock.sendall(line + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
                if len(data) > _LIMIT:
                    raise BenchError("control answer too large")
        return data

    def describe(self, device: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call("describe", device=device)
        return result

    def clock_offset(self, device: str, at: float | None = None) -> float:
        """Ground truth: a camera clock's offset from wall time at `at` (now when None)."""
        return float(self.call("clock_offset", device=device, at=at)["offset_s"])

    def fault(
        self, device: str, fault: str, value: Any = True, duration: float | None = None
    ) -> Any:
        return self.call("fault", device=device, fault=fault, value=value, duration=duration)


class LocalControl(ControlClient):
    """The same calls on a bench running in this process (a test's in-process shoot): the same
    lines, answered by the server itself, without a socket a blocking client would wait on while
    the bench's loop waits for it."""

    def __init__(self, server: ControlServer) -> None:
        super().__init__(server.path)
        self.server = server

    def _ask(self, line: bytes) -> bytes:
        return self.server.answer(line)
