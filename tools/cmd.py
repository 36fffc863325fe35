"""`cupola cmd`: sign a command, send it, wait for its result; the exit status says how it went.

Arguments are `key=value` pairs or one JSON object. Values are read as the types the
command takes, from the node's birth certificate (`scene=7` is text, `take=7` a number);
with no birth on the broker, as JSON when they parse, else as text. Exit status: 0 ok,
1 failed, 2 rejected, 3 no result in time (or no birth to list commands from), 4 armed (a
hazardous command waiting for `confirm arm_id=...`; `--yes` confirms it at once); the
shared statuses of tools/exits.py otherwise: 64 unusable arguments, 65 a key file that is
not one, 66 no key file, 69 broker unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import aiomqtt
import msgspec

from protocols import ground
from protocols.ground import KeyFileError, read_key
from tools.cmd_text import render_result
from tools.exits import UnavailableError, UsageError, input_refused
from tools.ground_client import CommandTimeout, GroundSession

EXIT = {"ok": 0, "duplicate": 0, "failed": 1, "rejected": 2, "armed": 4}
NO_RESULT = 3


class ArgumentError(ValueError):
    """Arguments that cannot make a command; nothing was signed or sent."""


def _json_type(value: Any) -> str:
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
                       (list, "array"), (dict, "object")):  # fmt: skip
        if isinstance(value, kind):
            return name
    return "null"


def _value(text: str, accepts: list[str] | None) -> Any:
    """`text` as JSON when the command takes that type, else as text where it takes text.

    So `scene=7` is the scene "7" (scenes are text), while `take=7` is the number 7.
    """
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if accepts is None:
        return value
    kind = _json_type(value)
    if kind in accepts or (kind == "integer" and "number" in accepts):
        return value
    return text if "string" in accepts else value


def usage(signature: ground.CommandSignature) -> str:
    """`scene=string take=integer [roll=string] ...`: what a command takes."""
    words = []
    for name, argument in signature.args.items():
        word = f"{name}={'|'.join(argument.types)}"
        words.append(word if argument.required else f"[{word}]")
    return " ".join(words) or "(no arguments)"


def parse_args(
    words: list[str], signature: ground.CommandSignature | None = None
) -> dict[str, Any]:
    """The arguments from `key=value` words (or one JSON object).

    With the node's signature of the command, values are read as the types it takes, and an
    unknown or missing argument is refused here, before anything is signed.
    """
    if len(words) == 1 and words[0].lstrip().startswith("{"):
        try:
            value = json.loads(words[0])
        except ValueError as exc:
            raise ArgumentError(f"the JSON arguments do not parse: {exc}") from None
        if not isinstance(value, dict):
            raise ArgumentError("the JSON arguments must be an object")
        args: dict[str, Any] = value
    else:
        args = {}
        for word in words:
            key, sep, text = word.partition("=")
            if not sep or not key:
                raise ArgumentError(f"argument {word!r} is not key=value")
            known = signature.args.get(key) if signature is not None else None
            args[key] = _value(text, known.types if known is not None else None)
    if signature is not None:
        problems = []
        if unknown := sorted(set(args) - set(signature.args)):
            problems.append(f"no argument {', '.join(unknown)}")
        if missing := [n for n, a in signature.args.items() if a.required and n not in args]:
            problems.append(f"missing {', '.join(missing)}")
        if problems:
            raise ArgumentError(f"{'; '.join(problems)} (takes {usage(signature)})")
    return args


BIRTH_WAIT_S = 2.0  # a node's birth is retained: it comes at once if the node was ever up


def signatures_in(birth: dict[str, Any] | None) -> dict[str, ground.CommandSignature]:
    """Every command the node accepts, as its birth certificate describes them."""
    try:
        return msgspec.convert(
            (birth or {}).get("commands") or {}, dict[str, ground.CommandSignature]
        )
    except msgspec.ValidationError:
        return {}


async def _birth(session: GroundSession) -> dict[str, Any] | None:
    """The node's latest birth certificate on the broker, if it has one."""
    with contextlib.suppress(TimeoutError):
        await session.wait_for(lambda: bool(session.births), BIRTH_WAIT_S, "the birth")
    return session.births[-1].body if session.births else None


async def _listing(url: str, node: str, ca_file: Path | None) -> str | None:
    async with GroundSession(url, node, ca_file=ca_file) as session:
        birth = await _birth(session)
    if birth is None:
        return None
    lines = []
    signatures = signatures_in(birth)
    for name, signature in sorted(signatures.items()):
        roles = [r.value for r in ground.Role if ground.may_send(r, name)]
        lines.append(f"{name}  {usage(signature)}")
        hazardous = " Hazardous: armed first, then `confirm`." if signature.hazardous else ""
        lines.append(f"    {signature.doc}{hazardous} Roles: {', '.join(roles)}.")
    return "\n".join(lines)


def list_commands(url: str, node: str, *, ca_file: Path | None) -> int:
    """What the node accepts, read from its (retained) birth certificate; no key needed."""
    try:
        listing = asyncio.run(_listing(url, node, ca_file))
    except aiomqtt.MqttError as exc:
        raise UnavailableError(f"broker: {exc}") from None
    if listing is None:
        print(f"cupola commands: no birth certificate from {node!r} on the broker "
              "(wrong --node, or the node has never connected)", file=sys.stderr)  # fmt: skip
        return NO_RESULT
    print(listing)
    return 0


async def send(
    url: str,
    node: str,
    key_path: Path,
    name: str,
    words: list[str],
    *,
    ca_file: Path | None,
    timeout: float,
    confirm: bool,
) -> tuple[int, list[dict[str, Any]]]:
    key = read_key(key_path)
    async with GroundSession(url, node, key=key, ca_file=ca_file) as session:
        args = parse_args(words, signatures_in(await _birth(session)).get(name))
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
    as_json: bool = False,
) -> int:
    """Print the result for a person (`as_json`: one JSON line per result, for scripts)."""
    try:
        status, results = asyncio.run(
            send(url, node, key_path, name, words, ca_file=ca_file, timeout=timeout,
                 confirm=confirm)
        )  # fmt: skip
    except KeyFileError as exc:
        raise input_refused(exc) from None
    except ArgumentError as exc:
        raise UsageError(f"{name}: {exc}") from None
    except CommandTimeout as exc:
        print(f"cupola cmd: no result: {exc}", file=sys.stderr)
        return NO_RESULT
    except aiomqtt.MqttError as exc:
        raise UnavailableError(f"broker: {exc}") from None
    for result in results:
        print(json.dumps(result) if as_json else render_result(result))
    if results[-1]["status"] == "armed":
        arm_id = results[-1]["result"]["arm_id"]
        print(f"armed: send `confirm arm_id={arm_id}` within the window to execute it",
              file=sys.stderr)  # fmt: skip
    return status
