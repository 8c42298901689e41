"""The tables: every run, what it saw, what was decided, and what must still reach Slack.

A map of the schema (all timestamps UTC):
- `runs`: one row per unit of work (status | tier | diagnose | action), written before the work starts;
  state queued -> running -> finished | interrupted | cancelled. `owner` + `heartbeat_at` let a restarted process tell
  a dead run from a live replica's.
- `probe_results` (one per service per status run), `test_results` (one per test per tier run).
- `diagnoses` + `findings`: what the rules concluded about a down service.
- `remediations`: an offered action and its decision. The decision is ONE conditional UPDATE
  (`WHERE state = 'pending' AND expires_at > now`), so of many concurrent clicks exactly one wins (issue 7).
- `audit_log`: append-only; database triggers refuse UPDATE and DELETE, and retention never touches it.
- `slack_outbox`: messages stored before they are posted; `idempotency_key` is unique and `delivered_at` is set once,
  so a message is retried after a restart but never posted twice (issue 5).

The migration in `migrations/versions` creates exactly these tables; `tests/store` checks the two agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """An aware UTC datetime on both databases.

    PostgreSQL stores `timestamptz`. SQLite has no time zones and compares timestamps as text, so every value is
    converted to UTC and stored naive; reading it back attaches UTC again.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store only takes aware (UTC) timestamps")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# JSON everywhere; JSONB on PostgreSQL so the details can be indexed later if a query needs it.
JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


def _utc(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


def _json() -> Any:
    return Field(default_factory=dict, sa_type=JSONType, nullable=False)


def _run_fk(ondelete: str = "CASCADE", nullable: bool = False) -> Any:
    return Field(
        default=None, sa_column_args=[sa.ForeignKey("runs.id", ondelete=ondelete)], nullable=nullable, index=True
    )


class Run(SQLModel, table=True):
    __tablename__ = "runs"
    __table_args__ = (
        sa.Index("ix_runs_kind_target_started", "kind", "target", "started_at"),
        sa.Index("ix_runs_started", "started_at"),
        sa.Index("ix_runs_state", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)  # status | tier | diagnose | action
    target: str | None = Field(default=None, max_length=200)  # tier or service name
    requested_by: str = Field(max_length=200)
    origin: str = Field(max_length=16)  # cli | slack
    channel: str | None = Field(default=None, max_length=64)
    message_ts: str | None = Field(default=None, max_length=32)
    thread_ts: str | None = Field(default=None, max_length=32)
    # Slack's retries of one request carry the same key: unique, so a retry never starts a second run.
    request_key: str | None = Field(default=None, max_length=200, unique=True)
    state: str = Field(max_length=16)  # queued | running | finished | interrupted | cancelled
    created_at: datetime = _utc(nullable=False)
    started_at: datetime | None = _utc()
    finished_at: datetime | None = _utc()
    verdict: str | None = Field(default=None, max_length=32)
    summary: str = Field(default="")
    details: dict[str, Any] = _json()
    owner: str = Field(default="", max_length=300)  # host:pid of the process doing the work
    heartbeat_at: datetime | None = _utc()


class ProbeResult(SQLModel, table=True):
    __tablename__ = "probe_results"
    # The history query: one service over a window.
    __table_args__ = (sa.Index("ix_probe_results_service_observed", "service", "observed_at"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = _run_fk()
    observed_at: datetime = _utc(nullable=False)  # the run's start, copied so history needs no join
    service: str = Field(max_length=200)
    kind: str = Field(max_length=16)
    target: str = Field(default="")
    state: str = Field(max_length=16)  # up | degraded | down
    status_code: int | None = None
    latency_ms: float | None = None
    error: str | None = None
    caused_by: str | None = Field(default=None, max_length=200)
    attempts: int = 1
    timings: dict[str, Any] = _json()


class TestResult(SQLModel, table=True):
    __tablename__ = "test_results"
    __test__ = False  # not a pytest test class, whatever its name says

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = _run_fk()
    nodeid: str = Field(index=True)
    outcome: str = Field(max_length=16)  # passed | failed | error | skipped | xfailed | xpassed
    duration_s: float = 0.0
    message: str = Field(default="")


class Diagnosis(SQLModel, table=True):
    __tablename__ = "diagnoses"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = _run_fk()
    service: str = Field(max_length=200, index=True)
    created_at: datetime = _utc(nullable=False)
    summary: str = Field(default="")
    revision: str | None = Field(default=None, max_length=300)  # the serving revision when diagnosed
    etag: str | None = Field(default=None, max_length=300)  # the service's etag when diagnosed
    details: dict[str, Any] = _json()


class Finding(SQLModel, table=True):
    __tablename__ = "findings"

    id: int | None = Field(default=None, primary_key=True)
    diagnosis_id: int = Field(
        sa_column_args=[sa.ForeignKey("diagnoses.id", ondelete="CASCADE")], nullable=False, index=True
    )
    code: str = Field(max_length=64)
    severity: str = Field(default="info", max_length=16)
    detail: str = Field(default="")
    evidence: dict[str, Any] = _json()


class Remediation(SQLModel, table=True):
    """An offered action and what became of it: pending -> approved | denied | expired -> succeeded | failed | stale."""

    __tablename__ = "remediations"
    __table_args__ = (
        sa.Index("ix_remediations_state_expires", "state", "expires_at"),
        sa.Index("ix_remediations_service_decided", "service", "decided_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: int | None = _run_fk(ondelete="SET NULL", nullable=True)  # the run that offered it
    diagnosis_id: int | None = Field(
        default=None, sa_column_args=[sa.ForeignKey("diagnoses.id", ondelete="SET NULL")], nullable=True
    )
    service: str = Field(max_length=200)
    action: str = Field(max_length=16)  # restart | rollback | redeploy
    target_revision: str | None = Field(default=None, max_length=300)
    target_image: str | None = Field(default=None, max_length=500)
    etag: str | None = Field(default=None, max_length=300)
    requested_by: str = Field(max_length=200)
    channel: str | None = Field(default=None, max_length=64)
    thread_ts: str | None = Field(default=None, max_length=32)
    message_ts: str | None = Field(default=None, max_length=32)
    state: str = Field(default="pending", max_length=16)
    created_at: datetime = _utc(nullable=False)
    expires_at: datetime = _utc(nullable=False)
    decided_by: str | None = Field(default=None, max_length=200)
    decided_at: datetime | None = _utc()
    finished_at: datetime | None = _utc()
    outcome: dict[str, Any] = _json()


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_log"
    __table_args__ = (sa.Index("ix_audit_log_subject_at", "subject", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _utc(nullable=False, index=True)
    actor: str = Field(max_length=200)
    action: str = Field(max_length=64)
    subject: str = Field(max_length=300)
    detail: dict[str, Any] = _json()


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "slack_outbox"
    __table_args__ = (sa.Index("ix_slack_outbox_due", "delivered_at", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=300, unique=True)
    run_id: int | None = _run_fk(ondelete="CASCADE", nullable=True)
    method: str = Field(max_length=64)  # chat.postMessage | chat.update | files.upload ...
    channel: str = Field(max_length=64)
    payload: dict[str, Any] = _json()
    created_at: datetime = _utc(nullable=False)
    next_attempt_at: datetime = _utc(nullable=False)
    attempts: int = 0
    last_error: str | None = None
    claimed_by: str | None = Field(default=None, max_length=300)
    claimed_until: datetime | None = _utc()
    delivered_at: datetime | None = _utc()
    slack_ts: str | None = Field(default=None, max_length=32)  # the ts Slack gave the posted message
