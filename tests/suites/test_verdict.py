"""The pure verdict and flakiness over recorded event values: table-driven, no subprocess."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import TierConfig
from suites.events import (
    Collected,
    CollectionError,
    Event,
    SessionFinished,
    SessionStarted,
    TestPhase,
    WarningRecorded,
    count_events,
)
from suites.flakiness import find_flaky, flip_rate
from suites.history import NO_HISTORY, TestHistory, TierHistory
from suites.verdict import EXIT_CODES, DependencyCheck, VerdictState, judge

TIER = TierConfig(name="p1", paths=("tests",), root=Path("."))


def _run(*phases: Event, collected: int | None = None, exitstatus: int = 0) -> list[Event]:
    count = collected if collected is not None else len({p.nodeid for p in phases if isinstance(p, TestPhase)})
    return [SessionStarted(), Collected(count), *phases, SessionFinished(exitstatus)]


def _passed(nodeid: str, duration_s: float = 0.5, **extra: object) -> TestPhase:
    return TestPhase(nodeid, "call", "passed", duration_s, **extra)  # type: ignore[arg-type]


CASES: list[tuple[str, list[Event], int | None, dict[str, object], str, list[str]]] = [
    ("clean", _run(_passed("a"), _passed("b")), 0, {}, "passed", []),
    ("a failure", _run(_passed("a"), TestPhase("b", "call", "failed", 0.1, "boom")), 1, {}, "failed", []),
    ("exit 1 with no failure seen: trust the process", _run(_passed("a")), 1, {}, "failed", []),
    ("exit 6 although the report says 0", _run(_passed("a"), exitstatus=0), 6, {}, "failed", []),
    ("no session finish", [SessionStarted(), Collected(1), _passed("a")], 0, {}, "incomplete", ["crashed"]),
    ("killed by a signal", _run(_passed("a")), -9, {}, "incomplete", ["crashed"]),
    ("internal error", _run(exitstatus=3), 3, {}, "incomplete", ["no_tests_collected", "crashed"]),
    ("timeout beats failure", _run(TestPhase("a", "call", "failed", 0.1)), None, {"timed_out": True},
     "incomplete", ["timeout"]),
    ("cancelled", [SessionStarted()], -15, {"cancelled": True}, "incomplete", []),
    ("collection error", [SessionStarted(), CollectionError("t.py", "E ImportError: x"), Collected(1), _passed("a"),
                          SessionFinished(1)], 1, {}, "failed", ["collection_errors"]),
    ("nothing collected", _run(collected=0, exitstatus=5), 5, {}, "untrusted", ["no_tests_collected"]),
    ("a skip beyond the limit", _run(_passed("a"), TestPhase("b", "setup", "skipped", 0, skip_reason="no token")),
     0, {}, "untrusted", ["skipped"]),
    ("an xfail is not a skip", _run(_passed("a"), TestPhase("b", "call", "skipped", 0, wasxfail="bug")), 0, {},
     "passed", []),
    ("old-stack async skip", _run(TestPhase("a", "setup", "skipped", 0,
                                            skip_reason="async def function and no async plugin installed")),
     0, {"max": 1.0}, "untrusted", ["unmarked_async"]),
    ("never awaited in a failure message", _run(TestPhase("a", "call", "failed", 0.1,
                                                          "RuntimeWarning: coroutine 'f' was never awaited")),
     1, {}, "failed", ["unawaited_coroutine"]),
    ("a thread's exception", _run(_passed("a"), WarningRecorded("a", "PytestUnhandledThreadExceptionWarning", "x")),
     0, {}, "untrusted", ["unraisable_exception"]),
    ("mock in a property value", _run(_passed("a", user_properties=(("transport", "MockWebSocket"),))), 0, {},
     "untrusted", ["mock_fallback"]),
    ("blanket ignore filter", [SessionStarted(filterwarnings=("ignore::Warning",)), Collected(1), _passed("a"),
                               SessionFinished(0)], 0, {}, "untrusted", ["warnings_disabled"]),
    ("a narrow ignore filter", [SessionStarted(filterwarnings=("ignore:old api:DeprecationWarning",)), Collected(1),
                                _passed("a"), SessionFinished(0)], 0, {}, "passed", []),
    ("unraisable plugin blocked", [SessionStarted(unraisable_plugin=False), Collected(1), _passed("a"),
                                   SessionFinished(0)], 0, {}, "untrusted", ["warnings_disabled"]),
    ("a failed run lists its trust reasons too", _run(TestPhase("a", "call", "failed", 0.1),
                                                      WarningRecorded("b", "UserWarning", "using mock backend")),
     1, {}, "failed", ["mock_fallback"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("events", "exit_code", "options", "state", "codes"), [pytest.param(*c[1:], id=c[0]) for c in CASES]
)
def test_verdict_table(
    events: list[Event], exit_code: int | None, options: dict[str, object], state: str, codes: list[str]
) -> None:
    tier = TIER if "max" not in options else TierConfig("p1", ("t",), Path("."), max_skipped_ratio=1.0)
    verdict = judge(
        events,
        exit_code=exit_code,
        tier=tier,
        history=NO_HISTORY,
        timed_out=bool(options.get("timed_out")),
        cancelled=bool(options.get("cancelled")),
    )
    assert [r.code for r in verdict.reasons] == codes
    assert verdict.state.value == state
    assert verdict.exit_code == EXIT_CODES[VerdictState(state)]


@pytest.mark.parametrize(
    ("states", "passed", "fires"),
    [
        ({"before": "down", "after": "up"}, True, True),
        ({"before": "up", "after": "down"}, True, True),
        ({"before": "degraded", "after": "up"}, True, False),
        ({"before": "up", "after": "up"}, True, False),
        ({"before": "down", "after": "down"}, False, False),  # a failure is explained, not untrusted
    ],
)
def test_dependency_down_only_questions_a_passing_run(states: dict[str, str], passed: bool, fires: bool) -> None:
    checks = [DependencyCheck("api", when, state, "HTTP 503") for when, state in states.items()]
    outcome = "passed" if passed else "failed"
    events = _run(TestPhase("a", "call", outcome, 0.5), exitstatus=0 if passed else 1)
    verdict = judge(events, exit_code=0 if passed else 1, tier=TIER, history=NO_HISTORY, dependencies=checks)
    assert verdict.has("dependency_down") is fires


@pytest.mark.parametrize(
    ("durations", "now_s", "min_test_s", "fires"),
    [
        ((), 0.001, 0.0, False),
        ((), 0.001, 0.5, True),
        ((2.0, 2.2, 1.8), 0.1, 0.0, True),
        ((2.0, 2.2, 1.8), 1.5, 0.0, False),
        ((2.0, 2.2), 0.1, 0.0, False),  # too little history to judge
        ((0.01, 0.01, 0.01), 0.0001, 0.0, False),  # a median this small is timer noise
    ],
)
def test_too_fast(durations: tuple[float, ...], now_s: float, min_test_s: float, fires: bool) -> None:
    history = TierHistory(tests={"a": TestHistory(("passed",) * len(durations), durations)})
    tier = TierConfig("p1", ("t",), Path("."), min_test_s=min_test_s)
    verdict = judge(_run(_passed("a", now_s)), exit_code=0, tier=tier, history=history)
    assert verdict.has("too_fast") is fires


@pytest.mark.parametrize(
    ("counts", "collected", "fires"),
    [((100, 100, 98), 70, True), ((100, 100, 98), 90, False), ((100, 100), 10, False), ((), 1, False)],
)
def test_fewer_tests(counts: tuple[int, ...], collected: int, fires: bool) -> None:
    verdict = judge(
        _run(_passed("a"), collected=collected),
        exit_code=0,
        tier=TIER,
        history=TierHistory(collected_counts=counts),
    )
    assert verdict.has("fewer_tests") is fires


@pytest.mark.parametrize(
    ("outcomes", "rate"),
    [
        ((), None),
        (("passed",), None),
        (("passed", "passed", "passed"), 0.0),
        (("passed", "failed", "passed", "failed"), 1.0),
        (("failed", "failed", "passed", "passed", "passed"), 0.25),
        (("passed", "skipped", "failed"), 1.0),  # skips say nothing about flakiness
    ],
)
def test_flip_rate(outcomes: tuple[str, ...], rate: float | None) -> None:
    assert flip_rate(outcomes) == rate


def test_find_flaky_needs_both_outcomes_and_enough_flips() -> None:
    history = TierHistory(
        tests={
            "flaky": TestHistory(("passed", "failed", "passed", "passed", "failed")),
            "broken": TestHistory(("failed",) * 5),
            "fine": TestHistory(("passed",) * 5),
            "once": TestHistory(("failed",) + ("passed",) * 19 + ("failed",) * 5),  # window: 1 flip in 20 runs
        }
    )
    found = find_flaky(history)
    assert set(found) == {"flaky"}
    assert found["flaky"].failures == 2 and "known flaky" in found["flaky"].note
    assert find_flaky(history, min_flip_rate=0.05).keys() == {"flaky", "once"}


def test_counts_fold_phases_like_pytest() -> None:
    events = _run(
        _passed("a"),
        TestPhase("b", "call", "failed", 0.1),
        TestPhase("b", "teardown", "failed", 0.0),
        TestPhase("c", "setup", "skipped", 0.0, skip_reason="x"),
        TestPhase("d", "call", "skipped", 0.0, wasxfail="bug"),
        _passed("e", wasxfail="fixed"),
    )
    counts = count_events(events)
    assert (counts.passed, counts.failed, counts.errors, counts.skipped, counts.xfailed) == (2, 1, 1, 1, 1)
