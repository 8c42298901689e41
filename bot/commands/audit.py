"""`stagebot audit` (who did what, from the append-only log) and `stagebot actions` (offers waiting for a click)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from bot.commands.base import Command, CommandContext, parse_since
from bot.commands.db import store_settings
from bot.errors import UsageError
from bot.store import open_store, to_iso
from bot.store.records import AuditRecord, OfferRecord


def _add_audit_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--service", metavar="NAME", help="only entries about this service")
    parser.add_argument("--since", default="7d", metavar="SPAN", help="window: 30m, 24h, 7d, 2w (default: 7d)")
    parser.add_argument("--limit", type=int, default=100, metavar="N", help="newest entries to show (default: 100)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of lines")


def audit_to_json(entries: list[AuditRecord]) -> dict[str, Any]:
    """Return the `audit --json` object: entries oldest first."""
    return {
        "entries": [
            {
                "id": e.id,
                "at": to_iso(e.at),
                "actor": e.actor,
                "action": e.action,
                "subject": e.subject,
                "detail": dict(e.detail),
            }
            for e in entries
        ]
    }


def render_audit(entries: list[AuditRecord]) -> str:
    if not entries:
        return "No audit entries in the window."
    lines = []
    for e in entries:
        detail = ", ".join(f"{k}={v}" for k, v in e.detail.items() if v not in (None, "", {}))
        lines.append(f"{e.at:%Y-%m-%d %H:%M:%S} UTC  {e.actor:<12} {e.action:<34} {e.subject}  {detail}".rstrip())
    return "\n".join(lines)


def _run_audit(args: argparse.Namespace, context: CommandContext) -> int:
    span = parse_since(args.since)
    if args.limit < 1:
        raise UsageError(f"--limit: expected a number >= 1, got {args.limit}")
    store = open_store(None, context.environ, store_settings(args, context))
    try:
        subject = f"service:{args.service}" if args.service else None
        newest_first = store.audit_entries(subject=subject, since=datetime.now(UTC) - span, limit=args.limit)
    finally:
        store.close()
    entries = list(reversed(newest_first))
    context.out(json.dumps(audit_to_json(entries), indent=2) if args.json else render_audit(entries))
    return 0


def _add_actions_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of lines")


def offers_to_json(offers: list[OfferRecord]) -> dict[str, Any]:
    """Return the `actions --json` object: the offers still waiting for a decision."""
    return {
        "pending": [
            {
                "id": o.id,
                "service": o.service,
                "action": o.action,
                "target_revision": o.target_revision,
                "target_image": o.target_image,
                "requested_by": o.requested_by,
                "created_at": to_iso(o.created_at),
                "expires_at": to_iso(o.expires_at),
                "channel": o.channel,
            }
            for o in offers
        ]
    }


def render_offers(offers: list[OfferRecord]) -> str:
    if not offers:
        return "No remediation offers are waiting for a decision."
    lines = []
    for o in offers:
        target = o.target_revision or o.target_image or ""
        lines.append(
            f"#{o.id}  {o.action:<8} {o.service:<16} {target:<30} asked by {o.requested_by}, "
            f"expires {o.expires_at:%H:%M} UTC"
        )
    return "\n".join(lines)


def _run_actions(args: argparse.Namespace, context: CommandContext) -> int:
    store = open_store(None, context.environ, store_settings(args, context))
    try:
        offers = store.pending_offers(datetime.now(UTC))
    finally:
        store.close()
    context.out(json.dumps(offers_to_json(offers), indent=2) if args.json else render_offers(offers))
    return 0


COMMAND = Command(add_arguments=_add_audit_arguments, run=_run_audit)
ACTIONS = Command(add_arguments=_add_actions_arguments, run=_run_actions)
