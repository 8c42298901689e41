"""What the verdict and flakiness checks know of a tier's past runs: plain values, filled by the store."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TestHistory:
    """One test's recent runs, newest first."""

    __test__ = False  # a value, not a pytest test class (its name starts with "Test")

    outcomes: tuple[str, ...] = ()  # "passed" | "failed" | "error" | "skipped" | ...
    passed_durations_s: tuple[float, ...] = ()  # call-phase durations of the runs where it passed


@dataclass(frozen=True)
class TierHistory:
    """A tier's recent finished runs (not counting the one being judged), newest first."""

    collected_counts: tuple[int, ...] = ()
    tests: Mapping[str, TestHistory] = field(default_factory=dict)


NO_HISTORY = TierHistory()


@dataclass(frozen=True)
class TestResultRecord:
    """One test's result in one run, as stored: the call phase's outcome, or the phase that failed."""

    __test__ = False

    nodeid: str
    outcome: str  # passed | failed | error | skipped | xfailed | xpassed
    duration_s: float
    message: str = ""  # short failure / skip reason, secrets already redacted
