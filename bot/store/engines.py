"""Which database, and an engine tuned for it.

The URL: an explicit one (a command-line override), else `$DATABASE_URL`, else `[store] url`, else a SQLite file at
`$STAGEBOT_HOME/stagebot.sqlite3`, else `$XDG_DATA_HOME/stagebot/stagebot.sqlite3`, else
`~/.local/share/stagebot/stagebot.sqlite3` (created on first use).

SQLite is opened in WAL mode with a busy timeout, and every write transaction starts with `BEGIN IMMEDIATE`: a
deferred transaction that reads and then writes can fail at once with "database is locked" when another process holds
the write lock, whatever the busy timeout (https://www.sqlite.org/lang_transaction.html). Taking the lock up front
makes the second writer wait its turn instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import ConnectionPoolEntry

from bot.errors import UsageError

SQLITE_FILE_NAME = "stagebot.sqlite3"
BUSY_TIMEOUT_S = 30.0
# A connection opened with this execution option reads without taking SQLite's write lock.
READ_ONLY = "stagebot_read_only"


def default_sqlite_path(environ: Mapping[str, str], home: Path) -> Path:
    """Return where the default SQLite file lives: $STAGEBOT_HOME, else $XDG_DATA_HOME/stagebot, else ~/.local/share."""
    if environ.get("STAGEBOT_HOME"):
        return Path(environ["STAGEBOT_HOME"]) / SQLITE_FILE_NAME
    if environ.get("XDG_DATA_HOME"):
        return Path(environ["XDG_DATA_HOME"]) / "stagebot" / SQLITE_FILE_NAME
    return home / ".local" / "share" / "stagebot" / SQLITE_FILE_NAME


def resolve_database_url(explicit: str | None, environ: Mapping[str, str], configured: str | None, home: Path) -> str:
    """Return the database URL to use, by the precedence in this module's docstring."""
    for candidate in (explicit, environ.get("DATABASE_URL"), configured):
        if candidate and candidate.strip():
            return candidate.strip()
    return f"sqlite:///{default_sqlite_path(environ, home)}"


def parse_database_url(text: str) -> URL:
    """Return the URL SQLAlchemy should use: `postgresql://` and `postgres://` mean psycopg 3."""
    try:
        url = make_url(text)
    except ArgumentError:
        raise UsageError(
            f"cannot use database URL {mask_url(text)!r}: not a URL (expected sqlite:///PATH or postgresql://...)"
        ) from None
    backend, _, driver = url.drivername.partition("+")
    if backend in ("postgresql", "postgres") and driver in ("", "psycopg"):
        return url.set(drivername="postgresql+psycopg")
    if backend == "sqlite" and driver in ("", "pysqlite"):
        return url
    raise UsageError(
        f"cannot use database URL {mask_url(text)!r}: unsupported scheme {url.drivername!r}"
        " (expected sqlite:///PATH or postgresql://USER@HOST/DB)"
    )


def mask_url(text: str) -> str:
    """Return a database URL fit to print: the password replaced by `***`."""
    try:
        return make_url(text).render_as_string(hide_password=True)
    except ArgumentError:
        # Not parseable as a URL: mask anything between "user:" and "@" the plain way.
        from bot.redaction import Redactor

        return Redactor().redact(text)


def describe_url(url: URL) -> str:
    """Return 'database D on host H' (or the SQLite file) for error messages; never the password."""
    if url.get_backend_name() == "sqlite":
        return f"SQLite file {url.database or ':memory:'}"
    host = url.host or "localhost"
    port = f":{url.port}" if url.port else ""
    return f"PostgreSQL database {url.database or '(default)'!r} on {host}{port} as {url.username or '(default user)'}"


def create_store_engine(url: URL) -> Engine:
    """Return an engine for `url`, creating a SQLite file's folder on first use."""
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    # pool_pre_ping: a replica outlives PostgreSQL restarts; a dead pooled connection is replaced, not raised.
    return sa.create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 5})


def _sqlite_engine(url: URL) -> Engine:
    if url.database and url.database != ":memory:":
        path = Path(url.database).expanduser()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create the folder for SQLite file {path}: {exc.strerror}") from None
        url = url.set(database=str(path))
    engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN itself (pysqlite would otherwise begin lazily, deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")  # safe in WAL mode: a power cut loses at most the last commits
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        mode = "DEFERRED" if connection.get_execution_options().get(READ_ONLY) else "IMMEDIATE"
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine
