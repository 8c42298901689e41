"""Bring a database to this stagebot's schema with the Alembic migrations shipped in `bot/store/migrations`.

Run in-process (no alembic.ini): on every open and by `stagebot db upgrade`. Two processes opening a fresh database at
once must not both create the tables, so the check and the upgrade run in one transaction under a lock: SQLite's write
lock (`BEGIN IMMEDIATE`), a PostgreSQL advisory lock. A database stamped by a newer stagebot is refused, never
downgraded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from bot.errors import UsageError

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest revision in MIGRATIONS. A database already at it is opened without importing Alembic (~0.15 s of every
# command's start-up); tests/store checks this constant against the migration scripts.
HEAD_REVISION = "0001"
# Any constant will do, as long as every stagebot process uses the same one.
_POSTGRES_MIGRATION_LOCK = 0x5374_6167_6562_6F74  # "Stagebot"


class SchemaTooNewError(UsageError):
    """The database was migrated by a newer stagebot than this one."""


@dataclass(frozen=True)
class SchemaChange:
    before: str | None  # None: an empty database
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


def _alembic_config() -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    """Return the newest schema revision this stagebot knows, from the migration scripts."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None, "bot/store/migrations has no revisions"
    return head


def current_revision(connection: sa.Connection) -> str | None:
    """Return the revision the database is stamped with, or None when it has none."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def upgrade_schema(engine: sa.Engine, where: str) -> SchemaChange:
    """Migrate the database to the newest revision; refuse one stamped by a newer stagebot."""
    if _is_at_head(engine):
        return SchemaChange(before=HEAD_REVISION, after=HEAD_REVISION)
    from alembic import command
    from alembic.script import ScriptDirectory

    config = _alembic_config()
    script = ScriptDirectory.from_config(config)
    head = head_revision()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _POSTGRES_MIGRATION_LOCK})
        before = current_revision(connection)
        if before is not None and before not in {rev.revision for rev in script.walk_revisions()}:
            raise SchemaTooNewError(
                f"{where} has schema revision {before!r}, newer than this stagebot knows (newest: {head!r}); "
                "upgrade stagebot to use it: stagebot never downgrades a database"
            )
        if before != head:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    return SchemaChange(before=before, after=head)


def _is_at_head(engine: sa.Engine) -> bool:
    """Return whether the database is stamped with HEAD_REVISION (read with plain SQL, no Alembic)."""
    try:
        with engine.connect() as connection:
            stamped = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    except sa.exc.ProgrammingError:
        return False  # PostgreSQL: no alembic_version table yet
    except sa.exc.OperationalError as exc:
        if "no such table" in str(exc):
            return False  # SQLite: a fresh database
        raise
    return stamped == [HEAD_REVISION]
