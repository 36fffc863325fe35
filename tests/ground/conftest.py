"""The archive's database: one per test session; every test starts with no tables."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from hil.postgres import session_database


@pytest.fixture(scope="session")
def pg_session() -> Iterator[str]:
    with session_database() as url:
        yield url


@pytest.fixture
def db(pg_session: str) -> str:
    with psycopg.connect(pg_session, autocommit=True) as conn:
        conn.execute(
            "DROP TABLE IF EXISTS cupola_stream, cupola_session, cupola_alarm_action CASCADE"
        )
    return pg_session
