"""Bring a database to this stagebot's schema with the Alembic migrations shipped in `bot/store/migrations`.

Run in-process (no alembic.ini): on every open and by `stagebot db upgrade`. Two processes opening a fresh database at
once must not both create the tables, so the check and the upgrade run in one transaction under a lock: SQLite's write
lock (`BEGIN IMMEDIATE`), a PostgreSQL advisory lock. A database stamped by a newer stagebot is refused, never
downgraded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from bot.errors import UsageError

MIGRATIONS = Path(__file__).parent / "migrations"
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
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    """Return the newest schema revision this stagebot knows."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None, "bot/store/migrations has no revisions"
    return head


def current_revision(connection: sa.Connection) -> str | None:
    """Return the revision the database is stamped with, or None when it has none."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade_schema(engine: sa.Engine, where: str) -> SchemaChange:
    """Migrate the database to the newest revision; refuse one stamped by a newer stagebot."""
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
