"""What the bot knows of Cloud Run and Cloud Logging: plain values, translated from the SDK objects by the adapters.

Environment variable values never appear here (names only): a value may be a secret, and the diagnosis only
needs to know that a variable was added or removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class ConditionState(StrEnum):
    """A Cloud Run condition's state, named as the API names it."""

    UNSPECIFIED = "STATE_UNSPECIFIED"
    PENDING = "CONDITION_PENDING"
    RECONCILING = "CONDITION_RECONCILING"
    FAILED = "CONDITION_FAILED"
    SUCCEEDED = "CONDITION_SUCCEEDED"


@dataclass(frozen=True)
class Condition:
    """One condition of a service or revision (`Ready`, `ContainerHealthy`, `ResourcesAvailable`, ...)."""

    type: str
    state: ConditionState
    reason: str | None = None  # the reason code, whichever of the API's reason fields is set
    message: str = ""
    last_transition: datetime | None = None

    @property
    def is_failed(self) -> bool:
        return self.state is ConditionState.FAILED


@dataclass(frozen=True)
class TrafficTarget:
    """A share of the service's traffic: a named revision, or `latest` (the latest ready one)."""

    percent: int
    revision: str | None = None  # short revision name; None when the target is the latest ready revision
    is_latest: bool = False


@dataclass(frozen=True)
class ContainerSpec:
    """The parts of a container that explain a failure: image, env names, limits, ports, probes."""

    name: str
    image: str
    env_names: tuple[str, ...] = ()
    limits: Mapping[str, str] = field(default_factory=dict)  # e.g. {"memory": "512Mi", "cpu": "1"}
    ports: tuple[int, ...] = ()
    has_startup_probe: bool = False


@dataclass(frozen=True)
class Scaling:
    min_instances: int = 0
    max_instances: int = 0  # 0: the platform default


@dataclass(frozen=True)
class RevisionInfo:
    """One revision of a service."""

    name: str  # short name, e.g. "auth-00012-vop"
    conditions: tuple[Condition, ...] = ()
    containers: tuple[ContainerSpec, ...] = ()
    scaling: Scaling = field(default_factory=Scaling)
    created: datetime | None = None

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)

    @property
    def ready(self) -> Condition | None:
        return self.condition("Ready")

    @property
    def is_ready(self) -> bool:
        ready = self.ready
        return ready is not None and ready.state is ConditionState.SUCCEEDED


@dataclass(frozen=True)
class ServiceInfo:
    """A Cloud Run service as `get_service` shows it, with the etag to send back on an update."""

    name: str  # full resource name: projects/P/locations/L/services/S
    etag: str
    generation: int
    ready: Condition | None  # the terminal condition
    conditions: tuple[Condition, ...] = ()
    latest_created: str | None = None  # short revision names
    latest_ready: str | None = None
    traffic: tuple[TrafficTarget, ...] = ()  # what was asked for
    traffic_statuses: tuple[TrafficTarget, ...] = ()  # what is actually served (latest resolved to a name)
    containers: tuple[ContainerSpec, ...] = ()
    uri: str = ""
    reconciling: bool = False

    @property
    def is_ready(self) -> bool:
        return self.ready is not None and self.ready.state is ConditionState.SUCCEEDED


@dataclass(frozen=True)
class LogEntry:
    """One log line of a revision: platform (`varlog/system`) or container output (`stdout`, `stderr`)."""

    timestamp: datetime
    severity: str  # DEFAULT, DEBUG, INFO, NOTICE, WARNING, ERROR, CRITICAL, ALERT, EMERGENCY
    text: str
    log: str  # the short log id: "varlog/system", "stdout", "stderr", ...
    revision: str | None = None
    insert_id: str = ""


@dataclass(frozen=True)
class ServiceChange:
    """What an update changes: a restart (a new revision of the same template), an image, or the traffic split.

    A restart sets the template label `stagebot-restart` to `restart_token`: Cloud Run has no restart call, a new
    revision is the restart (shared/reference/cloud-run.md).
    """

    restart_token: str | None = None
    image: str | None = None  # the first container's new image
    traffic: tuple[TrafficTarget, ...] | None = None

    @property
    def touches_template(self) -> bool:
        return self.restart_token is not None or self.image is not None
