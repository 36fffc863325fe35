"""`cupola`: one command, with a subcommand per job. Heavy imports happen per subcommand.

Every subcommand runs inside one error boundary (`main`): a typed error (tools/exits.py)
becomes one line on stderr and its exit status, so no bad input ends in a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tools import dailies_cli as dailies
from tools.exits import (
    EX_INTERRUPTED,
    EX_IOERR,
    EX_PIPE,
    EX_SOFTWARE,
    EX_USAGE,
    CliError,
    ConfigInvalidError,
    DataError,
    InUseError,
    NoInputError,
    UnavailableError,
    UsageError,
    input_refused,
    reason,
)

TYPE_CHECKING = False  # typing's, without importing typing (3 ms; `cupola --help` takes 36)
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any, NoReturn

    Handler = Callable[[argparse.Namespace], int]
    Arguments = Callable[[argparse.ArgumentParser], None]
    _SubParsersAction = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    _SubParsersAction = argparse._SubParsersAction


def _setup_logging(level: str) -> None:
    import logging  # here, not at the top: `cupola --help` starts without it

    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _cmd_sim(args: argparse.Namespace) -> int:
    from hil.bench import BenchError
    from hil.simulator import run

    try:
        return run(args.config, args.run_dir)
    except BenchError as exc:
        raise input_refused(exc) from None


def _cmd_simctl(args: argparse.Namespace) -> int:
    import json

    from hil.bench import BenchError
    from hil.control import ControlClient

    client = ControlClient(args.control)
    if args.op == "fault" and not (args.device and args.fault):
        raise UsageError("fault needs a device and a fault: simctl fault DEVICE FAULT [VALUE]")
    if args.op == "describe" and not args.device:
        raise UsageError("describe needs a device: simctl describe DEVICE")
    try:
        if args.op == "fault":
            value = _scalar(args.value) if args.value is not None else True
            result = client.fault(args.device, args.fault, value, args.duration)
        elif args.op == "describe":
            result = client.describe(args.device)
        elif args.op == "speed":
            result = client.call("speed", value=_number(args.device, "speed FACTOR"))
        else:
            result = client.call(args.op)
    except OSError as exc:
        raise UnavailableError(f"cannot reach the bench at {args.control}: {reason(exc)}") from None
    except BenchError as exc:
        raise DataError(str(exc)) from None
    print(json.dumps(result, indent=2, default=str))
    return 0


def _number(text: str | None, usage: str) -> float:
    try:
        return float(text or "")
    except ValueError:
        raise UsageError(f"{text!r} is not a number: simctl {usage}") from None


def _scalar(text: str) -> object:
    import json

    try:
        return json.loads(text)
    except ValueError:
        return text


def _cmd_daemon(args: argparse.Namespace) -> int:
    import gc

    gc.disable()  # until the daemon is built (firmware_host.daemon.settle_heap says why)
    try:
        return _daemon(args)
    finally:
        gc.enable()  # a check, a refused file or a stop: on again however it ends


def _daemon(args: argparse.Namespace) -> int:
    from firmware_host.config import ConfigError, ConfigUnreadable, load_config

    path = args.check or args.config
    if path is None:
        raise UsageError("give --config FILE (or --check FILE)")
    try:
        config = load_config(path)
    except ConfigUnreadable as exc:
        raise NoInputError(str(exc)) from None
    except ConfigError as exc:
        raise ConfigInvalidError(str(exc)) from None
    if args.check:
        print(f"{path}: OK ({len(config.devices)} devices, node {config.node.name!r})")
        return 0
    from firmware_host.check_ahead import CheckAhead
    from firmware_host.config import OUTBOX_FILE
    from firmware_host.instance import StateDirInUse, claim_state_dir

    state_dir = Path(config.node.state_dir)
    try:
        held = claim_state_dir(state_dir) is not None  # kept for the life of the process
    except StateDirInUse as exc:
        raise InUseError(str(exc)) from None
    # the outbox is checked on another core while the daemon's modules are imported here
    with CheckAhead([state_dir / OUTBOX_FILE] if held else []) as checked_ahead:
        from firmware_host.daemon import run_daemon

        return run_daemon(config, checked_ahead)


def _cmd_monitor(args: argparse.Namespace) -> int:
    if args.replay is not None and args.replay.startswith(("postgresql://", "postgres://")):
        from tools.monitor.launch import run_archive_replay

        return run_archive_replay(args.replay, args.node or "iss-film", since=args.since,
                                  at=args.at, text=args.text)  # fmt: skip
    if args.replay is not None:
        from tools.monitor.launch import run_replay

        return run_replay(Path(args.replay), args.node, at=args.at, text=args.text)
    if args.broker is None:
        raise UsageError("give --broker URL (or --replay CAPTURE)")
    if args.web is not None:
        from tools.monitor.web import address, run_web

        address(args.web)  # a bad address is refused before anything starts
        return run_web(args.web, _monitor_args(args), with_key=args.key is not None)
    if args.json:
        from tools.monitor.jsonlines import run_json_monitor

        return run_json_monitor(args.broker, args.node or "+", ca_file=args.ca)
    from tools.monitor.launch import run_live

    return run_live(
        args.broker, args.node or "iss-film",
        ca_file=args.ca, key_path=args.key, los_after_s=args.los_after,
        valid_for_s=args.valid_for, archive_url=args.db,
    )  # fmt: skip


def _monitor_args(args: argparse.Namespace) -> list[str]:
    """The options a served monitor session runs with: the same as this command's."""
    out = ["--broker", args.broker, "--node", args.node or "iss-film",
           "--valid-for", str(args.valid_for), "--los-after", str(args.los_after)]  # fmt: skip
    for flag, value in (("--ca", args.ca), ("--key", args.key), ("--db", args.db)):
        if value is not None:
            out += [flag, str(Path(value).resolve()) if flag != "--db" else value]
    return out


def _cmd_demo(args: argparse.Namespace) -> int:
    from tools.demo import run_demo
    from tools.scenario.spec import ScenarioError

    ui = False if args.no_ui else None
    try:
        return run_demo(args.scenario, keep=args.keep, ui=ui, screenshot=args.screenshot)
    except ScenarioError as exc:
        raise input_refused(exc) from None


def _cmd_decode(args: argparse.Namespace) -> int:
    from tools.decode import run

    return run(args.file, hex_input=args.hex, port=args.port, baud=args.baud, as_json=args.json,
               tap=args.tap, device=args.device, protocol=args.protocol,
               direction=args.direction)  # fmt: skip


def _cmd_keys(args: argparse.Namespace) -> int:
    from protocols.ground import KeyFileError
    from tools import keys

    try:
        if args.op == "create":
            return keys.create(args.role, args.id, args.out, args.keyring)
        if args.op == "revoke":
            keys.revoke(args.keyring, args.id)
            print(f"revoked {args.id!r} in {args.keyring}: in force once the daemon re-reads it "
                  "(kill -HUP its pid), or at once by command: cupola cmd keys.revoke "
                  f"key_id={args.id}")  # fmt: skip
            return 0
        return keys.listing(args.keyring)
    except KeyFileError as exc:
        raise input_refused(exc) from None
    except ValueError as exc:
        raise DataError(str(exc)) from None


def _cmd_commands(args: argparse.Namespace) -> int:
    from tools.cmd import list_commands

    return list_commands(args.broker, args.node, ca_file=args.ca)


def _cmd_cmd(args: argparse.Namespace) -> int:
    from tools.cmd import run

    return run(
        args.broker, args.node, args.key, args.name, args.args,
        ca_file=args.ca, timeout=args.timeout, confirm=args.yes, valid_for=args.valid_for,
        cancel=args.cancel, as_json=args.json,
    )  # fmt: skip


def _cmd_plan(args: argparse.Namespace) -> int:
    from tools.plan import run

    return run(args.plan, args.plot, every=args.all)


def _cmd_bench(args: argparse.Namespace) -> int:
    from tools.scenario import cli

    if args.op == "list":
        return cli.listing()
    if not args.scenario:
        raise UsageError("run: name a scenario file or one of `cupola bench list`")
    return cli.run(args.scenario, args.report, args.speed)


class Command:
    """A subcommand: its line in `cupola --help`, its handler, and what adds its arguments,
    called only once the command line names it (the listing imports none of them)."""

    __slots__ = ("arguments", "handler", "help")

    def __init__(self, help_: str, handler: Handler, arguments: Arguments) -> None:
        self.help = help_
        self.handler = handler
        self.arguments = arguments


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line complaint and EX_USAGE (its own 2 means "rejected" to `cmd`)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EX_USAGE, f"{self.prog}: {message} (see `{self.prog} --help`)\n")

    def _get_formatter(self) -> argparse.HelpFormatter:
        return argparse.HelpFormatter(self.prog, width=_terminal_columns() - 2)  # as argparse's


def _terminal_columns() -> int:
    """shutil.get_terminal_size().columns, which argparse sizes help by, without importing
    shutil and the three compressors it imports (2.5 ms; `cupola --help` takes 36)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    try:
        return os.get_terminal_size().columns or 80  # stdout's (fd 1), as shutil measures
    except OSError:  # stdout is not a terminal
        return 80


class _Subcommands(_SubParsersAction):
    """The subcommands as argparse's own, but listed from COMMANDS: a subcommand's parser is
    built only when the command line names it (building all eighteen took 10 ms of the 56
    `cupola --help` took)."""

    def __init__(
        self,
        option_strings: Sequence[str],
        prog: str,
        parser_class: type[argparse.ArgumentParser],
        dest: str,
        required: bool,
    ) -> None:
        super().__init__(option_strings, prog, parser_class, dest, required)
        # argparse only checks a name against `choices` and lists them: the names will do
        self.choices = COMMANDS  # type: ignore[assignment]
        self._choices_actions += [
            self._ChoicesPseudoAction(name, (), command.help) for name, command in COMMANDS.items()
        ]

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        if isinstance(values, list) and values[0] not in self._name_parser_map:
            command = COMMANDS[values[0]]  # a known name: argparse checked it against choices
            command.arguments(self.add_parser(values[0], description=command.help))
        super().__call__(parser, namespace, values, option_string)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cupola", description=__doc__)
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="default: info for the daemon and archive (a line per thing they do), else warning",
    )
    parser.add_subparsers(dest="command", required=True, action=_Subcommands)
    return parser


def _sim_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, required=True, help="bench file (TOML)")
    p.add_argument("--run-dir", type=Path, help="where device links and the control socket go")


def _simctl_arguments(p: argparse.ArgumentParser) -> None:
    from hil.fault_names import DEVICE_FAULTS, LINE_FAULTS

    p.epilog = (
        f"line faults (the cable): {', '.join(LINE_FAULTS)}. "
        f"device faults: {', '.join(DEVICE_FAULTS)}. "
        "Example: cupola simctl --control RUN/control.sock fault cam-a ber 0.001 --for 30"
    )
    p.add_argument("--control", required=True, help="the bench's control socket")
    p.add_argument("op", choices=["list", "describe", "fault", "faults", "speed"])
    p.add_argument("device", nargs="?", help="device name (describe, fault); factor (speed)")
    p.add_argument("fault", nargs="?", help="fault name (listed below)")
    p.add_argument("value", nargs="?", help="fault value (JSON scalar); default true")
    p.add_argument("--for", dest="duration", type=_positive, help="undo the fault after S seconds")


def _daemon_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="daemon configuration (TOML)")
    p.add_argument("--check", type=Path, metavar="CONFIG", help="validate a config and exit")


def _decode_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", nargs="?", type=Path, help="capture file; - or absent: stdin")
    p.add_argument(
        "--hex", action="store_true", help="input is a hex dump (plain, xxd, hexdump -C)"
    )
    p.add_argument("--port", help="decode a live serial port instead (takes the port)")
    p.add_argument(
        "--tap",
        type=Path,
        metavar="SOCKET",
        help="watch a link the daemon holds, through its tap socket (both directions)",
    )
    p.add_argument("--device", help="with --tap: the device whose link to watch")
    p.add_argument("--baud", type=_baud, default=115200)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument(
        "--protocol",
        default="native",
        choices=("native", "sony9pin", "enttec-dmx", "modbus-rtu"),
        help="the bytes' protocol: Cupola's own, or real gear's (SPEC.md 20)",
    )
    p.add_argument(
        "--direction",
        default="to-device",
        choices=("to-device", "from-device"),
        help="modbus-rtu: requests (to-device) or answers (from-device)",
    )


def _bench_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("op", choices=["run", "list"])
    p.add_argument("scenario", nargs="?", help="scenario file, or a name from `bench list`")
    p.add_argument("--report", type=Path, help="write JUnit XML and an HTML report here")
    p.add_argument("--speed", type=_positive, default=1.0, help="simulator physics time scale")


def _up_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--bench",
        default="studio",
        help="a shipped bench (minimal, studio, crew-of-three) or a bench file",
    )
    p.add_argument("--devices", type=int, help="instead: N generated cameras and lights")
    p.add_argument("--dir", type=Path, default=Path("cupola-rig"),
                   help="keys, configs, logs and state (kept between runs)")  # fmt: skip


def _demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", default="nominal", help="another scenario from `bench list`")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--no-ui", action="store_true", help="print the monitor's summary instead")
    p.add_argument("--screenshot", type=Path, help="save the monitor as SVG mid-take (headless)")


def _cmd_up(args: argparse.Namespace) -> int:
    from tools.up import run_up

    return run_up(args.bench, args.devices, args.dir)


def _positive(text: str) -> float:
    """A finite number above zero (seconds, a speed factor): inf and nan would never end."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number above 0")
    return value


def _baud(text: str) -> int:
    if not text.isdigit() or not 50 <= int(text) <= 12_000_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a baud rate (50 to 12000000)")
    return int(text)


def _instant(text: str) -> float:
    """A moment as unix seconds, or ISO 8601 (UTC, as the station keeps, unless it says)."""
    try:
        return float(text)
    except ValueError:
        pass
    import datetime

    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither ISO 8601 nor unix seconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def _broker_url(text: str) -> str:
    """A broker URL, checked before anything connects (a bad one would otherwise hang)."""
    from firmware_host.config import BrokerAddress, ConfigError

    try:
        BrokerAddress.parse(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _ca_file(text: str) -> Path:
    """A CA certificate file that TLS can load, checked before anything connects."""
    import ssl

    try:
        ssl.create_default_context(cafile=text)
    except ssl.SSLError:  # an OSError too: first
        raise argparse.ArgumentTypeError(f"{text}: not a PEM CA certificate") from None
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"{text}: {reason(exc)}") from None
    return Path(text)


ROLES = ["flight_controller", "director", "crew", "monitor"]  # protocols.ground.Role, unimported


def _monitor_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--broker", type=_broker_url, help="mqtt://user:pass@host:port or mqtts://...")
    p.add_argument("--node", help="node name (default iss-film; --json: every node; --replay: "
                   "the capture's)")  # fmt: skip
    p.add_argument("--ca", type=_ca_file, help="CA certificate for mqtts://")
    p.add_argument("--key", type=Path, help="your key file: lets the palette send commands")
    p.add_argument("--valid-for", type=_positive, default=10.0, metavar="S",
                   help="the node refuses a palette command after S s (default 10)")  # fmt: skip
    p.add_argument("--los-after", type=_positive, default=15.0, metavar="S",
                   help="an online node silent this long is shown as loss of signal")  # fmt: skip
    p.add_argument("--json", action="store_true", help="one JSON line per message, for scripts")
    p.add_argument("--web", metavar="HOST:PORT", help="serve the monitor to browsers there "
                   "(each session with these options, --key included)")  # fmt: skip
    p.add_argument("--replay", metavar="CAPTURE", help="show a --json capture, or a time range "
                   "of an archive (postgresql://...; from --since to --at)")  # fmt: skip
    p.add_argument("--since", type=_instant, metavar="TIME",
                   help="archive replay: from then (default: an hour before --at)")  # fmt: skip
    p.add_argument("--db", metavar="postgresql://...",
                   help="live: fill the screen from this archive, at start and gaps")  # fmt: skip
    p.add_argument("--at", type=_instant, metavar="TIME",
                   help="replay: the screen as it was then (ISO 8601, UTC if no zone)")  # fmt: skip
    p.add_argument("--text", action="store_true", help="replay: print a summary, no UI")


def _keys_arguments(p: argparse.ArgumentParser) -> None:
    ops = p.add_subparsers(dest="op", required=True, metavar="{create,list,revoke}")
    op = ops.add_parser("create", help="a new key file, trusted by a keyring",
                        description="Write a new key file (mode 0600) and, with --keyring, "
                        "trust it in the node's keyring.")  # fmt: skip
    op.add_argument("--role", required=True, choices=ROLES)
    op.add_argument("--id", required=True, help="the key id, e.g. dp-console")
    op.add_argument("--out", required=True, type=Path, help="the new key file")
    op.add_argument("--keyring", type=Path, help="the node's keyring (created if absent)")
    op = ops.add_parser("list", help="every key a keyring holds, and whether revoked",
                        description="One JSON line per key: id, role, state.")  # fmt: skip
    op.add_argument("--keyring", required=True, type=Path, help="the node's keyring")
    op = ops.add_parser("revoke", help="refuse a key (once the daemon re-reads the keyring)",
                        description="Mark a key id revoked in the keyring.")  # fmt: skip
    op.add_argument("--keyring", required=True, type=Path, help="the node's keyring")
    op.add_argument("--id", required=True, help="the key id to refuse")


def _commands_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--broker",
        required=True,
        type=_broker_url,
        help="mqtt://user:pass@host:port or mqtts://...",
    )
    p.add_argument("--node", default="iss-film", help="the node")
    p.add_argument("--ca", type=_ca_file, help="CA certificate for mqtts://")


def _cmd_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--broker",
        required=True,
        type=_broker_url,
        help="mqtt://user:pass@host:port or mqtts://...",
    )
    p.add_argument("--key", required=True, type=Path, help="your key file")
    p.add_argument("--node", default="iss-film", help="the node to command")
    p.add_argument("--ca", type=_ca_file, help="CA certificate for mqtts://")
    p.add_argument("--timeout", type=_positive, default=15.0, help="seconds to wait for the result")
    p.add_argument("--yes", action="store_true", help="confirm a hazardous command at once")
    p.add_argument("--json", action="store_true", help="the raw result, one JSON line, for scripts")
    p.add_argument(
        "--valid-for", type=_positive, default=10.0, metavar="S",
        help="the node refuses the command after S seconds, whatever delayed it (default 10)",
    )  # fmt: skip
    p.add_argument("--cancel", metavar="ID", help="withdraw command ID if it has not run yet")
    p.add_argument("name", nargs="?", help="command name, e.g. record, light.set, power.cap.set")
    p.add_argument("args", nargs="*", help="key=value ... or one JSON object")


def _plan_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("plan", type=Path, help="the plan (TOML)")
    p.add_argument(
        "--plot", type=Path, metavar="FILE",
        help="also draw the budgets per day to FILE (.png, .svg or .pdf)",
    )  # fmt: skip
    p.add_argument(
        "--all", action="store_true",
        help="list every violation, one a line (by default: the first in time and a count)",
    )  # fmt: skip


def _archive_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--broker", required=True, type=_broker_url, help="the ground broker's URL")
    p.add_argument("--db", required=True, help="postgresql://user@host:port/dbname")
    p.add_argument("--node", default="+", help="one node's messages only (default: every node)")
    p.add_argument("--ca", type=_ca_file, help="CA certificate for mqtts://")
    p.add_argument("--client-id", help="the broker session, kept across restarts (default: "
                   "cupola-archive-HOSTNAME); one per archive process")  # fmt: skip


def _history_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", choices=["events", "telemetry", "commands", "shotlog", "alarms"])
    p.add_argument("--db", required=True, help="postgresql://user@host:port/dbname")
    p.add_argument("--node", default="iss-film", help="the node")
    p.add_argument("--since", type=_instant, metavar="T", help="default: a day before --until")
    p.add_argument("--until", type=_instant, metavar="T", help="default: now")
    p.add_argument("--device", help="one device's events, commands or telemetry readings")
    p.add_argument("--field", action="append", default=[], metavar="F",
                   help="telemetry: a field (power.draw_w; with --device one of its readings, "
                   "temperature_cdeg); repeat for several")  # fmt: skip
    form = p.add_mutually_exclusive_group()
    form.add_argument("--csv", action="store_true", help="CSV with a header line")
    form.add_argument("--json", action="store_true", help="one message per line, as sent")
    form.add_argument("--plot", type=Path, metavar="FILE.png", help="telemetry: every field on "
                      "one chart (.png, .svg or .pdf)")  # fmt: skip


def _cmd_archive(args: argparse.Namespace) -> int:
    import socket

    from tools.archive.connect import check_url
    from tools.archive.service import run_archive

    client_id = args.client_id or f"cupola-archive-{socket.gethostname()}"
    return run_archive(args.broker, check_url(args.db), client_id=client_id, node=args.node,
                       ca_file=args.ca)  # fmt: skip


def _cmd_history(args: argparse.Namespace) -> int:
    import time

    from tools.archive.history import Query, run
    from tools.exits import check_writable

    until = args.until if args.until is not None else time.time()
    since = args.since if args.since is not None else until - 86400
    if since >= until:
        raise UsageError("--since must be before --until")
    if args.plot is not None:
        if args.what != "telemetry":
            raise UsageError("--plot draws telemetry fields: `history telemetry --field F --plot`")
        if args.plot.suffix.lower() not in (".png", ".svg", ".pdf"):
            raise UsageError(f"--plot {args.plot}: a .png, .svg or .pdf file")
        check_writable(args.plot)
    query = Query(args.what, args.node, since, until, args.device, tuple(args.field))
    form = "csv" if args.csv else "json" if args.json else "text"
    return run(args.db, query, form, args.plot)


# Every subcommand, in the order `cupola --help` lists them.
COMMANDS: dict[str, Command] = {
    "sim": Command(
        "Run simulated devices on pseudo-terminals until interrupted.", _cmd_sim, _sim_arguments
    ),
    "simctl": Command(
        "Inspect a running bench and inject faults at run time.", _cmd_simctl, _simctl_arguments
    ),
    "daemon": Command("Run the onboard daemon.", _cmd_daemon, _daemon_arguments),
    "decode": Command(
        "Decode a capture of device-protocol bytes, frame by frame.", _cmd_decode, _decode_arguments
    ),
    "bench": Command(
        "Run a shoot-day scenario on the bench and judge it.", _cmd_bench, _bench_arguments
    ),
    "up": Command(
        "Bring up a broker, simulated devices and the daemon for hand use.", _cmd_up, _up_arguments
    ),
    "demo": Command(
        "Run the nominal shoot-day scenario, watched by the monitor.", _cmd_demo, _demo_arguments
    ),
    "monitor": Command(
        "Watch a node from the ground (a terminal UI).", _cmd_monitor, _monitor_arguments
    ),
    "keys": Command(
        "Create, list and revoke the role keys commands are signed with.",
        _cmd_keys,
        _keys_arguments,
    ),
    "commands": Command(
        "List the node's commands, their arguments and roles.", _cmd_commands, _commands_arguments
    ),
    "cmd": Command("Sign a command, send it and wait for its result.", _cmd_cmd, _cmd_arguments),
    "plan": Command(
        "Check a shoot schedule against the power, media and downlink budgets.",
        _cmd_plan,
        _plan_arguments,
    ),
    "archive": Command(
        "Keep every node message in PostgreSQL (ground service).", _cmd_archive, _archive_arguments
    ),
    "history": Command(
        "What the archive holds: events, telemetry, commands, shots.",
        _cmd_history,
        _history_arguments,
    ),
    "offload": Command(
        "Copy a camera card onboard: hashed, verified, into the ASC MHL.",
        dailies.cmd_offload,
        dailies.offload_arguments,
    ),
    "verify": Command(
        "Check a returned drive against the ASC MHL history (missing, extra, changed).",
        dailies.cmd_verify,
        dailies.verify_arguments,
    ),
    "export": Command(
        "A day of the shot log as ALE, EDL, OTIO or CSV.",
        dailies.cmd_export,
        dailies.export_arguments,
    ),
    "receive": Command(
        "Receive the node's proxies into a dailies folder, verified on arrival.",
        dailies.cmd_receive,
        dailies.receive_arguments,
    ),
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    services = ("daemon", "archive")  # long-running: one line per thing they do
    _setup_logging(args.log_level or ("info" if args.command in services else "warning"))
    prog = f"cupola {args.command}"
    import logging  # loaded by _setup_logging already

    try:
        return int(COMMANDS[args.command].handler(args))
    except KeyboardInterrupt:
        return EX_INTERRUPTED
    except BrokenPipeError:
        _stdout_to_devnull()
        return EX_PIPE
    except CliError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return exc.status
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"{prog}: {where}{reason(exc)}", file=sys.stderr)
        return EX_IOERR
    except Exception as exc:  # the boundary: a bug still gets one line, not a traceback
        logging.getLogger("cupola").debug("%s failed", prog, exc_info=True)
        print(f"{prog}: internal error: {type(exc).__name__}: {exc} "
              "(`cupola --log-level debug ...` shows where)", file=sys.stderr)  # fmt: skip
        return EX_SOFTWARE


def _stdout_to_devnull() -> None:
    """The reader left (`| head`): drop what is still buffered so exit stays quiet."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
