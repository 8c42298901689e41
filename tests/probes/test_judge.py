"""The pure judgement: state from an outcome, causes from dependencies, availability."""

from __future__ import annotations

import pytest

from probes import ProbeOutcome, ProbeTarget, ServiceState, find_causes, judge_round, judge_state
from probes.types import availability

UP, DEGRADED, DOWN = ServiceState.UP, ServiceState.DEGRADED, ServiceState.DOWN


@pytest.mark.parametrize(
    ("outcome", "degraded_ms", "expected"),
    [
        (ProbeOutcome(ok=True, latency_ms=120), 3000, UP),
        (ProbeOutcome(ok=True, latency_ms=3000), 3000, UP),  # at the threshold is not slower than it
        (ProbeOutcome(ok=True, latency_ms=3000.1), 3000, DEGRADED),
        (ProbeOutcome(ok=False, latency_ms=5, status_code=503), 3000, DOWN),
        (ProbeOutcome(ok=False, latency_ms=9000, status_code=503), 3000, DOWN),  # slow and wrong is down
        (ProbeOutcome(ok=False, error="connection refused"), 3000, DOWN),
    ],
)
def test_state_follows_correctness_then_latency(
    outcome: ProbeOutcome, degraded_ms: float, expected: ServiceState
) -> None:
    assert judge_state(outcome, degraded_ms) is expected


@pytest.mark.parametrize(
    ("states", "depends_on", "expected"),
    [
        # A WebSocket rejected because the API is down is the API's echo.
        ({"api": DOWN, "ws": DOWN}, {"ws": ("api",)}, {"api": None, "ws": "api"}),
        # A down service whose dependency is up is down on its own account.
        ({"api": UP, "ws": DOWN}, {"ws": ("api",)}, {"api": None, "ws": None}),
        # A degraded dependency is not a cause of a failure.
        ({"api": DEGRADED, "ws": DOWN}, {"ws": ("api",)}, {"api": None, "ws": None}),
        # An up service never carries a cause, even when its dependency is down.
        ({"api": DOWN, "ws": UP}, {"ws": ("api",)}, {"api": None, "ws": None}),
        # The first down dependency in depends_on order is named.
        ({"db": DOWN, "auth": DOWN, "api": DOWN}, {"api": ("auth", "db"), "auth": ("db",)},
         {"db": None, "auth": "db", "api": "auth"}),
    ],
)  # fmt: skip
def test_causes_name_a_down_dependency(
    states: dict[str, ServiceState], depends_on: dict[str, tuple[str, ...]], expected: dict[str, str | None]
) -> None:
    assert find_causes(states, depends_on) == expected


def test_judge_round_keeps_target_order_and_shown_target() -> None:
    targets = [
        ProbeTarget(name="api", kind="http", url="http://u:pw@api/health"),
        ProbeTarget(name="ws", kind="websocket", url="ws://api/ws", depends_on=("api",)),
    ]
    outcomes = [
        ProbeOutcome(ok=False, latency_ms=4.44, status_code=503, error="HTTP 503, expected 2xx"),
        ProbeOutcome(ok=False, status_code=503, error="upgrade rejected with HTTP 503", attempts=2),
    ]
    services = judge_round(targets, outcomes, {"api": "http://u:***@api/health"})
    assert [s.name for s in services] == ["api", "ws"]
    assert services[0].target == "http://u:***@api/health"
    assert services[0].latency_ms == 4.4
    assert services[1].caused_by == "api"
    assert services[1].attempts == 2


def test_availability_is_up_over_total() -> None:
    targets = [ProbeTarget(name=n, kind="http", url=f"http://{n}") for n in "abcd"]
    outcomes = [
        ProbeOutcome(ok=True, latency_ms=1),
        ProbeOutcome(ok=True, latency_ms=5000),  # degraded does not count as up
        ProbeOutcome(ok=False),
        ProbeOutcome(ok=True, latency_ms=2),
    ]
    assert availability(judge_round(targets, outcomes, {})) == 0.5
    assert availability(()) == 1.0
