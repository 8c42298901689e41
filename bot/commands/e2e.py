"""`stagebot e2e list | run TIER | history TIER`: run test tiers and say whether a green run can be trusted.

Exit codes of `run`: 0 passed, 1 failed, 3 untrusted, 4 incomplete, 2 usage or config error; `run all` exits with the
worst verdict among its tiers. A tier name from the command line is only ever looked up in the config.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

from bot.commands.base import Command, CommandContext
from bot.config import Config, TierConfig
from bot.errors import UsageError
from bot.redaction import Redactor
from bot.store import Store, open_store
from suites.engine import TierEngine, status_probe
from suites.events import Event, EventCallback, Progress, TestPhase, advance, phase_category
from suites.flakiness import find_flaky
from suites.history import NO_HISTORY
from suites.report import TierReport, render_progress, render_summary, report_to_json, stored_run_state
from suites.runner import TierRunner, check_tier
from suites.verdict import EXIT_CODES, VerdictState

ALL = "all"
# `run all` exits with the worst verdict; severity, not the exit code's number, decides which is worst.
_SEVERITY = (VerdictState.PASSED, VerdictState.UNTRUSTED, VerdictState.FAILED, VerdictState.INCOMPLETE)
_PROGRESS_EVERY_S = 0.1


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="e2e_action", metavar="ACTION", parser_class=type(parser))
    actions.required = True
    listing = actions.add_parser("list", help="list the configured tiers")
    listing.add_argument("--json", action="store_true", help="print one JSON array")
    run = actions.add_parser("run", help="run a tier (or `all`) and judge it")
    run.add_argument("tier", help="a tier name from the config, or `all`")
    run.add_argument("--json", action="store_true", help="print one JSON object (a list of them for `all`)")
    run.add_argument("--no-record", action="store_true", help="neither record this run nor read tier history")
    history = actions.add_parser("history", help="a tier's recent runs and flaky tests")
    history.add_argument("tier", help="a tier name from the config")
    history.add_argument("--limit", type=int, default=20, help="how many runs (default 20)")
    history.add_argument("--json", action="store_true", help="print one JSON object")


def select_tiers(config: Config, name: str) -> list[TierConfig]:
    """Return the tiers a name selects, or raise UsageError listing the known ones."""
    if name == ALL:
        if not config.tiers:
            raise UsageError(f"no tiers configured in {config.source} (add a [tiers.NAME] table)")
        return list(config.tiers.values())
    if name not in config.tiers:
        known = ", ".join([*sorted(config.tiers), ALL]) if config.tiers else f"none configured in {config.source}"
        raise UsageError(f"unknown tier {name!r} (known: {known})")
    return [config.tiers[name]]


def _run(args: argparse.Namespace, context: CommandContext) -> int:
    config = context.load_config(args.config)
    if args.e2e_action == "list":
        return _list(config, args.json, context)
    if args.e2e_action == "history":
        return _history(config, select_tiers(config, args.tier)[0], args.limit, args.json, context)
    tiers = select_tiers(config, args.tier)
    for tier in tiers:
        check_tier(tier)  # a missing root or interpreter is exit 2 before anything runs
    store = None if args.no_record else open_store(None, context.environ, config.store)
    try:
        reports = asyncio.run(_run_tiers(config, tiers, store, args.json, context))
    finally:
        if store is not None:
            store.close()
    if args.json:
        objects = [report_to_json(r) for r in reports]
        context.out(json.dumps(objects[0] if args.tier != ALL else objects, indent=2))
    worst = max((r.verdict.state for r in reports), key=_SEVERITY.index)
    return EXIT_CODES[worst]


async def _run_tiers(
    config: Config, tiers: Sequence[TierConfig], store: Store | None, quiet: bool, context: CommandContext
) -> list[TierReport]:
    engine = TierEngine(TierRunner(Redactor(config.secrets), environ=context.environ), status_probe(config))
    view = _ProgressView(context, live=context.is_terminal and not quiet, plain=not quiet)
    limit = asyncio.Semaphore(config.e2e.max_parallel)
    user = context.environ.get("USER") or context.environ.get("LOGNAME") or "unknown"

    async def one(tier: TierConfig) -> TierReport:
        async with limit:
            history = store.tier_history(tier.name) if store is not None else NO_HISTORY
            run_id = None
            if store is not None:  # stored before pytest starts, so a crash leaves a row to mark interrupted
                run_id = store.create_run(kind="tier", target=tier.name, requested_by=user, origin="cli")
            try:
                report = await engine.run(tier, history=history, run_id=run_id, on_event=view.watch(tier.name))
            except BaseException as exc:
                if store is not None and run_id is not None:
                    cancelled = isinstance(exc, asyncio.CancelledError | KeyboardInterrupt)
                    state, why = ("cancelled", "cancelled") if cancelled else ("interrupted", type(exc).__name__)
                    store.finish_run(run_id, state=state, summary=f"stopped before it finished: {why}")
                raise
            if store is not None and run_id is not None:
                store.record_test_results(run_id, report.results)
                store.finish_run(
                    run_id,
                    state=stored_run_state(report),
                    verdict=report.verdict.state.value,
                    summary=report.verdict.headline,
                    details=report_to_json(report),
                )
            view.done(report)
            return report

    return list(await asyncio.gather(*(one(tier) for tier in tiers)))


class _ProgressView:
    """Show runs as they go: one live line on a terminal, plain lines otherwise, nothing with --json."""

    def __init__(self, context: CommandContext, *, live: bool, plain: bool) -> None:
        self._context = context
        self._live = live
        self._plain = plain
        self._progress: dict[str, Progress] = {}
        self._started: dict[str, float] = {}
        self._shown_at = 0.0

    def watch(self, tier: str) -> EventCallback:
        self._progress[tier] = Progress()
        self._started[tier] = time.monotonic()
        if self._plain and not self._live:
            self._context.out(f"[{tier}] running")

        def on_event(event: Event) -> None:
            self._progress[tier] = advance(self._progress[tier], event)
            if self._live:
                self._draw(tier)
            elif self._plain and isinstance(event, TestPhase) and phase_category(event) in ("failed", "errors"):
                label = "FAILED" if phase_category(event) == "failed" else "ERROR"
                self._context.out(f"[{tier}] {label} {event.nodeid} ({event.when})")

        return on_event

    def _draw(self, tier: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._shown_at < _PROGRESS_EVERY_S:
            return
        self._shown_at = now
        line = render_progress(tier, self._progress[tier], now - self._started[tier])
        self._context.stdout.write("\r\x1b[K" + line)
        self._context.stdout.flush()

    def done(self, report: TierReport) -> None:
        if self._live:
            self._context.stdout.write("\r\x1b[K")
        if self._plain:
            self._context.out(render_summary(report))


def _list(config: Config, as_json: bool, context: CommandContext) -> int:
    rows = [
        {
            "name": t.name,
            "paths": list(t.paths),
            "root": str(t.root),
            "depends_on": list(t.depends_on),
            "timeout_s": t.timeout_s,
            "min_test_s": t.min_test_s,
            "max_skipped_ratio": t.max_skipped_ratio,
            "impact": t.impact,
            "description": t.description,
        }
        for t in config.tiers.values()
    ]
    if as_json:
        context.out(json.dumps(rows, indent=2))
        return 0
    if not rows:
        context.out(f"no tiers configured in {config.source}")
    for t in config.tiers.values():
        needs = f"  needs {', '.join(t.depends_on)}" if t.depends_on else ""
        context.out(f"{t.name}: {' '.join(t.paths)}{needs}" + (f"  ({t.impact})" if t.impact else ""))
    return 0


def _history(config: Config, tier: TierConfig, limit: int, as_json: bool, context: CommandContext) -> int:
    if limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}")
    store = open_store(None, context.environ, config.store)
    try:
        runs = store.recent_runs(kind="tier", target=tier.name, limit=limit)
        flaky = find_flaky(store.tier_history(tier.name, limit=limit))
    finally:
        store.close()
    rows: list[dict[str, Any]] = [
        {
            "run_id": r.id,
            "started_at": r.started_at.isoformat(timespec="seconds") if r.started_at else None,
            "state": r.state,
            "verdict": r.verdict,
            "summary": r.summary,
            "counts": r.details.get("counts"),
            "reasons": [reason.get("code") for reason in r.details.get("reasons", [])],
            "duration_s": r.details.get("duration_s"),
        }
        for r in runs
    ]
    flaky_rows = [
        {"nodeid": f.nodeid, "flip_rate": round(f.flip_rate, 3), "runs": f.runs, "failures": f.failures}
        for f in sorted(flaky.values(), key=lambda f: -f.flip_rate)
    ]
    if as_json:
        context.out(json.dumps({"tier": tier.name, "runs": rows, "flaky": flaky_rows}, indent=2))
        return 0
    if not rows:
        context.out(f"{tier.name}: no recorded runs yet")
    for row in rows:
        reasons = f" [{', '.join(row['reasons'])}]" if row["reasons"] else ""
        verdict = row["verdict"] or row["state"]
        context.out(f"#{row['run_id']} {row['started_at']} {verdict:<10} {row['summary']}{reasons}")
    for f in flaky_rows:
        context.out(f"flaky: {f['nodeid']} flipped {f['flip_rate']:.0%} of {f['runs']} runs")
    return 0


COMMAND = Command(
    add_arguments=_add_arguments,
    run=_run,
)
