"""Pure judgement of probe outcomes: up / degraded / down, and which failures are the echo of another."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from probes.types import ProbeOutcome, ProbeTarget, ServiceState, ServiceStatus


def judge_state(outcome: ProbeOutcome, degraded_ms: float) -> ServiceState:
    """Return the state one outcome earns against its latency threshold."""
    if not outcome.ok:
        return ServiceState.DOWN
    if outcome.latency_ms is not None and outcome.latency_ms > degraded_ms:
        return ServiceState.DEGRADED
    return ServiceState.UP


def find_causes(states: Mapping[str, ServiceState], depends_on: Mapping[str, tuple[str, ...]]) -> dict[str, str | None]:
    """Name, for each down service, the first of its dependencies that is down too (None otherwise)."""
    causes: dict[str, str | None] = {}
    for name, state in states.items():
        cause = None
        if state is ServiceState.DOWN:
            cause = next((dep for dep in depends_on.get(name, ()) if states.get(dep) is ServiceState.DOWN), None)
        causes[name] = cause
    return causes


def judge_round(
    targets: Sequence[ProbeTarget], outcomes: Sequence[ProbeOutcome], shown_target: Mapping[str, str]
) -> tuple[ServiceStatus, ...]:
    """Turn a round's raw outcomes into judged services, in the order of the targets.

    `shown_target` is the target as it may be displayed (credentials already redacted).
    """
    states = {t.name: judge_state(o, t.degraded_ms) for t, o in zip(targets, outcomes, strict=True)}
    causes = find_causes(states, {t.name: t.depends_on for t in targets})
    return tuple(
        ServiceStatus(
            name=t.name,
            kind=t.kind,
            target=shown_target.get(t.name, t.url),
            state=states[t.name],
            status_code=o.status_code,
            latency_ms=None if o.latency_ms is None else round(o.latency_ms, 1),
            error=o.error,
            caused_by=causes[t.name],
            timings={k: round(v, 1) for k, v in o.timings.items()},
            impact=t.impact,
            attempts=o.attempts,
        )
        for t, o in zip(targets, outcomes, strict=True)
    )
