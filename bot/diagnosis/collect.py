"""Collect what Cloud Run and Cloud Logging say about failing services, concurrently, and judge it.

Per service: `get_service` and `list_revisions` at once, then the logs of the failing revision (or, when the API
calls everything ready, of the revision serving the traffic). Every fault becomes a finding that says what the bot
could not see; nothing here raises for a service the bot could not diagnose.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from bot.cloud.clients import CloudApis
from bot.cloud.faults import CloudError, FaultKind
from bot.cloud.logs import CloudLogs
from bot.cloud.models import Condition, LogEntry, RevisionInfo, ServiceInfo
from bot.cloud.run import CloudRun
from bot.config import CloudRunRef, ServiceConfig
from bot.diagnosis.changes import failing_revision, last_healthy_revision, revision_changes, serving_revision
from bot.diagnosis.models import Cause, CloudRunView, Confidence, Diagnosis, Finding
from bot.diagnosis.rules import Context, Signals, find_causes
from bot.errors import UsageError
from bot.redaction import Redactor

READ_ROLES = "roles/run.viewer and roles/logging.viewer"


@dataclass(frozen=True)
class DiagnosisSettings:
    log_window: timedelta = timedelta(minutes=30)
    max_log_entries: int = 50
    max_revisions: int = 20


def fault_finding(error: CloudError, ref: CloudRunRef) -> Finding:
    """Return the finding that says which call failed and what to do about it."""
    where = f"project {ref.project}"
    if error.kind is FaultKind.PERMISSION_DENIED:
        fix = f"Grant the bot's service account {READ_ROLES} on {where} (it needs {error.permission})."
        return Finding(Cause.PERMISSION_DENIED, Confidence.HIGH, (error.message,), fix)
    if error.kind is FaultKind.NOT_FOUND:
        fix = (
            f"Cloud Run has no service {ref.service!r} in {where}, region {ref.region}: check the service's "
            "`cloud_run` mapping in the config."
        )
        return Finding(Cause.SERVICE_NOT_FOUND, Confidence.HIGH, (error.message,), fix)
    if error.kind is FaultKind.TIMEOUT:
        return Finding(
            Cause.API_TIMEOUT,
            Confidence.HIGH,
            (error.message,),
            "Try again; if it persists, check the Cloud Run and Logging status pages.",
        )
    if error.kind is FaultKind.UNAVAILABLE:
        return Finding(
            Cause.API_UNAVAILABLE,
            Confidence.HIGH,
            (error.message,),
            "The Google API answered with an error: try again in a minute.",
        )
    return Finding(
        Cause.API_ERROR, Confidence.HIGH, (error.message,), "The Google API refused the call: see the evidence."
    )


def not_on_cloud_run(service: ServiceConfig) -> Diagnosis:
    fix = (
        f'Add `cloud_run = {{ project = "...", region = "...", service = "..." }}` to [services.{service.name}] '
        "for a Cloud Run diagnosis."
    )
    evidence = (f"{service.name} has no Cloud Run mapping in the config",)
    return Diagnosis(service.name, None, (Finding(Cause.NOT_ON_CLOUD_RUN, Confidence.HIGH, evidence, fix),))


def no_credentials(service: ServiceConfig, problem: str) -> Diagnosis:
    """Return the diagnosis of a service the bot has no Google credentials to look at."""
    finding = Finding(Cause.PERMISSION_DENIED, Confidence.HIGH, (problem,), f"Give the bot credentials: {problem}")
    return Diagnosis(service.name, None, (finding,))


class Diagnoser:
    """Diagnose configured services through the Cloud Run and Cloud Logging adapters."""

    def __init__(
        self,
        run: CloudRun,
        logs: CloudLogs,
        *,
        redactor: Redactor | None = None,
        settings: DiagnosisSettings | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._run = run
        self._logs = logs
        self._redact = redactor or Redactor()
        self._settings = settings or DiagnosisSettings()
        self._clock = clock

    async def diagnose_all(self, services: Iterable[ServiceConfig]) -> list[Diagnosis]:
        """Diagnose every service at once; the list follows the input order."""
        return list(await asyncio.gather(*(self.diagnose(s) for s in services)))

    async def diagnose(self, service: ServiceConfig) -> Diagnosis:
        """Return one service's diagnosis (faults become findings)."""
        ref = service.cloud_run
        if ref is None:
            return not_on_cloud_run(service)
        now = self._clock()
        got_service, got_revisions = await asyncio.gather(
            self._run.get_service(ref),
            self._run.list_revisions(ref, limit=self._settings.max_revisions),
            return_exceptions=True,
        )
        if isinstance(got_service, BaseException):
            return Diagnosis(service.name, None, (self._fault(got_service, ref),))
        faults: list[Finding] = []
        revisions: tuple[RevisionInfo, ...] = ()
        if isinstance(got_revisions, BaseException):
            faults.append(self._fault(got_revisions, ref))
        else:
            revisions = got_revisions
        info = self._redact_service(got_service)
        failing = failing_revision(info, revisions)
        subject = failing or serving_revision(info)
        logs: tuple[LogEntry, ...] = ()
        try:
            logs = await self._logs.revision_entries(
                ref, subject, since=now - self._settings.log_window, until=now, limit=self._settings.max_log_entries
            )
        except CloudError as exc:
            faults.append(fault_finding(exc, ref))
        logs = tuple(replace(e, text=self._redact(e.text)) for e in logs)
        return judge(service.name, ref, info, revisions, logs, failing, subject, faults)

    def _fault(self, error: BaseException, ref: CloudRunRef) -> Finding:
        if isinstance(error, CloudError):
            return fault_finding(error, ref)
        # Not a Google API error: a bug or an unexpected answer. Say so rather than lose the other services.
        text = self._redact(f"{type(error).__name__}: {error}")
        return Finding(
            Cause.API_ERROR, Confidence.LOW, (text,), "Unexpected error while reading Cloud Run: see the evidence."
        )

    def _redact_conditions(self, conditions: tuple[Condition, ...]) -> tuple[Condition, ...]:
        return tuple(replace(c, message=self._redact(c.message)) for c in conditions)

    def _redact_service(self, info: ServiceInfo) -> ServiceInfo:
        ready = replace(info.ready, message=self._redact(info.ready.message)) if info.ready else None
        return replace(info, ready=ready, conditions=self._redact_conditions(info.conditions))


def judge(
    name: str,
    ref: CloudRunRef,
    info: ServiceInfo,
    revisions: tuple[RevisionInfo, ...],
    logs: tuple[LogEntry, ...],
    failing: str | None,
    subject: str | None,
    faults: list[Finding],
) -> Diagnosis:
    """Return the diagnosis for what was collected: pure, so every case can be tested without a server."""
    by_name = {r.name: r for r in revisions}
    revision = by_name.get(subject or "")
    conditions = [*(revision.conditions if revision else ())]
    if info.ready is not None and not info.is_ready:
        conditions.append(info.ready)
    healthy = last_healthy_revision(revisions, subject)
    signals = Signals(conditions=tuple(conditions), logs=logs, not_ready=failing is not None)
    context = Context(
        service=ref.service,
        revision=subject or "",
        last_healthy=healthy.name if healthy else "",
        max_instances=str(revision.scaling.max_instances) if revision and revision.scaling.max_instances else "",
        project=ref.project,
        region=ref.region,
    )
    findings = find_causes(signals, context)
    # A ready service whose serving revision shows trouble in its logs: that revision is the failing one.
    shown_failing = failing or (subject if findings else None)
    if shown_failing is None:
        healthy = None
    changes = revision_changes(healthy, by_name[shown_failing]) if healthy and shown_failing in by_name else ()
    view = CloudRunView(
        ready=info.is_ready,
        reason=info.ready.reason if info.ready else None,
        message=info.ready.message if info.ready else "",
        latest_created=info.latest_created,
        latest_ready=info.latest_ready,
        traffic=info.traffic_statuses or info.traffic,
        failing_revision=shown_failing,
        last_healthy_revision=healthy.name if healthy else None,
        changes=changes,
        etag=info.etag,
    )
    return Diagnosis(name, view, (*findings, *faults), logs)


class ProjectDiagnosers:
    """Diagnose services spread over several Google projects, one set of clients per project, built on first use.

    The bot keeps one for its lifetime: building the clients costs more than a diagnosis, and their thread pool is
    what lets twenty services be diagnosed at once.
    """

    def __init__(
        self,
        build_apis: Callable[[str], CloudApis],
        *,
        redactor: Redactor | None = None,
        settings: DiagnosisSettings | None = None,
    ) -> None:
        self._build_apis = build_apis
        self._redactor = redactor
        self._settings = settings
        self._apis: dict[str, CloudApis] = {}

    def apis_for(self, project: str) -> CloudApis:
        """Return the adapters of one project (also what remediation acts through)."""
        if project not in self._apis:
            self._apis[project] = self._build_apis(project)
        return self._apis[project]

    async def diagnose_all(self, services: Iterable[ServiceConfig]) -> list[Diagnosis]:
        """Diagnose every service at once, in input order; a service with no mapping says so."""

        async def one(service: ServiceConfig) -> Diagnosis:
            if service.cloud_run is None:
                return not_on_cloud_run(service)
            try:
                apis = await asyncio.to_thread(self.apis_for, service.cloud_run.project)
            except UsageError as exc:  # no credentials: every mapped service says so, none crashes the thread
                return no_credentials(service, str(exc))
            diagnoser = Diagnoser(apis.run, apis.logs, redactor=self._redactor, settings=self._settings)
            return await diagnoser.diagnose(service)

        return list(await asyncio.gather(*(one(s) for s in services)))

    def close(self) -> None:
        for apis in self._apis.values():
            apis.close()
        self._apis.clear()
