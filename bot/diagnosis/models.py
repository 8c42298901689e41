"""The values a diagnosis is made of: findings with a cause code, the Cloud Run picture, what changed."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.cloud.models import LogEntry, TrafficTarget


class Cause(StrEnum):
    """Why a service is down (a contract: `diagnose --json` and the history store these codes)."""

    PORT_MISMATCH = "port_mismatch"
    OUT_OF_MEMORY = "out_of_memory"
    STARTUP_PROBE_FAILED = "startup_probe_failed"
    SECRET_ACCESS_DENIED = "secret_access_denied"
    CRASH_ON_START = "crash_on_start"
    DEPENDENCY_UNREACHABLE = "dependency_unreachable"
    IMAGE_NOT_FOUND = "image_not_found"
    REVISION_NOT_READY = "revision_not_ready"
    QUOTA_OR_SCALING = "quota_or_scaling"
    UNKNOWN = "unknown"
    # Faults: the bot could not look (these say so instead of leaving a silent gap).
    PERMISSION_DENIED = "permission_denied"
    SERVICE_NOT_FOUND = "service_not_found"
    API_TIMEOUT = "api_timeout"
    API_UNAVAILABLE = "api_unavailable"
    API_ERROR = "api_error"
    NOT_ON_CLOUD_RUN = "not_on_cloud_run"


FAULT_CAUSES = frozenset(
    {
        Cause.PERMISSION_DENIED, Cause.SERVICE_NOT_FOUND, Cause.API_TIMEOUT, Cause.API_UNAVAILABLE, Cause.API_ERROR,
        Cause.NOT_ON_CLOUD_RUN,
    }
)  # fmt: skip


class Confidence(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


@dataclass(frozen=True)
class Finding:
    """One cause with the lines that show it and what to do about it."""

    cause: Cause
    confidence: Confidence
    evidence: tuple[str, ...]
    fix: str

    @property
    def is_fault(self) -> bool:
        """True when the finding says the bot could not look, rather than what is wrong."""
        return self.cause in FAULT_CAUSES


@dataclass(frozen=True)
class Change:
    """One difference between the last healthy revision and the failing one (env: names only)."""

    field: str  # image, env, limits.memory, limits.cpu, ports, scaling.min_instances, scaling.max_instances, ...
    before: str | None
    after: str | None

    @property
    def summary(self) -> str:
        if self.field == "env":
            return f"env {self.after} added" if self.before is None else f"env {self.before} removed"
        return f"{self.field}: {self.before or '(none)'} -> {self.after or '(none)'}"


@dataclass(frozen=True)
class CloudRunView:
    """The Cloud Run picture of one service, as `diagnose --json` shows it under `cloud_run`."""

    ready: bool
    reason: str | None
    message: str
    latest_created: str | None
    latest_ready: str | None
    traffic: tuple[TrafficTarget, ...]
    failing_revision: str | None
    last_healthy_revision: str | None
    changes: tuple[Change, ...] = ()
    etag: str = ""  # the service's etag when diagnosed: an action offered from this diagnosis sends it back


@dataclass(frozen=True)
class Diagnosis:
    """What the bot found for one service."""

    service: str
    cloud_run: CloudRunView | None
    findings: tuple[Finding, ...]
    logs: tuple[LogEntry, ...] = ()

    @property
    def has_problem(self) -> bool:
        """True when a finding names a problem (or says the bot could not look)."""
        return bool(self.findings)

    @property
    def top(self) -> Finding | None:
        return self.findings[0] if self.findings else None
