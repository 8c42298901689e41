"""The plain values the store hands out, and the pure rule that tells a dead run from a live one."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

RUN_KINDS = ("status", "tier", "diagnose", "action")
ORIGINS = ("cli", "slack")
ACTIVE_STATES = ("queued", "running")
END_STATES = ("finished", "interrupted", "cancelled")
DECISIONS = ("approved", "denied")
# After approval, what execution made of an offer.
OUTCOMES = ("succeeded", "failed", "stale", "dry_run")
# A run that has not shown a sign of life for this long is taken for dead, whoever owns it.
DEFAULT_STALE_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class RunRecord:
    id: int
    kind: str
    target: str | None
    requested_by: str
    origin: str
    channel: str | None
    message_ts: str | None
    thread_ts: str | None
    state: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    verdict: str | None
    summary: str
    details: Mapping[str, Any]
    owner: str
    heartbeat_at: datetime | None


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    detail: Mapping[str, Any]


@dataclass(frozen=True)
class FindingRecord:
    code: str
    detail: str
    severity: str = "info"
    evidence: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OfferRecord:
    """A remediation offer: pending -> approved | denied | expired; approved -> succeeded | failed | stale."""

    id: int
    service: str
    action: str
    state: str
    requested_by: str
    created_at: datetime
    expires_at: datetime
    etag: str | None
    target_revision: str | None
    target_image: str | None
    run_id: int | None
    diagnosis_id: int | None
    channel: str | None
    thread_ts: str | None
    message_ts: str | None
    decided_by: str | None
    decided_at: datetime | None
    finished_at: datetime | None
    outcome: Mapping[str, Any]


@dataclass(frozen=True)
class OfferDecision:
    """The result of one click: `won` is True for exactly one click per offer; `offer` is the offer as it now stands."""

    won: bool
    offer: OfferRecord


@dataclass(frozen=True)
class OutboxRecord:
    id: int
    idempotency_key: str
    run_id: int | None
    method: str
    channel: str
    payload: Mapping[str, Any]
    attempts: int
    created_at: datetime
    delivered_at: datetime | None
    slack_ts: str | None
    last_error: str | None


@dataclass(frozen=True)
class CleanupCounts:
    """How many rows retention deleted, per table (the audit log is never among them)."""

    runs: int = 0
    probe_results: int = 0
    test_results: int = 0
    diagnoses: int = 0
    remediations: int = 0
    outbox: int = 0


def parse_owner(owner: str) -> tuple[str, int | None]:
    """Return (host, pid) from an owner string `host:pid`; pid None when it cannot be read."""
    host, _, pid = owner.rpartition(":")
    return (host, int(pid)) if pid.isdigit() and host else (owner, None)


def abandoned_reason(
    owner: str,
    heartbeat_at: datetime | None,
    *,
    now: datetime,
    this_host: str,
    is_pid_alive: Callable[[int], bool],
    stale_after: timedelta = DEFAULT_STALE_AFTER,
) -> str | None:
    """Return why an active run is abandoned, or None when its owner may still be working on it.

    On this host the owner's pid answers for certain. Elsewhere only the heartbeat can tell: a live replica beats at
    least every `stale_after`.
    """
    host, pid = parse_owner(owner)
    if host == this_host and pid is not None and not is_pid_alive(pid):
        return f"process {owner} is gone"
    if heartbeat_at is None or now - heartbeat_at > stale_after:
        seen = "never" if heartbeat_at is None else f"last at {to_iso(heartbeat_at)}"
        return f"no heartbeat from {owner or 'its owner'} for over {stale_after.total_seconds():g}s ({seen})"
    return None


def to_iso(moment: datetime) -> str:
    """Return `2026-11-24T03:52:59.058Z`: the one timestamp format stagebot prints and stores in JSON."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
