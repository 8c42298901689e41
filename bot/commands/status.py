"""`stagebot status`: probe every service once, print a table or JSON, exit 0 only when all are up."""

from __future__ import annotations

import argparse
import asyncio
import json

from bot.commands.base import Command, CommandContext
from bot.commands.db import cli_user
from bot.status import check_status, render_status_table, status_exit_code, status_to_json
from bot.store import open_store, recording


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--no-record", action="store_true", help="do not record this run in the store")


def _run(args: argparse.Namespace, context: CommandContext) -> int:
    config = context.load_config(args.config)
    # The run is stored before any probe starts, so a crash leaves a row to mark interrupted, not nothing.
    store = None if args.no_record else open_store(None, context.environ, config.store)
    try:
        user = cli_user(context.environ)
        with recording(store, kind="status", target=None, requested_by=user, origin="cli") as run_id:
            report = asyncio.run(check_status(config))
            if store is not None and run_id is not None:
                store.finish_status_run(run_id, report)
    finally:
        if store is not None:
            store.close()
    if args.json:
        context.out(json.dumps(status_to_json(report), indent=2))
    else:
        context.out(render_status_table(report, colour=context.is_terminal))
    return status_exit_code(report)


COMMAND = Command(
    add_arguments=_add_arguments,
    run=_run,
)
