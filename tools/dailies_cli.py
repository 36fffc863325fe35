"""The dailies subcommands: `offload` (onboard), `verify`, `export` and `receive` (ground).

Their handlers and arguments; tools.cli lists them. Imported by every `cupola` start, so what
they need is imported inside them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tools.exits import DataError, NoInputError, UnavailableError, UsageError

TYPE_CHECKING = False  # typing's, without importing typing (see tools.cli)
if TYPE_CHECKING:
    import datetime

EXIT_DIFFERENT = 1  # verify: the drive differs from the history; offload: a copy failed


def cmd_offload(args: argparse.Namespace) -> int:
    from firmware_host.dailies.offload import run

    if not args.card.is_dir():
        raise NoInputError(f"{args.card}: no such card folder")
    if args.store.resolve() == args.card.resolve() or args.card.resolve() in (
        args.store.resolve().parents
    ):
        raise UsageError("--store must not be the card or inside it")
    return run(args)


def cmd_verify(args: argparse.Namespace) -> int:
    import json

    from firmware_host.dailies.mhl import has_history, verify_drive

    drive: Path = args.drive
    history: Path = args.history or drive
    if not drive.is_dir():
        raise NoInputError(f"{drive}: no such folder")
    if not has_history(history):
        raise NoInputError(f"{history}: no ASC MHL history (no ascmhl folder); give --history")
    try:
        report = verify_drive(drive, history)
    except Exception as exc:  # ascmhl's parser on a damaged history
        raise DataError(f"{history}: the ASC MHL history cannot be read: {exc}") from None
    if args.json:
        print(json.dumps({"ok": report.ok, "checked": report.checked, "missing": report.missing,
                          "extra": report.extra, "changed": report.changed}))  # fmt: skip
    else:
        for label, names in (("missing", report.missing), ("extra", report.extra),
                             ("changed", report.changed)):  # fmt: skip
            for name in names:
                print(f"{label:8} {name}")
        verdict = "identical to" if report.ok else "DIFFERS from"
        print(f"{drive}: {report.checked} files hashed; {verdict} the history "
              f"({len(report.missing)} missing, {len(report.extra)} extra, "
              f"{len(report.changed)} changed)")  # fmt: skip
    return 0 if report.ok else EXIT_DIFFERENT


def _day(text: str) -> datetime.date:
    import datetime

    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day (YYYY-MM-DD)") from None


def cmd_export(args: argparse.Namespace) -> int:
    from tools.export import ExportError, export

    try:
        text, clips = export(args.shotlog, args.day, args.format, args.out, args.store)
    except ExportError as exc:
        raise DataError(str(exc)) from None
    if args.out is None:
        sys.stdout.write(text)
    else:
        print(f"{args.out}: {clips} clips of {args.day.isoformat()} as {args.format}",
              file=sys.stderr)  # fmt: skip
    return 0


def cmd_receive(args: argparse.Namespace) -> int:
    import asyncio

    import aiomqtt

    from protocols.ground import KeyFileError
    from tools.receive import receive

    try:
        asyncio.run(receive(args.broker, args.node, args.key, args.out, ca_file=args.ca))
    except KeyFileError as exc:
        raise NoInputError(str(exc)) from None
    except aiomqtt.MqttError as exc:
        raise UnavailableError(str(exc)) from None
    return 0


def offload_arguments(p: argparse.ArgumentParser) -> None:
    from firmware_host.dailies.offload_args import add_arguments

    add_arguments(p)


def verify_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("drive", type=Path, help="the drive's folder (as the onboard store)")
    p.add_argument("--history", type=Path, help="the folder holding the ascmhl history "
                   "(default: the drive's own)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="one JSON object")


def export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--day", type=_day, required=True, help="YYYY-MM-DD (UTC)")
    p.add_argument("--format", choices=["ale", "edl", "otio", "csv"], required=True)
    p.add_argument("--shotlog", type=Path, default=Path("state/shotlog.db"),
                   help="the shot log (default state/shotlog.db)")  # fmt: skip
    p.add_argument("--out", type=Path, help="write here (default: stdout)")
    p.add_argument("--store", type=Path,
                   help="with --out: copy this store's ASC MHL history beside it")  # fmt: skip


def receive_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--broker", required=True, help="mqtt://user:pass@host:port or mqtts://...")
    p.add_argument("--node", default="iss-film", help="the node")
    p.add_argument("--key", required=True, type=Path, help="your key file (signs the acks)")
    p.add_argument("--ca", type=Path, help="CA certificate for mqtts://")
    p.add_argument("--out", type=Path, default=Path("dailies"),
                   help="the dailies folder: DAY/CAMERA/FILE (default ./dailies)")  # fmt: skip
