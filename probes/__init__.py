"""Health probes for staging services: one module per kind, a pure judge, and a concurrent round."""

from probes.judge import find_causes, judge_round, judge_state
from probes.rounds import Prober, probe_targets
from probes.types import ProbeOutcome, ProbeTarget, ServiceState, ServiceStatus, StatusReport, availability

__all__ = [
    "ProbeOutcome",
    "ProbeTarget",
    "Prober",
    "ServiceState",
    "ServiceStatus",
    "StatusReport",
    "availability",
    "find_causes",
    "judge_round",
    "judge_state",
    "probe_targets",
]
