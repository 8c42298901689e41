"""Every `stagebot` subcommand, in the order `--help` lists them.

A command's module is imported only when that command runs: the Google and database libraries cost seconds to
import, and `stagebot status` or `--help` should not pay for `diagnose` or `db`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from bot.commands.base import Command


@dataclass(frozen=True)
class CommandEntry:
    """A subcommand as `--help` lists it, and the module that implements it (its `COMMAND`)."""

    name: str
    help: str
    module: str
    attribute: str = "COMMAND"

    def load(self) -> Command:
        command: Command = getattr(importlib.import_module(self.module), self.attribute)
        return command


COMMANDS: tuple[CommandEntry, ...] = (
    CommandEntry(
        "status",
        "probe every service and print up / degraded / down (exit 0 all up, 1 otherwise, 2 bad config)",
        "bot.commands.status",
    ),
    CommandEntry(
        "diagnose",
        "diagnose one service on Cloud Run: conditions, what changed, logs, causes (exit 0 fine, 1 problem)",
        "bot.commands.diagnose",
    ),
    CommandEntry(
        "history",
        "what recorded runs say: per-service uptime and latency, per-tier pass rate, recent runs",
        "bot.commands.history",
    ),
    CommandEntry(
        "e2e",
        "run test tiers with honest verdicts (exit 0 passed, 1 failed, 3 untrusted, 4 incomplete, 2 bad usage)",
        "bot.commands.e2e",
    ),
    CommandEntry(
        "audit",
        "who did what: offers, clicks, decisions, Cloud Run calls and outcomes, from the append-only log",
        "bot.commands.audit",
    ),
    CommandEntry(
        "actions",
        "remediation offers still waiting for an approver's click",
        "bot.commands.audit",
        "ACTIONS",
    ),
    CommandEntry(
        "serve",
        "run the Slack bot: HTTP on --port/$PORT/3000, or Socket Mode with --socket",
        "bot.commands.serve",
    ),
    CommandEntry(
        "demo",
        "show the whole product against a local sandbox staging (no Slack, no cloud account)",
        "bot.commands.demo",
    ),
    CommandEntry(
        "db",
        "manage the store: `db upgrade` migrates it (also done on every open)",
        "bot.commands.db",
    ),
)
