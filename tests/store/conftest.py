"""One store per test, on a SQLite file in tmp_path and on the machine's PostgreSQL (a fresh schema per test)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import StoreSettings
from bot.store import Store, open_store


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL no other test uses: a new SQLite file, or a new PostgreSQL schema in the session's database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store' / 'stagebot.sqlite3'}"
        return
    import psycopg

    database_url: str = request.getfixturevalue("postgres_database_url")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        # Every connection (ours, and those of the stagebot subprocesses a test starts) sees only this schema.
        yield f"{database_url}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url, {}, StoreSettings())
    try:
        yield opened
    finally:
        opened.close()
