"""Judge a tier run: pure code over its events, the process exit code, the tier's rules, history and dependencies.

States, worst first (the worst that applies wins):
  incomplete  timed out, cancelled, crashed, or pytest never wrote its session-finish record
  failed      a test failed or errored, a file failed to collect, or pytest's exit code says so
  untrusted   nothing failed, but a trust check fired: this green run may have tested nothing
  passed      nothing failed and no check fired
Every check that fires adds a `Reason` (a fixed `code`, a human `detail`, the test ids involved), whatever the state:
a failed run lists its reasons too.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from bot.config import TierConfig
from suites.events import (
    Collected,
    CollectionError,
    CollectionSkipped,
    Deselected,
    Event,
    SessionFinished,
    SessionStarted,
    TestPhase,
    WarningRecorded,
    count_events,
)
from suites.history import TierHistory


class VerdictState(StrEnum):
    PASSED = "passed"
    UNTRUSTED = "untrusted"
    FAILED = "failed"
    INCOMPLETE = "incomplete"


# The CLI's exit code per verdict (README, "stagebot e2e"); 2 stays for usage and config errors.
EXIT_CODES = {VerdictState.PASSED: 0, VerdictState.FAILED: 1, VerdictState.UNTRUSTED: 3, VerdictState.INCOMPLETE: 4}

REASON_CODES = (
    "no_tests_collected", "collection_errors", "skipped", "unawaited_coroutine", "unraisable_exception",
    "unmarked_async", "too_fast", "mock_fallback", "dependency_down", "fewer_tests", "warnings_disabled",
    "timeout", "crashed",
)  # fmt: skip
# Which reasons make a run incomplete or failed by themselves; every other reason makes a green run untrusted.
_INCOMPLETE_CODES = frozenset({"timeout", "crashed"})
_FAILED_CODES = frozenset({"collection_errors"})

# History needs this many earlier runs before it may judge "far below the usual".
MIN_HISTORY_RUNS = 3
# too_fast: a pass this far below its own median duration did not do the work it used to ...
TOO_FAST_FACTOR = 0.1
# ... provided the median is long enough for the difference to mean something (not timer noise).
TOO_FAST_MEDIAN_FLOOR_S = 0.05
# fewer_tests: collected below this fraction of the recent median.
FEWER_TESTS_RATIO = 0.8

_NEVER_AWAITED = re.compile(r"was never awaited")
_UNRAISABLE_CATEGORIES = frozenset({"PytestUnraisableExceptionWarning", "PytestUnhandledThreadExceptionWarning"})
# Old stacks skip an async test no plugin runs instead of failing it (pytest-signals.md).
_ASYNC_SKIP = re.compile(r"(?i)async def function|async functions are not natively supported")
# A warning filter that ignores every warning, or the ones the checks above read, blinds the verdict.
_BLINDING_CATEGORIES = frozenset(
    {"", "Warning", "builtins.Warning", "RuntimeWarning", "builtins.RuntimeWarning", "PytestUnraisableExceptionWarning"}
    | {"pytest.PytestUnraisableExceptionWarning", "_pytest.warning_types.PytestUnraisableExceptionWarning"}
)
_EXIT_MEANINGS = {2: "interrupted", 3: "internal error", 4: "usage error"}


@dataclass(frozen=True)
class Reason:
    code: str
    detail: str
    tests: tuple[str, ...] = ()


@dataclass(frozen=True)
class DependencyCheck:
    """A dependency's state when probed just before or just after the run."""

    service: str
    when: str  # "before" | "after"
    state: str  # "up" | "degraded" | "down"
    detail: str = ""


@dataclass(frozen=True)
class Verdict:
    state: VerdictState
    reasons: tuple[Reason, ...]
    headline: str  # one human line: what happened

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.state]

    def has(self, code: str) -> bool:
        return any(r.code == code for r in self.reasons)


def judge(
    events: Sequence[Event],
    *,
    exit_code: int | None,
    tier: TierConfig,
    history: TierHistory,
    dependencies: Sequence[DependencyCheck] = (),
    timed_out: bool = False,
    cancelled: bool = False,
    output_tail: str = "",
) -> Verdict:
    """Return the verdict on one run."""
    counts = count_events(events)
    finished = any(isinstance(e, SessionFinished) for e in events)
    phases = [e for e in events if isinstance(e, TestPhase)]
    anything_failed = counts.failed > 0 or counts.errors > 0 or exit_code in (1, 6)
    reasons = [
        *_incomplete_reasons(exit_code, finished, timed_out, cancelled, output_tail),
        *_collection_reasons(events, exit_code, history),
        *_skip_reasons(events, tier.max_skipped_ratio),
        *_warning_reasons(events, phases),
        *_speed_reasons(phases, tier.min_test_s, history),
        *_mock_reasons(events, tier.mock_markers),
    ]
    if not anything_failed and finished:
        reasons.extend(_dependency_reasons(dependencies))
    reasons.sort(key=lambda r: REASON_CODES.index(r.code))

    codes = {r.code for r in reasons}
    if cancelled or codes & _INCOMPLETE_CODES:
        state = VerdictState.INCOMPLETE
    elif anything_failed or codes & _FAILED_CODES:
        state = VerdictState.FAILED
    elif reasons:
        state = VerdictState.UNTRUSTED
    else:
        state = VerdictState.PASSED
    return Verdict(state, tuple(reasons), _headline(state, counts.failed, counts.errors, exit_code, cancelled, reasons))


def _headline(
    state: VerdictState, failed: int, errors: int, exit_code: int | None, cancelled: bool, reasons: list[Reason]
) -> str:
    if cancelled:
        return "cancelled before pytest finished"
    if state is VerdictState.INCOMPLETE:
        return reasons[0].detail
    if state is VerdictState.FAILED:
        if failed or errors:
            return f"{failed} failed, {errors} errors"
        if exit_code == 6:
            return "pytest exited 6: more warnings than --max-warnings allows"
        return f"pytest exited {exit_code}"
    if state is VerdictState.UNTRUSTED:
        return "nothing failed, but this run cannot be trusted: " + ", ".join(r.code for r in reasons)
    return "every test passed and no trust check fired"


def _incomplete_reasons(
    exit_code: int | None, finished: bool, timed_out: bool, cancelled: bool, output_tail: str
) -> Iterable[Reason]:
    if timed_out:
        yield Reason("timeout", "the tier ran past its timeout_s and was stopped")
        return
    if cancelled:
        return
    last_line = next((line.strip() for line in reversed(output_tail.splitlines()) if line.strip()), "")
    said = f"; last output: {last_line[:300]}" if last_line else ""
    if exit_code is not None and exit_code < 0:
        yield Reason("crashed", f"pytest was killed by signal {-exit_code}{said}")
    elif exit_code in _EXIT_MEANINGS:
        yield Reason("crashed", f"pytest exited {exit_code} ({_EXIT_MEANINGS[exit_code]}){said}")
    elif exit_code not in (0, 1, 5, 6):
        yield Reason("crashed", f"pytest exited with unexpected code {exit_code}{said}")
    elif not finished:
        yield Reason("crashed", f"pytest exited {exit_code} without finishing its session{said}")


def _collection_reasons(events: Sequence[Event], exit_code: int | None, history: TierHistory) -> Iterable[Reason]:
    errors = [e for e in events if isinstance(e, CollectionError)]
    if errors:
        yield Reason(
            "collection_errors",
            f"{len(errors)} file(s) failed to collect; their tests never ran (first: {_last_line(errors[0].message)})",
            tuple(e.nodeid for e in errors),
        )
    collected = [e for e in events if isinstance(e, Collected)]
    selected = collected[-1].count if collected else None
    if selected == 0 or exit_code == 5:
        yield Reason("no_tests_collected", "pytest selected no test to run")
    if selected is not None and len(history.collected_counts) >= MIN_HISTORY_RUNS:
        total = selected + sum(len(e.nodeids) for e in events if isinstance(e, Deselected))
        usual = statistics.median(history.collected_counts)
        if total < usual * FEWER_TESTS_RATIO:
            yield Reason(
                "fewer_tests",
                f"collected {total} tests, well below this tier's recent median of {usual:g}",
            )


def _skip_reasons(events: Sequence[Event], max_ratio: float) -> Iterable[Reason]:
    module_skips = [e for e in events if isinstance(e, CollectionSkipped)]
    test_skips = [e for e in events if isinstance(e, TestPhase) and e.outcome == "skipped" and e.wasxfail is None]
    collected = [e for e in events if isinstance(e, Collected)]
    total = (collected[-1].count if collected else 0) + len(module_skips)
    skipped = len(module_skips) + len(test_skips)
    if not total or not skipped or skipped / total <= max_ratio:
        return
    why: dict[str, int] = {}
    for reason in [e.reason for e in module_skips] + [e.skip_reason or "" for e in test_skips]:
        why[reason] = why.get(reason, 0) + 1
    grouped = "; ".join(f"{count} x {text.removeprefix('Skipped: ')[:200]}" for text, count in why.items())
    extreme = "every test skipped" if skipped >= total else f"{skipped} of {total} skipped"
    yield Reason(
        "skipped",
        f"{extreme} ({skipped / total:.0%}, the tier allows {max_ratio:.0%}): {grouped}",
        tuple(dict.fromkeys([e.nodeid for e in module_skips] + [e.nodeid for e in test_skips])),
    )


def _warning_reasons(events: Sequence[Event], phases: Sequence[TestPhase]) -> Iterable[Reason]:
    warnings = [e for e in events if isinstance(e, WarningRecorded)]
    unawaited = [(w.nodeid, w.message) for w in warnings if _NEVER_AWAITED.search(w.message)]
    unawaited += [(p.nodeid, p.message) for p in phases if p.outcome == "failed" and _NEVER_AWAITED.search(p.message)]
    if unawaited:
        yield Reason(
            "unawaited_coroutine",
            f"a coroutine was never awaited, so async code never ran: {_first_line(unawaited[0][1])}",
            _ids(nodeid for nodeid, _ in unawaited),
        )
    unraisable = [w for w in warnings if w.category in _UNRAISABLE_CATEGORIES and not _NEVER_AWAITED.search(w.message)]
    if unraisable:
        yield Reason(
            "unraisable_exception",
            f"an exception was raised where nobody could see it: {_last_line(unraisable[0].message)}",
            _ids(w.nodeid for w in unraisable),
        )
    unmarked = [n for e in events if isinstance(e, Collected) for n in e.unmarked_async]
    unmarked += [p.nodeid for p in phases if p.outcome == "skipped" and _ASYNC_SKIP.search(p.skip_reason or "")]
    if unmarked:
        yield Reason(
            "unmarked_async",
            f"{len(set(unmarked))} async test(s) that no plugin awaits: they pass, skip or fail without running",
            _ids(unmarked),
        )
    started = [e for e in events if isinstance(e, SessionStarted)]
    if started:
        blind = _blindness(started[0])
        if blind:
            yield Reason("warnings_disabled", f"the suite turned warnings off ({blind}): the warning checks are blind")


def _blindness(session: SessionStarted) -> str:
    if not session.warnings_plugin:
        return "-p no:warnings"
    if not session.unraisable_plugin:
        return "-p no:unraisableexception"
    for spec in (*session.pythonwarnings, *session.filterwarnings):
        parts = [p.strip() for p in spec.split(":")] + [""] * 5
        action, message, category, module = parts[0], parts[1], parts[2], parts[3]
        if action == "ignore" and not message and not module and category in _BLINDING_CATEGORIES:
            return f"filter {spec!r}"
    return ""


def _speed_reasons(phases: Sequence[TestPhase], min_test_s: float, history: TierHistory) -> Iterable[Reason]:
    passes = [p for p in phases if p.when == "call" and p.outcome == "passed"]
    below_minimum = [p for p in passes if min_test_s > 0 and p.duration_s < min_test_s]
    below_median = []
    for p in passes:
        past = history.tests.get(p.nodeid)
        durations = past.passed_durations_s if past else ()
        if len(durations) >= MIN_HISTORY_RUNS:
            usual = statistics.median(durations)
            if usual >= TOO_FAST_MEDIAN_FLOOR_S and p.duration_s < usual * TOO_FAST_FACTOR:
                below_median.append((p, usual))
    if not below_minimum and not below_median:
        return
    parts = []
    if below_minimum:
        parts.append(f"{len(below_minimum)} passed faster than min_test_s={min_test_s:g}s")
    if below_median:
        p, usual = below_median[0]
        parts.append(
            f"{len(below_median)} passed far below their own median (e.g. {p.nodeid}: {p.duration_s:.3f}s, "
            f"usually {usual:.3f}s)"
        )
    yield Reason(
        "too_fast",
        "; ".join(parts) + ": real calls take time",
        _ids([p.nodeid for p in below_minimum] + [p.nodeid for p, _ in below_median]),
    )


def _mock_reasons(events: Sequence[Event], markers: Sequence[str]) -> Iterable[Reason]:
    patterns = [re.compile(m) for m in markers]
    hits: list[tuple[str, str]] = []
    for event in events:
        if isinstance(event, WarningRecorded):
            texts = [(event.nodeid, event.message)]
        elif isinstance(event, TestPhase):
            texts = [(event.nodeid, f"{key}={value}") for key, value in event.user_properties]
        else:
            continue
        hits += [(nodeid, text) for nodeid, text in texts if any(p.search(text) for p in patterns)]
    if hits:
        yield Reason(
            "mock_fallback",
            f"a mock stood in for the real thing: {_first_line(hits[0][1])}",
            _ids(nodeid for nodeid, _ in hits),
        )


def _dependency_reasons(dependencies: Sequence[DependencyCheck]) -> Iterable[Reason]:
    down = [d for d in dependencies if d.state == "down"]
    if down:
        said = "; ".join(f"{d.service} down {d.when} the run" + (f" ({d.detail})" if d.detail else "") for d in down)
        yield Reason("dependency_down", f"tests passed while a dependency was down: {said}")


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:300]


def _last_line(text: str) -> str:
    """Return the last line of a traceback-like text: where Python names the exception."""
    return (text.strip().splitlines() or [""])[-1].removeprefix("E").strip()[:300]


def _ids(nodeids: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(n for n in nodeids if n))
