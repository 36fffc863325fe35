"""Opening the archive database for a ground tool: one clear line when it cannot be."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from tools.exits import UnavailableError, UsageError

CONNECT_TIMEOUT_S = 5


def describe(url: str) -> str:
    """Where, without the password."""
    info = conninfo_to_dict(url)
    where = f"{info.get('host', 'localhost')}:{info.get('port', 5432)}"
    return f"database {info.get('dbname', '?')!r} on {where}"


def check_url(url: str) -> str:
    try:
        conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise UsageError(f"--db: not a PostgreSQL URL: {str(exc).strip()}") from None
    return url


def connect(url: str) -> psycopg.Connection[Any]:
    check_url(url)
    try:
        return psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True)
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnavailableError(f"cannot reach {describe(url)}: {first}") from None
