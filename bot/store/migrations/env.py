"""Alembic's entry point, run in-process by `bot.store.schema`: always on the connection it is handed."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import bot.store.tables  # noqa: F401  (registers the tables on SQLModel.metadata)

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things: copy-and-move
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
