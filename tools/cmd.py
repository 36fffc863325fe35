"""`cupola cmd`: sign a command, send it, wait for its result; the exit status says how it went.

Arguments are `key=value` pairs (values read as JSON when they parse, else as text) or one
JSON object. Exit status: 0 ok, 1 failed, 2 rejected, 3 no result in time, 4 armed (a
hazardous command waiting for `confirm arm_id=...`; `--yes` confirms it at once).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import aiomqtt

from protocols.ground import KeyFileError, read_key
from tools.ground_client import CommandTimeout, GroundSession

EXIT = {"ok": 0, "duplicate": 0, "failed": 1, "rejected": 2, "armed": 4}
NO_RESULT = 3
USAGE = 64


def parse_args(words: list[str]) -> dict[str, Any]:
    if len(words) == 1 and words[0].lstrip().startswith("{"):
        value = json.loads(words[0])
        if not isinstance(value, dict):
            raise ValueError("the JSON arguments must be an object")
        return value
    args: dict[str, Any] = {}
    for word in words:
        key, sep, text = word.partition("=")
        if not sep or not key:
            raise ValueError(f"argument {word!r} is not key=value")
        try:
            args[key] = json.loads(text)
        except ValueError:
            args[key] = text
    return args


async def send(
    url: str,
    node: str,
    key_path: Path,
    name: str,
    args: dict[str, Any],
    *,
    ca_file: Path | None,
    timeout: float,
    confirm: bool,
) -> tuple[int, list[dict[str, Any]]]:
    key = read_key(key_path)
    async with GroundSession(url, node, key=key, ca_file=ca_file) as session:
        result = await session.command(name, args, timeout=timeout)
        results = [result]
        if result["status"] == "armed" and confirm:
            arm_id = result["result"]["arm_id"]
            results.append(await session.command("confirm", {"arm_id": arm_id}, timeout=timeout))
    return EXIT.get(results[-1]["status"], 1), results


def run(
    url: str,
    node: str,
    key_path: Path,
    name: str,
    words: list[str],
    *,
    ca_file: Path | None,
    timeout: float,
    confirm: bool,
) -> int:
    try:
        args = parse_args(words)
    except ValueError as exc:
        print(f"cupola cmd: {exc}", file=sys.stderr)
        return USAGE
    try:
        status, results = asyncio.run(
            send(url, node, key_path, name, args, ca_file=ca_file, timeout=timeout, confirm=confirm)
        )
    except KeyFileError as exc:
        print(f"cupola cmd: {exc}", file=sys.stderr)
        return USAGE
    except CommandTimeout as exc:
        print(f"cupola cmd: no result: {exc}", file=sys.stderr)
        return NO_RESULT
    except aiomqtt.MqttError as exc:
        print(f"cupola cmd: broker: {exc}", file=sys.stderr)
        return NO_RESULT
    for result in results:
        print(json.dumps(result))
    if results[-1]["status"] == "armed":
        arm_id = results[-1]["result"]["arm_id"]
        print(f"armed: send `confirm arm_id={arm_id}` within the window to execute it",
              file=sys.stderr)  # fmt: skip
    return status
