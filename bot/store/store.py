"""`Store`: every read and write stagebot makes to its database, as plain values in and out.

Writes are short transactions; on SQLite each takes the write lock up front (see `engines`), on PostgreSQL the
conditional UPDATEs rely on row locks, so a decision or a claim is won by exactly one caller across processes.
"""

from __future__ import annotations

import os
import socket
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import SQLModel

from bot.config import StoreSettings
from bot.errors import UsageError
from bot.store import engines
from bot.store.history import (
    HistoryReport,
    ProbeSample,
    RunSummary,
    TierRunSample,
    summarize_service,
    summarize_tier,
)
from bot.store.records import (
    ACTIVE_STATES,
    DECISIONS,
    DEFAULT_STALE_AFTER,
    END_STATES,
    ORIGINS,
    OUTCOMES,
    RUN_KINDS,
    AuditRecord,
    CleanupCounts,
    FindingRecord,
    OfferDecision,
    OfferRecord,
    OutboxRecord,
    RunRecord,
    abandoned_reason,
    to_iso,
)
from bot.store.schema import SchemaChange, upgrade_schema
from bot.store.tables import (
    AuditEntry,
    Diagnosis,
    Finding,
    OutboxMessage,
    ProbeResult,
    Remediation,
    Run,
    TestResult,
)
from probes.types import ServiceState, ServiceStatus, StatusReport
from suites.history import TestHistory, TestResultRecord, TierHistory

# Core tables (the SQLModel classes define them): explicit SQL reads best for conditional updates and bulk inserts.
_runs, _probes, _tests, _diagnoses, _findings, _offers, _audit, _outbox = (
    SQLModel.metadata.tables[model.__tablename__]
    for model in (Run, ProbeResult, TestResult, Diagnosis, Finding, Remediation, AuditEntry, OutboxMessage)
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


class Store:
    """Runs, results, decisions, the audit log and the Slack outbox, on one SQLAlchemy engine."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        clock: Callable[[], datetime] = _utcnow,
        owner: str | None = None,
    ) -> None:
        self.engine = engine
        self._reader = engine.execution_options(**{engines.READ_ONLY: True})
        # SQLite has one writer at a time. Threads of this process queue on a lock, handed over the moment a write
        # commits; left to SQLite, a waiting writer polls with sleeps of up to 100 ms (its busy handler), which put
        # 50-300 ms tails on the Slack ack at 20 concurrent requests. Other processes still wait on the busy timeout.
        self._write_lock: threading.RLock | None = threading.RLock() if engine.dialect.name == "sqlite" else None
        self._clock = clock
        self.host = socket.gethostname()
        self.owner = owner or f"{self.host}:{os.getpid()}"

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        if self._write_lock is None:
            with self.engine.begin() as connection:
                yield connection
            return
        with self._write_lock, self.engine.begin() as connection:
            yield connection

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with self._reader.begin() as connection:
            yield connection

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    # -- runs ----------------------------------------------------------------
    def create_run(
        self,
        *,
        kind: str,
        target: str | None,
        requested_by: str,
        origin: str,
        channel: str | None = None,
        message_ts: str | None = None,
        state: str = "running",
        thread_ts: str | None = None,
        request_key: str | None = None,
    ) -> int:
        """Store a run before its work starts and return its id.

        With a `request_key` (Slack's retries of one request share it) a second call returns the first run's id.
        """
        _check(kind, RUN_KINDS, "kind")
        _check(origin, ORIGINS, "origin")
        _check(state, ACTIVE_STATES, "state")
        now = self._clock()
        values: dict[str, Any] = {
            "kind": kind,
            "target": target,
            "requested_by": requested_by,
            "origin": origin,
            "channel": channel,
            "message_ts": message_ts,
            "thread_ts": thread_ts,
            "request_key": request_key,
            "state": state,
            "created_at": now,
            "started_at": now if state == "running" else None,
            "summary": "",
            "details": {},
            "owner": self.owner,
            "heartbeat_at": now,
        }
        try:
            with self._write() as connection:
                return _insert(connection, _runs, values)
        except IntegrityError:
            if request_key is None:
                raise
            with self._read() as connection:
                found = connection.execute(sa.select(_runs.c.id).where(_runs.c.request_key == request_key)).scalar()
            if found is None:
                raise
            return int(found)

    def start_run(self, run_id: int) -> bool:
        """Move a queued run to running; False when it is no longer queued (cancelled, interrupted)."""
        now = self._clock()
        with self._write() as connection:
            result = connection.execute(
                sa.update(_runs)
                .where(_runs.c.id == run_id, _runs.c.state == "queued")
                .values(state="running", started_at=now, heartbeat_at=now, owner=self.owner)
            )
        return result.rowcount == 1

    def finish_run(
        self,
        run_id: int,
        *,
        state: str,
        verdict: str | None = None,
        summary: str = "",
        details: dict[str, Any] | None = None,
    ) -> None:
        """End a run: finished, interrupted or cancelled, with its verdict and summary (details kept when None)."""
        _check(state, END_STATES, "state")
        values: dict[str, Any] = {"state": state, "verdict": verdict, "summary": summary, "finished_at": self._clock()}
        if details is not None:
            values["details"] = details
        with self._write() as connection:
            # A run taken for dead that finishes after all is recorded as what it was; a cancelled one stays cancelled.
            result = connection.execute(
                sa.update(_runs).where(_runs.c.id == run_id, _runs.c.state != "cancelled").values(values)
            )
            if result.rowcount == 0 and not _exists(connection, _runs, run_id):
                raise KeyError(f"no run {run_id}")

    def set_run_message(self, run_id: int, *, channel: str, message_ts: str) -> None:
        """Record where a run's Slack message is, so others (another replica too) can point people at its thread."""
        with self._write() as connection:
            connection.execute(
                sa.update(_runs).where(_runs.c.id == run_id).values(channel=channel, message_ts=message_ts)
            )

    def heartbeat(self, run_id: int) -> None:
        """Show that the owner of an active run is still working on it."""
        with self._write() as connection:
            connection.execute(
                sa.update(_runs)
                .where(_runs.c.id == run_id, _runs.c.state.in_(ACTIVE_STATES))
                .values(heartbeat_at=self._clock(), owner=self.owner)
            )

    def mark_interrupted_runs(self, now: datetime, *, stale_after: timedelta = DEFAULT_STALE_AFTER) -> list[int]:
        """Mark runs left queued or running by a dead process as interrupted; return their ids."""
        with self._read() as connection:
            active = connection.execute(
                sa.select(_runs.c.id, _runs.c.owner, _runs.c.heartbeat_at).where(_runs.c.state.in_(ACTIVE_STATES))
            ).all()
        reasons = {
            row.id: reason
            for row in active
            if (
                reason := abandoned_reason(
                    row.owner,
                    row.heartbeat_at,
                    now=now,
                    this_host=self.host,
                    is_pid_alive=_pid_alive,
                    stale_after=stale_after,
                )
            )
        }
        marked: list[int] = []
        if not reasons:
            return marked
        with self._write() as connection:
            for run_id, reason in reasons.items():
                result = connection.execute(
                    sa.update(_runs)
                    .where(_runs.c.id == run_id, _runs.c.state.in_(ACTIVE_STATES))
                    .values(
                        state="interrupted",
                        finished_at=now,
                        summary=f"interrupted: {reason}; noticed at {to_iso(now)} by {self.owner}",
                    )
                )
                if result.rowcount == 1:
                    marked.append(run_id)
                    self._insert_audit(
                        connection,
                        actor=self.owner,
                        action="run.interrupted",
                        subject=f"run:{run_id}",
                        detail={"reason": reason, "noticed_at": to_iso(now)},
                    )
        return marked

    def get_run(self, run_id: int) -> RunRecord | None:
        """Return one run, or None when there is no such run."""
        with self._read() as connection:
            row = connection.execute(sa.select(_runs).where(_runs.c.id == run_id)).mappings().first()
        return None if row is None else _to_run(row)

    def recent_runs(
        self,
        *,
        limit: int = 20,
        kind: str | None = None,
        target: str | None = None,
        since: datetime | None = None,
        states: Sequence[str] | None = None,
    ) -> list[RunRecord]:
        """Return the newest runs first, optionally only one kind, target, window or set of states."""
        query = sa.select(_runs).order_by(_runs.c.id.desc()).limit(limit)
        if kind is not None:
            query = query.where(_runs.c.kind == kind)
        if target is not None:
            query = query.where(_runs.c.target == target)
        if since is not None:
            query = query.where(_runs.c.created_at >= since)
        if states is not None:
            query = query.where(_runs.c.state.in_(states))
        with self._read() as connection:
            return [_to_run(row) for row in connection.execute(query).mappings()]

    # -- results -------------------------------------------------------------
    def record_probe_results(self, run_id: int, services: Sequence[ServiceStatus]) -> None:
        """Store one row per probed service for a run."""
        if not services:
            return
        with self._write() as connection:
            self._insert_probe_results(connection, run_id, services)

    def _insert_probe_results(self, connection: sa.Connection, run_id: int, services: Sequence[ServiceStatus]) -> None:
        run = connection.execute(sa.select(_runs.c.started_at, _runs.c.created_at).where(_runs.c.id == run_id)).first()
        if run is None:
            raise KeyError(f"no run {run_id}")
        observed_at = run.started_at or run.created_at
        connection.execute(
            sa.insert(_probes),
            [
                {
                    "run_id": run_id,
                    "observed_at": observed_at,
                    "service": s.name,
                    "kind": s.kind,
                    "target": s.target,
                    "state": s.state.value,
                    "status_code": s.status_code,
                    "latency_ms": s.latency_ms,
                    "error": s.error,
                    "caused_by": s.caused_by,
                    "attempts": s.attempts,
                    "timings": dict(s.timings),
                }
                for s in services
            ],
        )

    def finish_status_run(self, run_id: int, report: StatusReport) -> None:
        """Store a status round's probe results and finish its run, in one transaction."""
        counts = {state.value: report.count(state) for state in ServiceState}
        worst = next((state.value for state in reversed(ServiceState) if counts[state.value]), ServiceState.UP.value)
        down = [s.name for s in report.services if s.state is not ServiceState.UP]
        summary = f"{counts['up']}/{len(report.services)} up" + (f"; not up: {', '.join(down)}" if down else "")
        details = {
            "environment": report.environment,
            "elapsed_ms": report.elapsed_ms,
            "availability": round(report.availability, 4),
            "counts": counts,
        }
        with self._write() as connection:
            if report.services:
                self._insert_probe_results(connection, run_id, report.services)
            connection.execute(
                sa.update(_runs)
                .where(_runs.c.id == run_id)
                .values(state="finished", verdict=worst, summary=summary, details=details, finished_at=self._clock())
            )

    def record_test_results(self, run_id: int, results: Sequence[TestResultRecord]) -> None:
        """Store one row per test for a tier run."""
        if not results:
            return
        with self._write() as connection:
            connection.execute(
                sa.insert(_tests),
                [
                    {
                        "run_id": run_id,
                        "nodeid": r.nodeid,
                        "outcome": r.outcome,
                        "duration_s": r.duration_s,
                        "message": r.message,
                    }
                    for r in results
                ],
            )

    def tier_history(self, tier: str, limit: int = 20) -> TierHistory:
        """Return a tier's last `limit` finished runs (interrupted and cancelled ones excluded), newest first.

        A run's collected count is `details["counts"]["collected"]` when the tier engine stored it, else the number
        of test results recorded for it.
        """
        with self._read() as connection:
            runs = connection.execute(
                sa.select(_runs.c.id, _runs.c.details)
                .where(_runs.c.kind == "tier", _runs.c.target == tier, _runs.c.state == "finished")
                .order_by(_runs.c.started_at.desc(), _runs.c.id.desc())
                .limit(limit)
            ).all()
            run_ids = [row.id for row in runs]
            rows = connection.execute(
                sa.select(_tests.c.run_id, _tests.c.nodeid, _tests.c.outcome, _tests.c.duration_s).where(
                    _tests.c.run_id.in_(run_ids)
                )
            ).all()
        by_run: dict[int, list[Any]] = defaultdict(list)
        for row in rows:
            by_run[row.run_id].append(row)
        outcomes: dict[str, list[str]] = defaultdict(list)
        durations: dict[str, list[float]] = defaultdict(list)
        collected: list[int] = []
        for run in runs:  # newest first
            counts = (run.details or {}).get("counts", {})
            stored = counts.get("collected") if isinstance(counts, dict) else None
            collected.append(stored if isinstance(stored, int) else len(by_run[run.id]))
            for row in sorted(by_run[run.id], key=lambda r: r.nodeid):
                outcomes[row.nodeid].append(row.outcome)
                if row.outcome == "passed":
                    durations[row.nodeid].append(row.duration_s)
        return TierHistory(
            collected_counts=tuple(collected),
            tests={
                nodeid: TestHistory(outcomes=tuple(seen), passed_durations_s=tuple(durations[nodeid]))
                for nodeid, seen in outcomes.items()
            },
        )

    def history(
        self, *, since: datetime, until: datetime | None = None, service: str | None = None, limit: int = 20
    ) -> HistoryReport:
        """Return per-service uptime and latency, per-tier pass rates, and the newest runs, over a window."""
        until = until or self._clock()
        probes = (
            sa.select(_probes.c.service, _probes.c.run_id, _probes.c.observed_at, _probes.c.state, _probes.c.latency_ms)
            .where(_probes.c.observed_at >= since, _probes.c.observed_at <= until)
            .order_by(_probes.c.service, _probes.c.observed_at, _probes.c.id)
        )
        if service is not None:
            probes = probes.where(_probes.c.service == service)
        tiers = (
            sa.select(_runs.c.id, _runs.c.target, _runs.c.started_at, _runs.c.verdict)
            .where(
                _runs.c.kind == "tier",
                _runs.c.state == "finished",
                _runs.c.started_at >= since,
                _runs.c.started_at <= until,
            )
            .order_by(_runs.c.started_at, _runs.c.id)
        )
        runs = (
            sa.select(*(_runs.c[name] for name in ("id", "kind", "target", "state", "verdict", "summary")))
            .add_columns(_runs.c.started_at, _runs.c.finished_at)
            .where(_runs.c.created_at >= since, _runs.c.created_at <= until)
            .order_by(_runs.c.id.desc())
            .limit(limit)
        )
        with self._read() as connection:
            probe_rows = connection.execute(probes).all()
            tier_rows = connection.execute(tiers).all()
            run_rows = connection.execute(runs).all()
        samples: dict[str, list[ProbeSample]] = defaultdict(list)
        for name, run_id, observed_at, state, latency_ms in probe_rows:  # unpacked: thousands of rows per call
            samples[name].append(ProbeSample(run_id, observed_at, state, latency_ms))
        tier_runs: dict[str, list[TierRunSample]] = defaultdict(list)
        for tier_row in tier_rows:
            tier_runs[tier_row.target or ""].append(TierRunSample(tier_row.id, tier_row.started_at, tier_row.verdict))
        return HistoryReport(
            since=since,
            until=until,
            services=tuple(summarize_service(name, samples[name]) for name in sorted(samples)),
            tiers=tuple(summarize_tier(name, tier_runs[name]) for name in sorted(tier_runs)),
            runs=tuple(
                RunSummary(
                    id=row.id,
                    kind=row.kind,
                    target=row.target,
                    state=row.state,
                    verdict=row.verdict,
                    started_at=row.started_at,
                    finished_at=row.finished_at,
                    summary=row.summary,
                )
                for row in run_rows
            ),
        )

    # -- diagnoses -----------------------------------------------------------
    def record_diagnosis(
        self,
        run_id: int,
        *,
        service: str,
        summary: str,
        findings: Sequence[FindingRecord] = (),
        revision: str | None = None,
        etag: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> int:
        """Store what a diagnosis concluded about one service, with its findings; return its id."""
        with self._write() as connection:
            diagnosis_id = _insert(
                connection,
                _diagnoses,
                dict(
                    run_id=run_id,
                    service=service,
                    created_at=self._clock(),
                    summary=summary,
                    revision=revision,
                    etag=etag,
                    details=details or {},
                ),
            )
            if findings:
                connection.execute(
                    sa.insert(_findings),
                    [
                        {
                            "diagnosis_id": diagnosis_id,
                            "code": f.code,
                            "severity": f.severity,
                            "detail": f.detail,
                            "evidence": dict(f.evidence),
                        }
                        for f in findings
                    ],
                )
        return diagnosis_id

    def findings(self, diagnosis_id: int) -> list[FindingRecord]:
        """Return a diagnosis's findings in the order they were stored."""
        with self._read() as connection:
            rows = connection.execute(
                sa.select(_findings).where(_findings.c.diagnosis_id == diagnosis_id).order_by(_findings.c.id)
            ).mappings()
            return [FindingRecord(r["code"], r["detail"], r["severity"], r["evidence"]) for r in rows]

    # -- remediation offers --------------------------------------------------
    def create_offer(
        self,
        *,
        service: str,
        action: str,
        requested_by: str,
        expires_at: datetime,
        etag: str | None = None,
        target_revision: str | None = None,
        target_image: str | None = None,
        run_id: int | None = None,
        diagnosis_id: int | None = None,
        channel: str | None = None,
        thread_ts: str | None = None,
        message_ts: str | None = None,
    ) -> int:
        """Store a pending remediation offer; return its id."""
        with self._write() as connection:
            return _insert(
                connection,
                _offers,
                dict(
                    service=service,
                    action=action,
                    requested_by=requested_by,
                    expires_at=expires_at,
                    etag=etag,
                    target_revision=target_revision,
                    target_image=target_image,
                    run_id=run_id,
                    diagnosis_id=diagnosis_id,
                    channel=channel,
                    thread_ts=thread_ts,
                    message_ts=message_ts,
                    state="pending",
                    created_at=self._clock(),
                    outcome={},
                ),
            )

    def get_offer(self, offer_id: int) -> OfferRecord | None:
        """Return one offer, or None when there is no such offer."""
        with self._read() as connection:
            row = connection.execute(sa.select(_offers).where(_offers.c.id == offer_id)).mappings().first()
        return None if row is None else OfferRecord(**row)

    def decide_offer(self, offer_id: int, *, decision: str, decided_by: str, now: datetime) -> OfferDecision:
        """Approve or deny a pending, unexpired offer: one conditional UPDATE, so exactly one concurrent click wins.

        Whether `decided_by` may decide at all is the caller's rule, checked before; the returned offer says why a
        losing click lost (already decided, by whom; or expired).
        """
        _check(decision, DECISIONS, "decision")
        with self._write() as connection:
            won = (
                connection.execute(
                    sa.update(_offers)
                    .where(_offers.c.id == offer_id, _offers.c.state == "pending", _offers.c.expires_at > now)
                    .values(state=decision, decided_by=decided_by, decided_at=now)
                ).rowcount
                == 1
            )
            row = connection.execute(sa.select(_offers).where(_offers.c.id == offer_id)).mappings().first()
        if row is None:
            raise KeyError(f"no remediation offer {offer_id}")
        return OfferDecision(won=won, offer=OfferRecord(**row))

    def finish_offer(self, offer_id: int, *, outcome: str, detail: dict[str, Any]) -> bool:
        """Record what executing an approved offer did; False when it was not approved (or already finished)."""
        _check(outcome, OUTCOMES, "outcome")
        with self._write() as connection:
            result = connection.execute(
                sa.update(_offers)
                .where(_offers.c.id == offer_id, _offers.c.state == "approved")
                .values(state=outcome, outcome=detail, finished_at=self._clock())
            )
        return result.rowcount == 1

    def expire_offers(self, now: datetime) -> list[int]:
        """Mark pending offers past their expiry as expired; return their ids."""
        with self._write() as connection:
            rows = connection.execute(
                sa.update(_offers)
                .where(_offers.c.state == "pending", _offers.c.expires_at <= now)
                .values(state="expired", decided_at=now)
                .returning(_offers.c.id)
            ).all()
        return sorted(row.id for row in rows)

    def pending_offers(self, now: datetime) -> list[OfferRecord]:
        """Return the offers still open for a decision, oldest first."""
        with self._read() as connection:
            rows = connection.execute(
                sa.select(_offers)
                .where(_offers.c.state == "pending", _offers.c.expires_at > now)
                .order_by(_offers.c.id)
            ).mappings()
            return [OfferRecord(**row) for row in rows]

    def approved_actions_since(self, service: str, since: datetime) -> int:
        """Return how many actions on a service were approved since a moment (for `max_actions_per_hour`)."""
        with self._read() as connection:
            found = connection.execute(
                sa.select(sa.func.count())
                .select_from(_offers)
                .where(
                    _offers.c.service == service,
                    _offers.c.decided_at >= since,
                    _offers.c.state.in_(("approved", *OUTCOMES)),
                )
            ).scalar()
        return int(found or 0)

    # -- audit log -----------------------------------------------------------
    def append_audit(self, *, actor: str, action: str, subject: str, detail: dict[str, Any]) -> None:
        """Append one entry to the audit log (which nothing updates or deletes)."""
        with self._write() as connection:
            self._insert_audit(connection, actor=actor, action=action, subject=subject, detail=detail)

    def _insert_audit(
        self, connection: sa.Connection, *, actor: str, action: str, subject: str, detail: dict[str, Any]
    ) -> None:
        connection.execute(
            sa.insert(_audit).values(at=self._clock(), actor=actor, action=action, subject=subject, detail=detail)
        )

    def audit_entries(
        self, *, subject: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[AuditRecord]:
        """Return audit entries, newest first, optionally for one subject or since a moment."""
        query = sa.select(_audit).order_by(_audit.c.id.desc()).limit(limit)
        if subject is not None:
            query = query.where(_audit.c.subject == subject)
        if since is not None:
            query = query.where(_audit.c.at >= since)
        with self._read() as connection:
            return [AuditRecord(**row) for row in connection.execute(query).mappings()]

    # -- Slack outbox --------------------------------------------------------
    def enqueue_message(
        self,
        *,
        idempotency_key: str,
        channel: str,
        method: str,
        payload: dict[str, Any],
        run_id: int | None = None,
    ) -> int:
        """Store a message to post before posting it; the same key again returns the first message's id."""
        now = self._clock()
        try:
            with self._write() as connection:
                return _insert(
                    connection,
                    _outbox,
                    dict(
                        idempotency_key=idempotency_key,
                        run_id=run_id,
                        method=method,
                        channel=channel,
                        payload=payload,
                        created_at=now,
                        next_attempt_at=now,
                        attempts=0,
                    ),
                )
        except IntegrityError:
            with self._read() as connection:
                found = connection.execute(
                    sa.select(_outbox.c.id).where(_outbox.c.idempotency_key == idempotency_key)
                ).scalar()
            if found is None:
                raise
            return int(found)

    def claim_messages(
        self, *, now: datetime, lease: timedelta = timedelta(seconds=60), limit: int = 20
    ) -> list[OutboxRecord]:
        """Claim undelivered messages that are due, for `lease`; a message is claimed by one process at a time."""
        due = (
            sa.select(_outbox.c.id)
            .where(
                _outbox.c.delivered_at.is_(None),
                _outbox.c.next_attempt_at <= now,
                sa.or_(_outbox.c.claimed_until.is_(None), _outbox.c.claimed_until <= now),
            )
            .order_by(_outbox.c.id)
            .limit(limit)
        )
        claimed: list[OutboxRecord] = []
        with self._write() as connection:
            for message_id in connection.execute(due).scalars().all():
                row = (
                    connection.execute(
                        sa.update(_outbox)
                        .where(
                            _outbox.c.id == message_id,
                            _outbox.c.delivered_at.is_(None),
                            sa.or_(_outbox.c.claimed_until.is_(None), _outbox.c.claimed_until <= now),
                        )
                        .values(claimed_by=self.owner, claimed_until=now + lease, attempts=_outbox.c.attempts + 1)
                        .returning(*_outbox.c)
                    )
                    .mappings()
                    .first()
                )
                if row is not None:
                    claimed.append(_to_outbox(row))
        return claimed

    def mark_delivered(self, message_id: int, *, slack_ts: str | None) -> bool:
        """Record that Slack accepted a message; False when it was already marked delivered."""
        with self._write() as connection:
            result = connection.execute(
                sa.update(_outbox)
                .where(_outbox.c.id == message_id, _outbox.c.delivered_at.is_(None))
                .values(delivered_at=self._clock(), slack_ts=slack_ts, claimed_until=None)
            )
        return result.rowcount == 1

    def mark_failed(self, message_id: int, *, error: str, retry_at: datetime) -> None:
        """Release a claimed message after a failed attempt, to be tried again at `retry_at`."""
        with self._write() as connection:
            connection.execute(
                sa.update(_outbox)
                .where(_outbox.c.id == message_id, _outbox.c.delivered_at.is_(None))
                .values(last_error=error, next_attempt_at=retry_at, claimed_until=None, claimed_by=None)
            )

    def get_message(self, message_id: int) -> OutboxRecord | None:
        """Return one outbox message, or None when there is no such message."""
        with self._read() as connection:
            row = connection.execute(sa.select(_outbox).where(_outbox.c.id == message_id)).mappings().first()
        return None if row is None else _to_outbox(row)

    # -- retention -----------------------------------------------------------
    def cleanup(self, keep_days: int, now: datetime) -> CleanupCounts:
        """Delete runs (with their results), decided offers and outbox messages older than `keep_days`.

        The audit log is never touched: it is the record of who did what, however old.
        """
        cutoff = now - timedelta(days=keep_days)
        old_runs = sa.select(_runs.c.id).where(_runs.c.created_at < cutoff, _runs.c.state.not_in(ACTIVE_STATES))
        with self._read() as connection:
            if connection.execute(old_runs.limit(1)).first() is None and not _any_old(connection, cutoff):
                return CleanupCounts()
        with self._write() as connection:

            def count(table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
                return int(connection.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one())

            ids = old_runs.scalar_subquery()
            counts = CleanupCounts(
                runs=count(_runs, _runs.c.id.in_(ids)),
                probe_results=count(_probes, _probes.c.run_id.in_(ids)),
                test_results=count(_tests, _tests.c.run_id.in_(ids)),
                diagnoses=count(_diagnoses, _diagnoses.c.run_id.in_(ids)),
                remediations=count(_offers, *_old_offers(cutoff)),
                outbox=count(_outbox, sa.or_(_outbox.c.created_at < cutoff, _outbox.c.run_id.in_(ids))),
            )
            connection.execute(sa.delete(_offers).where(*_old_offers(cutoff)))
            connection.execute(
                sa.delete(_outbox).where(sa.or_(_outbox.c.created_at < cutoff, _outbox.c.run_id.in_(ids)))
            )
            # Results, diagnoses and findings follow their run (ON DELETE CASCADE on both databases).
            connection.execute(sa.delete(_runs).where(_runs.c.id.in_(ids)))
        return counts


def _old_offers(cutoff: datetime) -> tuple[sa.ColumnElement[bool], ...]:
    return (_offers.c.created_at < cutoff, _offers.c.state != "pending")


def _any_old(connection: sa.Connection, cutoff: datetime) -> bool:
    offers = sa.select(_offers.c.id).where(*_old_offers(cutoff)).limit(1)
    messages = sa.select(_outbox.c.id).where(_outbox.c.created_at < cutoff).limit(1)
    return connection.execute(offers).first() is not None or connection.execute(messages).first() is not None


def _insert(connection: sa.Connection, table: sa.Table, values: Mapping[str, Any]) -> int:
    # Values as execute parameters, not `.values(...)`: the statement is then the same every time and its compiled
    # form is cached; building bind parameters and a cache key per call took 0.2 ms of the Slack ack's 0.3 ms write.
    return int(connection.execute(sa.insert(table).returning(table.c.id), dict(values)).scalar_one())


def _check(value: str, allowed: Sequence[str], name: str) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


def _exists(connection: sa.Connection, table: sa.Table, row_id: int) -> bool:
    return connection.execute(sa.select(table.c.id).where(table.c.id == row_id)).first() is not None


def _to_run(row: sa.RowMapping) -> RunRecord:
    return RunRecord(**{k: v for k, v in row.items() if k != "request_key"})


def _to_outbox(row: sa.RowMapping) -> OutboxRecord:
    return OutboxRecord(
        id=row["id"],
        idempotency_key=row["idempotency_key"],
        run_id=row["run_id"],
        method=row["method"],
        channel=row["channel"],
        payload=row["payload"],
        attempts=row["attempts"],
        created_at=row["created_at"],
        delivered_at=row["delivered_at"],
        slack_ts=row["slack_ts"],
        last_error=row["last_error"],
    )


def open_store(
    url: str | None,
    environ: Mapping[str, str],
    settings: StoreSettings,
    *,
    home: Path | None = None,
    now: datetime | None = None,
    maintain: bool = True,
) -> Store:
    """Open the store: resolve the URL, connect, migrate, then (with `maintain`) mark dead runs and apply retention.

    Every failure a user can cause (a bad URL, an unreachable server, a newer schema) is a one-line `UsageError`.
    """
    store, _ = open_store_with_schema(url, environ, settings, home=home)
    if maintain:
        moment = now or _utcnow()
        try:
            store.mark_interrupted_runs(moment)
            store.cleanup(settings.keep_days, moment)
        except OperationalError as exc:
            raise UsageError(f"cannot use the store: {_first_line(exc)}") from None
    return store


def open_store_with_schema(
    url: str | None, environ: Mapping[str, str], settings: StoreSettings, *, home: Path | None = None
) -> tuple[Store, SchemaChange]:
    """Open the store and migrate it; also return the schema revision before and after."""
    text = engines.resolve_database_url(url, environ, settings.url, home or Path.home())
    parsed = engines.parse_database_url(text)
    where = engines.describe_url(parsed)
    engine = engines.create_store_engine(parsed)
    try:
        change = upgrade_schema(engine, where)
    except OperationalError as exc:
        engine.dispose()
        raise UsageError(f"cannot open the store, {where} ({engines.mask_url(text)}): {_first_line(exc)}") from None
    except BaseException:
        engine.dispose()
        raise
    return Store(engine), change


def _first_line(exc: OperationalError) -> str:
    from bot.redaction import Redactor

    message = str(exc.orig) if exc.orig is not None else str(exc)
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return Redactor().redact(" ".join(lines) if lines else type(exc.orig).__name__)


@contextmanager
def recording(
    store: Store | None, *, kind: str, target: str | None, requested_by: str, origin: str
) -> Iterator[int | None]:
    """Store a run before the block's work starts and yield its id (None without a store: nothing is recorded).

    The block finishes the run itself. If it raises instead, the run ends `cancelled` (Ctrl-C) or `interrupted`
    (an error), so no run is left `running` by a process that is still alive to say otherwise.
    """
    if store is None:
        yield None
        return
    run_id = store.create_run(kind=kind, target=target, requested_by=requested_by, origin=origin)
    try:
        yield run_id
    except KeyboardInterrupt:
        store.finish_run(run_id, state="cancelled", summary="cancelled before it finished (interrupt)")
        raise
    except Exception as exc:
        store.finish_run(run_id, state="interrupted", summary=f"stopped by an error: {type(exc).__name__}")
        raise
