"""`stagebot db upgrade`, and how every command finds the store from the command line."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from bot.commands.base import Command, CommandContext
from bot.config import StoreSettings, resolve_config_path
from bot.store import open_store_with_schema


def store_settings(args: argparse.Namespace, context: CommandContext) -> StoreSettings:
    """Return `[store]` from the config when one is named or present; the defaults otherwise.

    `history` and `db` need no services, so a missing `./stagebot.toml` is no error for them.
    """
    named = bool(args.config or context.environ.get("STAGEBOT_CONFIG"))
    if named or resolve_config_path(None, context.environ, context.cwd).exists():
        return context.load_config(args.config).store
    return StoreSettings()


def cli_user(environ: Mapping[str, str]) -> str:
    """Return who is running a command, as recorded in a run's `requested_by`."""
    return environ.get("USER") or environ.get("LOGNAME") or "unknown"


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["upgrade"], help="upgrade: migrate the database to this stagebot's schema")


def _run(args: argparse.Namespace, context: CommandContext) -> int:
    store, change = open_store_with_schema(None, context.environ, store_settings(args, context))
    try:
        where = store.engine.url.render_as_string(hide_password=True)
        if change.changed:
            context.out(f"{where}: upgraded the schema from {change.before or 'empty'} to {change.after}")
        else:
            context.out(f"{where}: schema already at {change.after}")
    finally:
        store.close()
    return 0


COMMAND = Command(
    add_arguments=_add_arguments,
    run=_run,
)
