"""What `stagebot history` says, computed from plain values: uptime, latency percentiles, state changes, pass rates.

Nothing here reads the database or the clock; `Store.history` fetches the samples and hands them in.
- uptime: the share of recorded probes in which the service answered correctly (`up` or `degraded`).
- latency p50 / p95: over the probes that answered correctly (the latency of a refusal or a timeout says nothing about
  the service's speed), nearest-rank percentiles.
- last state change: the newest sample whose state differs from the sample before it, within the window.
- pass rate: the share of a tier's finished runs in the window whose verdict is `passed`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

ANSWERED = ("up", "degraded")


@dataclass(frozen=True)
class ProbeSample:
    """One service's state in one status run."""

    run_id: int
    observed_at: datetime
    state: str  # up | degraded | down
    latency_ms: float | None


@dataclass(frozen=True)
class StateChange:
    at: datetime
    from_state: str
    to_state: str
    run_id: int


@dataclass(frozen=True)
class ServiceHistory:
    name: str
    samples: int
    counts: dict[str, int]  # up / degraded / down
    uptime: float | None  # None: no samples in the window
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    state: str | None  # the newest sample's state
    last_change: StateChange | None


@dataclass(frozen=True)
class TierRunSample:
    run_id: int
    started_at: datetime
    verdict: str | None


@dataclass(frozen=True)
class TierSummary:
    name: str
    runs: int
    passed: int
    pass_rate: float | None
    last_verdict: str | None
    last_run_id: int | None
    last_run_at: datetime | None


@dataclass(frozen=True)
class RunSummary:
    id: int
    kind: str
    target: str | None
    state: str
    verdict: str | None
    started_at: datetime | None
    finished_at: datetime | None
    summary: str


@dataclass(frozen=True)
class HistoryReport:
    """`stagebot history`: per service and per tier over a window, and the recent runs."""

    since: datetime
    until: datetime
    services: tuple[ServiceHistory, ...]
    tiers: tuple[TierSummary, ...]
    runs: tuple[RunSummary, ...]


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Return the nearest-rank percentile (`fraction` in 0..1) of `values`, or None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def uptime(states: Sequence[str]) -> float | None:
    """Return the share of samples that answered correctly, or None when there are none."""
    if not states:
        return None
    return sum(1 for s in states if s in ANSWERED) / len(states)


def last_state_change(samples: Sequence[ProbeSample]) -> StateChange | None:
    """Return the newest change of state in samples ordered oldest first, or None when the state never changed."""
    for before, after in zip(reversed(samples[:-1]), reversed(samples[1:]), strict=True):
        if before.state != after.state:
            return StateChange(at=after.observed_at, from_state=before.state, to_state=after.state, run_id=after.run_id)
    return None


def summarize_service(name: str, samples: Sequence[ProbeSample]) -> ServiceHistory:
    """Return a service's history from its samples, ordered oldest first."""
    counts = {state: 0 for state in ("up", "degraded", "down")}
    for sample in samples:
        counts[sample.state] = counts.get(sample.state, 0) + 1
    latencies = [s.latency_ms for s in samples if s.state in ANSWERED and s.latency_ms is not None]
    p50, p95 = percentile(latencies, 0.50), percentile(latencies, 0.95)
    return ServiceHistory(
        name=name,
        samples=len(samples),
        counts=counts,
        uptime=uptime([s.state for s in samples]),
        latency_p50_ms=None if p50 is None else round(p50, 1),
        latency_p95_ms=None if p95 is None else round(p95, 1),
        state=samples[-1].state if samples else None,
        last_change=last_state_change(samples),
    )


def summarize_tier(name: str, runs: Sequence[TierRunSample]) -> TierSummary:
    """Return a tier's pass rate and last verdict from its finished runs, ordered oldest first."""
    passed = sum(1 for r in runs if r.verdict == "passed")
    last = runs[-1] if runs else None
    return TierSummary(
        name=name,
        runs=len(runs),
        passed=passed,
        pass_rate=passed / len(runs) if runs else None,
        last_verdict=last.verdict if last else None,
        last_run_id=last.run_id if last else None,
        last_run_at=last.started_at if last else None,
    )


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """Return the span `90s`, `30m`, `24h`, `7d` or `2w` means; ValueError names what was expected."""
    match = _DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"expected a positive duration such as 30m, 24h, 7d or 2w, got {text!r}")
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()])
