"""The result of one tier run as every consumer sees it, and its pure renderings (JSON, terminal text).

`TierReport` is what the CLI prints, the store records and Slack posts: counts as pytest gives them, the verdict with
its reasons, failures (with flaky-test notes), skips grouped by reason, the slowest tests and one record per test.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from suites.events import (
    CollectionError,
    CollectionSkipped,
    Counts,
    Event,
    Progress,
    TestPhase,
    count_events,
    phase_category,
)
from suites.flakiness import FlakyTest
from suites.history import TestResultRecord
from suites.verdict import DependencyCheck, Verdict, VerdictState

SLOWEST = 5


@dataclass(frozen=True)
class Failure:
    nodeid: str
    message: str
    flaky: FlakyTest | None = None


@dataclass(frozen=True)
class SlowTest:
    nodeid: str
    duration_s: float


@dataclass(frozen=True)
class TierReport:
    """One finished tier run."""

    tier: str
    run_id: int | None
    verdict: Verdict
    counts: Counts
    duration_s: float
    exit_code: int | None
    failures: tuple[Failure, ...]
    slowest: tuple[SlowTest, ...]
    skips: Mapping[str, tuple[str, ...]]  # skip reason -> node ids
    results: tuple[TestResultRecord, ...]
    dependencies: tuple[DependencyCheck, ...] = ()
    impact: str = ""
    output_tail: str = ""


def build_report(
    *,
    tier: str,
    run_id: int | None,
    events: Sequence[Event],
    verdict: Verdict,
    duration_s: float,
    exit_code: int | None,
    flaky: Mapping[str, FlakyTest],
    dependencies: Sequence[DependencyCheck] = (),
    impact: str = "",
    output_tail: str = "",
) -> TierReport:
    """Return the report on one run from its events and verdict."""
    results = to_results(events)
    failures = [Failure(r.nodeid, r.message, flaky.get(r.nodeid)) for r in results if r.outcome in ("failed", "error")]
    skips: dict[str, list[str]] = {}
    for r in results:
        if r.outcome == "skipped":
            skips.setdefault(r.message.removeprefix("Skipped: "), []).append(r.nodeid)
    calls = [e for e in events if isinstance(e, TestPhase) and e.when == "call"]
    slowest = sorted(calls, key=lambda p: p.duration_s, reverse=True)[:SLOWEST]
    return TierReport(
        tier=tier,
        run_id=run_id,
        verdict=verdict,
        counts=count_events(events),
        duration_s=duration_s,
        exit_code=exit_code,
        failures=tuple(failures),
        slowest=tuple(SlowTest(p.nodeid, p.duration_s) for p in slowest),
        skips={reason: tuple(ids) for reason, ids in skips.items()},
        results=results,
        dependencies=tuple(dependencies),
        impact=impact,
        output_tail=output_tail,
    )


def to_results(events: Sequence[Event]) -> tuple[TestResultRecord, ...]:
    """Return one stored record per test: the call's outcome, or the phase that failed or skipped first."""
    found: dict[str, TestResultRecord] = {}
    for event in events:
        if isinstance(event, CollectionError):
            lines = event.message.strip().splitlines() or [""]
            found[event.nodeid] = TestResultRecord(event.nodeid, "error", 0.0, lines[-1].removeprefix("E").strip())
        elif isinstance(event, CollectionSkipped):
            found[event.nodeid] = TestResultRecord(event.nodeid, "skipped", 0.0, event.reason)
        elif isinstance(event, TestPhase):
            category = phase_category(event)
            if category is None:
                continue
            outcome = {"errors": "error", "passed": "xpassed" if event.wasxfail is not None else "passed"}.get(
                category, category
            )
            message = event.message or event.skip_reason or event.wasxfail or ""
            earlier = found.get(event.nodeid)
            if earlier is not None and earlier.outcome in ("failed", "error", "skipped", "xfailed"):
                continue  # a teardown after a failed call does not replace the call's failure
            found[event.nodeid] = TestResultRecord(event.nodeid, outcome, event.duration_s, _short(message))
    return tuple(found.values())


def _short(message: str, limit: int = 500) -> str:
    text = message.strip()
    return text if len(text) <= limit else text[:limit] + " [...]"


def stored_run_state(report: TierReport) -> str:
    """Return the state a tier run is stored with: an incomplete run stays out of the history verdicts compare with."""
    if report.verdict.state is not VerdictState.INCOMPLETE:
        return "finished"
    return "cancelled" if report.verdict.headline.startswith("cancelled") else "interrupted"


def report_to_json(report: TierReport) -> dict[str, Any]:
    """Return the `e2e run --json` object (a contract: README, "stagebot e2e")."""
    c = report.counts
    return {
        "tier": report.tier,
        "run_id": report.run_id,
        "verdict": report.verdict.state.value,
        "reasons": [{"code": r.code, "detail": r.detail, "tests": list(r.tests)} for r in report.verdict.reasons],
        "counts": {
            "collected": c.collected,
            "passed": c.passed,
            "failed": c.failed,
            "errors": c.errors,
            "skipped": c.skipped,
            "xfailed": c.xfailed,
            "deselected": c.deselected,
        },
        "duration_s": round(report.duration_s, 3),
        "exit_code": report.exit_code,
        "failures": [{"nodeid": f.nodeid, "message": _with_flaky_note(f)} for f in report.failures],
        "slowest": [{"nodeid": s.nodeid, "duration_s": round(s.duration_s, 3)} for s in report.slowest],
    }


def _with_flaky_note(failure: Failure) -> str:
    return failure.message if failure.flaky is None else f"{failure.message} ({failure.flaky.note})"


def render_counts(counts: Counts) -> str:
    parts = [f"{counts.passed} passed", f"{counts.failed} failed"]
    extra = (counts.errors, "errors"), (counts.skipped, "skipped"), (counts.xfailed, "xfailed")
    parts += [f"{n} {label}" for n, label in (*extra, (counts.deselected, "deselected")) if n]
    return ", ".join(parts)


def render_progress(tier: str, progress: Progress, elapsed_s: float, width: int = 100) -> str:
    """Return one progress line: done / selected, counts, elapsed, the test running now."""
    c = progress.counts
    total = "?" if progress.selected is None else str(progress.selected)
    line = f"[{tier}] {c.finished + c.errors}/{total}  {render_counts(c)}  {elapsed_s:.1f}s"
    if progress.current:
        line += f"  {progress.current}"
    return line if len(line) <= width else line[: width - 3] + "..."


def render_summary(report: TierReport) -> str:
    """Return the human summary of a finished run: verdict, counts, reasons, failures, skips, slowest."""
    verdict = report.verdict
    run = f" (run {report.run_id})" if report.run_id is not None else ""
    lines = [
        f"{report.tier}{run}: {verdict.state.value.upper()} - {verdict.headline}",
        f"  {render_counts(report.counts)} of {report.counts.collected} collected in {report.duration_s:.1f}s"
        f" (pytest exit {report.exit_code})",
    ]
    if report.impact and verdict.state.value != "passed":
        lines.append(f"  impact: {report.impact}")
    for reason in verdict.reasons:
        lines.append(f"  ! {reason.code}: {reason.detail}")
        lines += [f"      {nodeid}" for nodeid in reason.tests[:10]]
        if len(reason.tests) > 10:
            lines.append(f"      ... and {len(reason.tests) - 10} more")
    for failure in report.failures[:20]:
        lines.append(f"  x {failure.nodeid}: {_with_flaky_note(failure).splitlines()[0] if failure.message else ''}")
    for why, nodeids in report.skips.items():
        lines.append(f"  - skipped {len(nodeids)} x {why}")
    if report.slowest and report.counts.passed + report.counts.failed:
        lines.append("  slowest: " + ", ".join(f"{s.nodeid} {s.duration_s:.2f}s" for s in report.slowest[:3]))
    return "\n".join(lines)
