"""The values every probe and every judge speaks in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class ServiceState(StrEnum):
    UP = "up"
    DEGRADED = "degraded"  # answered correctly, but slower than its degraded_ms
    DOWN = "down"


@dataclass(frozen=True)
class ProbeTarget:
    """What one probe needs to know: where to go, what counts as a correct answer, and how long to wait."""

    name: str
    kind: str  # http | websocket | tcp | postgres | redis
    url: str
    timeout_s: float = 10.0
    degraded_ms: float = 3000.0
    depends_on: tuple[str, ...] = ()
    expect_status: tuple[int, ...] = ()  # empty: any 2xx
    expect_body: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    send: str | None = None
    expect: str | None = None
    retries: int = 1
    impact: str = ""


@dataclass(frozen=True)
class ProbeOutcome:
    """What one attempt saw: whether the answer was correct, and how long each phase took."""

    ok: bool
    latency_ms: float | None = None
    status_code: int | None = None
    error: str | None = None
    timings: Mapping[str, float] = field(default_factory=dict)
    attempts: int = 1


@dataclass(frozen=True)
class ServiceStatus:
    """A judged service: its state, the evidence, and what it is the echo of."""

    name: str
    kind: str
    target: str
    state: ServiceState
    status_code: int | None
    latency_ms: float | None
    error: str | None
    caused_by: str | None
    timings: Mapping[str, float]
    impact: str = ""
    attempts: int = 1


@dataclass(frozen=True)
class StatusReport:
    """One probe round over an environment."""

    environment: str
    started_at: str  # ISO 8601, UTC
    elapsed_ms: float
    services: tuple[ServiceStatus, ...]

    @property
    def availability(self) -> float:
        return availability(self.services)

    @property
    def all_up(self) -> bool:
        return all(s.state is ServiceState.UP for s in self.services)

    def count(self, state: ServiceState) -> int:
        return sum(1 for s in self.services if s.state is state)


def availability(services: tuple[ServiceStatus, ...]) -> float:
    """Return up / total as a fraction (1.0 for an empty environment: nothing is down)."""
    if not services:
        return 1.0
    return sum(1 for s in services if s.state is ServiceState.UP) / len(services)
