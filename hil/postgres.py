"""PostgreSQL for the tests and the bench: the machine's server if one answers, else a private
cluster.

Each test session gets a database of its own, created at start and dropped at the end, so
runs (and xdist workers) never see each other's rows. The private cluster (initdb on a free
port, its socket and data in a temporary folder) runs as the `postgres` user when the tests
run as root: initdb refuses root.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import sql

from hil.broker import free_port

SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def _binary(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                                                   reverse=True)), None)  # fmt: skip
    if found is None:
        raise RuntimeError(f"{name} not found: `make deps` installs PostgreSQL")
    return found


def _as_owner(folder: Path) -> list[str]:
    """The command prefix that runs PostgreSQL's tools as a user it accepts."""
    if os.geteuid() != 0:
        return []
    shutil.chown(folder, "postgres", "postgres")
    return ["runuser", "-u", "postgres", "--"]


@contextlib.contextmanager
def private_cluster() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="cupola-pg-") as tmp:
        folder = Path(tmp)
        os.chmod(folder, 0o755)
        data = folder / "data"
        data.mkdir()
        prefix = _as_owner(data)
        _as_owner(folder)
        port = free_port()
        subprocess.run([*prefix, _binary("initdb"), "-D", str(data), "-U", "postgres",
                        "--auth=trust", "--no-sync"], check=True, capture_output=True)  # fmt: skip
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(folder / "log")
        subprocess.run([*prefix, _binary("pg_ctl"), "-D", str(data), "-o", options, "-w",
                        "-l", log, "start"], check=True, capture_output=True)  # fmt: skip
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run([*prefix, _binary("pg_ctl"), "-D", str(data), "-m", "immediate",
                            "stop"], check=False, capture_output=True)  # fmt: skip


@contextlib.contextmanager
def server() -> Iterator[str]:
    """The maintenance URL of a running server: the machine's, or a private one."""
    try:
        with psycopg.connect(SERVER, connect_timeout=3):
            pass
    except psycopg.OperationalError:
        with private_cluster() as url:
            yield url
    else:
        yield SERVER


@contextlib.contextmanager
def session_database() -> Iterator[str]:
    """A fresh database for this test session, dropped afterwards."""
    with server() as admin:
        name = f"cupola_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield admin.rsplit("/", 1)[0] + f"/{name}"
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
