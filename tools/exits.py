"""Exit statuses of every `cupola` subcommand, and the typed errors that carry them.

A subcommand raises one of these errors; the error boundary in `tools.cli` prints its
message as one line on stderr and exits with its status. The numbers follow BSD's
sysexits(3) so scripts can tell "you typed it wrong" from "the broker is away":

    0    done (a subcommand may use 1..63 for its own outcomes, e.g. `cmd`'s "rejected")
    64   EX_USAGE        the command line is wrong (unknown option, bad URL, bad value)
    65   EX_DATAERR      the input exists but is not what it should be (not a hex dump...)
    66   EX_NOINPUT      an input file or port is missing or cannot be read
    69   EX_UNAVAILABLE  a service it needs cannot be reached (broker, bench)
    70   EX_SOFTWARE     a bug: an unexpected error (`--log-level debug` shows where)
    73   EX_CANTCREAT    an output file cannot be created
    74   EX_IOERR        reading or writing failed part-way
    75   EX_TEMPFAIL     what it needs is in use (another daemon holds the state directory)
    78   EX_CONFIG       the configuration is invalid (`cupola daemon --check` lists why)
    130  interrupted (Ctrl-C)
    141  the reader of stdout went away (`| head`): quietly, as a shell reports SIGPIPE
"""

from __future__ import annotations

import os
from pathlib import Path

EX_USAGE = 64
EX_DATAERR = 65
EX_NOINPUT = 66
EX_UNAVAILABLE = 69
EX_SOFTWARE = 70
EX_CANTCREAT = 73
EX_IOERR = 74
EX_TEMPFAIL = 75
EX_CONFIG = 78
EX_INTERRUPTED = 130
EX_PIPE = 141


class CliError(Exception):
    """An error a subcommand reports as one line and an exit status, never a traceback."""

    status = EX_SOFTWARE


class UsageError(CliError):
    status = EX_USAGE


class DataError(CliError):
    status = EX_DATAERR


class NoInputError(CliError):
    status = EX_NOINPUT


class UnavailableError(CliError):
    status = EX_UNAVAILABLE


class CantCreateError(CliError):
    status = EX_CANTCREAT


class IoError(CliError):
    status = EX_IOERR


class InUseError(CliError):
    status = EX_TEMPFAIL


class ConfigInvalidError(CliError):
    status = EX_CONFIG


def reason(exc: OSError) -> str:
    """What went wrong, in the operating system's words, without errno numbers."""
    return exc.strerror or str(exc) or type(exc).__name__


def read_input(path: Path) -> bytes:
    """The bytes of an input file, or a NoInputError naming it and why it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise NoInputError(f"{path}: cannot read: {reason(exc)}") from None


def check_writable(path: Path) -> None:
    """Refuse an output path before any work: its folder must exist and be writable."""
    folder = path.parent
    if path.is_dir():
        raise CantCreateError(f"{path}: cannot write: it is a folder")
    if not folder.is_dir():
        raise CantCreateError(f"{path}: cannot write: folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise CantCreateError(f"{path}: cannot write: folder {str(folder)!r} is not writable")


def input_refused(exc: Exception) -> CliError:
    """A library's "cannot use this input" as a CLI error, typed by its cause.

    Missing or unreadable (an OSError underneath) is EX_NOINPUT, with the OS's words in
    place of "[Errno 2] ... 'path'"; anything else is the content's fault: EX_DATAERR.
    """
    cause = exc.__cause__
    if isinstance(cause, OSError):
        return NoInputError(str(exc).replace(str(cause), reason(cause)))
    return DataError(str(exc))
