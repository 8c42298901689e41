"""`stagebot history`: what the recorded runs say about each service and tier over a window."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from bot.commands.base import Command, CommandContext, parse_since
from bot.commands.db import store_settings
from bot.errors import UsageError
from bot.store import HistoryReport, open_store, to_iso


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--service", metavar="NAME", help="only this service")
    parser.add_argument("--since", default="24h", metavar="SPAN", help="window: 30m, 24h, 7d, 2w (default: 24h)")
    parser.add_argument("--limit", type=int, default=20, metavar="N", help="recent runs to list (default: 20)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")


def _run(args: argparse.Namespace, context: CommandContext) -> int:
    span = parse_since(args.since)
    if args.limit < 0:
        raise UsageError(f"--limit: expected a number >= 0, got {args.limit}")
    store = open_store(None, context.environ, store_settings(args, context))
    try:
        now = datetime.now(UTC)
        report = store.history(since=now - span, until=now, service=args.service, limit=args.limit)
    finally:
        store.close()
    if args.json:
        context.out(json.dumps(history_to_json(report), indent=2))
    else:
        context.out(render_history(report, args.since))
    return 0


def history_to_json(report: HistoryReport) -> dict[str, Any]:
    """Return the `history --json` object (a contract: field names are read by other tools)."""
    return {
        "since": to_iso(report.since),
        "until": to_iso(report.until),
        "services": [
            {
                "name": s.name,
                "samples": s.samples,
                "uptime": None if s.uptime is None else round(s.uptime, 4),
                "counts": s.counts,
                "latency_p50_ms": s.latency_p50_ms,
                "latency_p95_ms": s.latency_p95_ms,
                "state": s.state,
                "last_change": None
                if s.last_change is None
                else {
                    "at": to_iso(s.last_change.at),
                    "from": s.last_change.from_state,
                    "to": s.last_change.to_state,
                    "run_id": s.last_change.run_id,
                },
            }
            for s in report.services
        ],
        "tiers": [
            {
                "name": t.name,
                "runs": t.runs,
                "passed": t.passed,
                "pass_rate": None if t.pass_rate is None else round(t.pass_rate, 4),
                "last_verdict": t.last_verdict,
                "last_run_id": t.last_run_id,
                "last_run_at": _iso_or_none(t.last_run_at),
            }
            for t in report.tiers
        ],
        "runs": [
            {
                "id": r.id,
                "kind": r.kind,
                "target": r.target,
                "state": r.state,
                "verdict": r.verdict,
                "started_at": _iso_or_none(r.started_at),
                "finished_at": _iso_or_none(r.finished_at),
                "summary": r.summary,
            }
            for r in report.runs
        ],
    }


def render_history(report: HistoryReport, span: str) -> str:
    """Return the terminal tables: services, tiers (when any ran), recent runs."""
    sections = [f"History over the last {span} (since {to_iso(report.since)})", ""]
    if report.services:
        service_rows: list[tuple[str, ...]] = [
            (
                s.name,
                "-" if s.uptime is None else f"{s.uptime:.1%}",
                _ms(s.latency_p50_ms),
                _ms(s.latency_p95_ms),
                str(s.samples),
                s.state or "-",
                "-"
                if s.last_change is None
                else f"{s.last_change.from_state} -> {s.last_change.to_state} at {to_iso(s.last_change.at)}",
            )
            for s in report.services
        ]
        sections += _table(("SERVICE", "UPTIME", "P50", "P95", "PROBES", "NOW", "LAST CHANGE"), service_rows)
    else:
        sections.append("No probe results recorded in this window (run `stagebot status`).")
    if report.tiers:
        tier_rows: list[tuple[str, ...]] = [
            (t.name, str(t.runs), "-" if t.pass_rate is None else f"{t.pass_rate:.0%}", t.last_verdict or "-")
            for t in report.tiers
        ]
        sections += ["", *_table(("TIER", "RUNS", "PASS RATE", "LAST VERDICT"), tier_rows)]
    if report.runs:
        run_rows: list[tuple[str, ...]] = [
            (str(r.id), r.kind, r.target or "-", r.state, _iso_or_none(r.started_at) or "-", _shorten(r.summary, 60))
            for r in report.runs
        ]
        sections += ["", *_table(("RUN", "KIND", "TARGET", "STATE", "STARTED", "SUMMARY"), run_rows)]
    return "\n".join(sections)


def _table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [headers, *rows]]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def _iso_or_none(moment: datetime | None) -> str | None:
    return None if moment is None else to_iso(moment)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


COMMAND = Command(
    add_arguments=_add_arguments,
    run=_run,
)
