"""`cupola cmd`: sign a command, send it, wait for its result; the exit status says how it went.

Arguments are `key=value` pairs or one JSON object. Values are read as the types the
command takes, from the node's birth certificate (`scene=7` is text, `take=7` a number);
with no birth on the broker, as JSON when they parse, else as text. Exit status: 0 ok,
1 failed, 2 rejected, 3 no result in time (or no birth to list commands from), 4 armed (a
hazardous command waiting for `confirm arm_id=...`; `--yes` confirms it at once); the
shared statuses of tools/exits.py otherwise: 64 unusable arguments, 65 a key file that is
not one, 66 no key file, 69 broker unreachable. The result is printed for a person (the
shot log's timecodes as HH:MM:SS:FF, tools/cmd_text.py); `--json` prints it raw.

Every command carries its own not_after (`--valid-for`, default 10 s): the node refuses it
after that, whatever delayed it. While waiting, births and deaths of the node are reported;
with no result in time, the message says whether the command may still run and until when,
and `cupola cmd --cancel ID` withdraws it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt
import msgspec

from protocols import ground
from protocols.ground import KeyFileError, read_key
from tools.cmd_text import render_result
from tools.exits import UnavailableError, UsageError, input_refused
from tools.ground_client import DEFAULT_VALID_FOR_S, GroundSession

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


class Unanswered(Exception):
    """No result in time; the message says whether the command may still run, until when."""


def utc(ts: float) -> str:
    return time.strftime("%H:%M:%S UTC", time.gmtime(ts))


def unanswered(command: dict[str, Any], node: str, waited: float, now: float) -> str:
    """What an operator must know about a command that got no result: may it still run?"""
    not_after = command["expires_at_ms"] / 1000
    head = f"{command['name']} {command['id']}: no result after {waited:g} s; the node is {node}"
    if now >= not_after:
        return (
            f"{head}. It will not start any more: its not_after ({utc(not_after)}) has passed "
            "(had it started before, its result is still to come)"
        )
    return (
        f"{head}. It may still run until {utc(not_after)} (its not_after, {not_after - now:.0f} s"
        f" from now); to withdraw it: cupola cmd --cancel {command['id']}"
    )


async def await_result(
    session: GroundSession,
    command: dict[str, Any],
    timeout: float,
    note: Callable[[str], None],
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """The command's result; births and deaths meanwhile are noted; Unanswered in the end."""
    command_id = command["id"]
    seen = (len(session.births), len(session.deaths))
    started = clock()
    deadline = asyncio.get_running_loop().time() + timeout

    def changed() -> bool:
        return command_id in session.results or (len(session.births), len(session.deaths)) != seen

    while command_id not in session.results:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            now = clock()
            raise Unanswered(unanswered(command, session.node_status(), now - started, now))
        with contextlib.suppress(TimeoutError):
            await session.wait_for(changed, remaining, f"the result of {command['name']}")
        now_seen = (len(session.births), len(session.deaths))
        if command_id not in session.results and now_seen != seen:
            seen = now_seen
            note(f"while waiting for {command['name']}: the node is {session.node_status()}")
    return session.results[command_id]


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
    valid_for: float = DEFAULT_VALID_FOR_S,
    note: Callable[[str], None] = lambda line: print(f"cupola cmd: {line}", file=sys.stderr),
) -> tuple[int, list[dict[str, Any]]]:
    key = read_key(key_path)
    async with GroundSession(url, node, key=key, ca_file=ca_file, lifetime_s=valid_for) as session:
        args = parse_args(words, signatures_in(await _birth(session)).get(name))
        results = [await _exchange(session, name, args, timeout, note)]
        if results[0]["status"] == "armed" and confirm:
            arm_id = results[0]["result"]["arm_id"]
            results.append(await _exchange(session, "confirm", {"arm_id": arm_id}, timeout, note))
    return EXIT.get(results[-1]["status"], 1), results


async def _exchange(
    session: GroundSession,
    name: str,
    args: dict[str, Any],
    timeout: float,
    note: Callable[[str], None],
) -> dict[str, Any]:
    command = session.build_command(name, args)
    await session.publish_command(command)
    return await await_result(session, command, timeout, note)


def run(
    url: str,
    node: str,
    key_path: Path,
    name: str | None,
    words: list[str],
    *,
    ca_file: Path | None,
    timeout: float,
    confirm: bool,
    valid_for: float = DEFAULT_VALID_FOR_S,
    cancel: str | None = None,
    as_json: bool = False,
) -> int:
    """Print the result for a person (`as_json`: one JSON line per result, for scripts)."""
    if cancel is not None:
        if name is not None or words:
            raise UsageError("--cancel ID takes no command")
        name, words = "command.cancel", [json.dumps({"id": cancel})]
    if name is None:
        raise UsageError("name a command (or --cancel ID)")
    try:
        status, results = asyncio.run(
            send(url, node, key_path, name, words, ca_file=ca_file, timeout=timeout,
                 confirm=confirm, valid_for=valid_for)
        )  # fmt: skip
    except KeyFileError as exc:
        raise input_refused(exc) from None
    except ArgumentError as exc:
        raise UsageError(f"{name}: {exc}") from None
    except Unanswered as exc:
        print(f"cupola cmd: {exc}", file=sys.stderr)
        return NO_RESULT
    except aiomqtt.MqttError as exc:
        raise UnavailableError(f"broker: {exc}") from None
    for result in results:
        print(json.dumps(result) if as_json else render_result(result))
    last = results[-1]
    if last["status"] == "armed":
        arm_id = last["result"]["arm_id"]
        who = last["result"].get("two_person")
        by = " from another console (two-person rule)" if who else ""
        window = last["result"].get("window_s", "?")
        print(f"armed by {last.get('key_id')}: send `confirm arm_id={arm_id}`{by} within "
              f"{window} s to execute it", file=sys.stderr)  # fmt: skip
    return status
