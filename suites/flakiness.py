"""Which tests are flaky, from a tier's history: pure.

Flip rate = flips / (runs - 1) over the last N runs that passed or failed (skips say nothing about flakiness), as
Apple's ICSE-SEIP 2020 paper measures it. A test is known-flaky when it both passed and failed in the window and
flips at least `min_flip_rate` of the time; a pass after a rerun inside one run (pytest-rerunfailures) is a flake
by definition.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from suites.history import TierHistory

WINDOW = 20
MIN_FLIP_RATE = 0.1
_PASS = frozenset({"passed", "xpassed"})
_FAIL = frozenset({"failed", "error"})


@dataclass(frozen=True)
class FlakyTest:
    nodeid: str
    flip_rate: float
    runs: int  # pass/fail runs in the window
    failures: int

    @property
    def note(self) -> str:
        return f"known flaky: flipped {self.flip_rate:.0%} of the last {self.runs} runs, failed {self.failures}"


def flip_rate(outcomes: Sequence[str]) -> float | None:
    """Return flips / (runs - 1) over the pass/fail outcomes, or None with fewer than two of them."""
    verdicts = [o in _PASS for o in outcomes if o in _PASS or o in _FAIL]
    if len(verdicts) < 2:
        return None
    flips = sum(1 for a, b in itertools.pairwise(verdicts) if a != b)
    return flips / (len(verdicts) - 1)


def find_flaky(
    history: TierHistory, *, window: int = WINDOW, min_flip_rate: float = MIN_FLIP_RATE
) -> dict[str, FlakyTest]:
    """Return the tests that are flaky over the newest `window` runs, by node id."""
    found = {}
    for nodeid, test in history.tests.items():
        recent = test.outcomes[:window]
        rate = flip_rate(recent)
        passes = sum(1 for o in recent if o in _PASS)
        failures = sum(1 for o in recent if o in _FAIL)
        if rate is not None and rate >= min_flip_rate and passes and failures:
            found[nodeid] = FlakyTest(nodeid, rate, passes + failures, failures)
    return found
