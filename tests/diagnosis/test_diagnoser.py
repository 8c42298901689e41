"""`Diagnoser` with the real clients against the stand-ins: every cause scenario and every fault."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bot.cloud import CloudApis, build_cloud_apis
from bot.config import CloudRunRef, ServiceConfig
from bot.diagnosis import Cause, Diagnoser, Diagnosis, DiagnosisSettings, diagnosis_to_json, render_diagnosis
from bot.redaction import Redactor
from sandbox.cloud_scenarios import CAUSES, PROJECT, REGION, CloudEndpoints, CloudSandbox, build_scenario


def service(name: str, cloud_run: str | None = None) -> ServiceConfig:
    ref = CloudRunRef(PROJECT, REGION, cloud_run or name)
    return ServiceConfig(name=name, kind="http", url=f"http://127.0.0.1:9/{name}", cloud_run=ref)


def diagnoser(apis: CloudApis, now: datetime, **settings: object) -> Diagnoser:
    return Diagnoser(apis.run, apis.logs, settings=DiagnosisSettings(**settings), clock=lambda: now)  # type: ignore[arg-type]


@pytest.mark.parametrize("cause", CAUSES)
async def test_each_scenario_is_named(apis: CloudApis, now: datetime, cause: str) -> None:
    found = await diagnoser(apis, now).diagnose(service(cause.replace("_", "-")))
    assert found.top is not None and found.top.cause.value == cause
    assert found.cloud_run is not None and found.cloud_run.failing_revision
    assert found.cloud_run.last_healthy_revision


async def test_the_demo_story(apis: CloudApis, now: datetime) -> None:
    api, auth, frontend = await diagnoser(apis, now).diagnose_all(
        [service("api"), service("auth"), service("frontend")]
    )
    assert auth.top is not None and auth.top.cause is Cause.PORT_MISMATCH
    assert any("PORT=8080" in line for line in auth.top.evidence)
    assert api.top is not None and api.top.cause is Cause.OUT_OF_MEMORY
    assert "Memory limit of 512 MiB exceeded with 530 MiB used." in api.top.evidence[0]
    assert frontend.findings == () and not frontend.has_problem
    assert frontend.cloud_run is not None and frontend.cloud_run.failing_revision is None


async def test_what_changed_since_the_last_healthy_revision(apis: CloudApis, now: datetime) -> None:
    api = await diagnoser(apis, now).diagnose(service("api"))
    assert api.cloud_run is not None
    assert (api.cloud_run.failing_revision, api.cloud_run.last_healthy_revision) == ("api-00007-kax", "api-00006-pit")
    assert {(c.field, c.before, c.after) for c in api.cloud_run.changes} >= {("limits.memory", "1Gi", "512Mi")}
    crash = await diagnoser(apis, now).diagnose(service("billing", "crash-on-start"))
    assert crash.cloud_run is not None and ("env", "DATABASE_URL", None) in {
        (c.field, c.before, c.after) for c in crash.cloud_run.changes
    }


async def test_secrets_in_logs_are_redacted(apis: CloudApis, now: datetime) -> None:
    found = await Diagnoser(apis.run, apis.logs, redactor=Redactor(), clock=lambda: now).diagnose(
        service("crash-on-start")
    )
    text = str(diagnosis_to_json(found)) + render_diagnosis(found)
    assert "s3cr3tSentryKey" not in text and "eyJhbGciOiJIUzI1NiJ9" not in text
    assert "SENTRY_DSN=https://3f9a1c:***@o4511.ingest.sentry.io/7" in text


async def test_configured_secrets_are_redacted_too(apis: CloudApis, now: datetime) -> None:
    found = await Diagnoser(apis.run, apis.logs, redactor=Redactor({"10.20.0.3"}), clock=lambda: now).diagnose(
        service("dependency-unreachable")
    )
    assert "10.20.0.3" not in str(diagnosis_to_json(found))


async def test_at_most_the_newest_n_lines_and_the_window(apis: CloudApis, cloud: CloudSandbox, now: datetime) -> None:
    found = await diagnoser(apis, now, max_log_entries=4).diagnose(service("crash-on-start"))
    assert len(found.logs) == 4 and found.logs[-1].text.startswith("Revision ")
    body = cloud.logging.requests[-1]
    assert body["pageSize"] == 4
    window = await diagnoser(apis, now + timedelta(hours=1)).diagnose(service("crash-on-start"))
    assert window.logs == ()
    assert window.top is not None and window.top.cause is Cause.PORT_MISMATCH  # the condition still says so


def fault(found: Diagnosis) -> tuple[Cause, str]:
    assert found.top is not None
    return found.top.cause, found.top.evidence[0] + " | " + found.top.fix


@pytest.mark.parametrize(
    ("status", "cause", "words"),
    [
        (403, Cause.PERMISSION_DENIED, "the bot's service account lacks run.services.get on projects/stagebot-sandbox"),
        (404, Cause.SERVICE_NOT_FOUND, "check the service's `cloud_run` mapping"),
        (503, Cause.API_UNAVAILABLE, "currently unavailable"),
        (500, Cause.API_UNAVAILABLE, "Internal error"),
    ],
)
async def test_a_get_service_fault_is_a_finding(
    apis: CloudApis, cloud: CloudSandbox, now: datetime, status: int, cause: Cause, words: str
) -> None:
    cloud.run.fail(status, call="get_service", service="auth")
    found = await diagnoser(apis, now).diagnose(service("auth"))
    got_cause, text = fault(found)
    assert got_cause is cause and words in text
    assert found.cloud_run is None and found.has_problem


async def test_a_service_cloud_run_does_not_know(apis: CloudApis, now: datetime) -> None:
    found = await diagnoser(apis, now).diagnose(service("ghost"))
    assert fault(found)[0] is Cause.SERVICE_NOT_FOUND


async def test_a_logging_fault_keeps_the_rest(apis: CloudApis, cloud: CloudSandbox, now: datetime) -> None:
    cloud.logging.fail(403)
    found = await diagnoser(apis, now).diagnose(service("auth"))
    causes = [f.cause for f in found.findings]
    assert causes == [Cause.PORT_MISMATCH, Cause.PERMISSION_DENIED]  # the condition still tells the cause
    assert "logging.logEntries.list" in found.findings[1].evidence[0]


async def test_a_revisions_fault_keeps_the_rest(apis: CloudApis, cloud: CloudSandbox, now: datetime) -> None:
    cloud.run.fail(403, call="list_revisions")
    found = await diagnoser(apis, now).diagnose(service("api"))
    assert [f.cause for f in found.findings] == [Cause.OUT_OF_MEMORY, Cause.PERMISSION_DENIED]
    assert "run.revisions.list" in found.findings[1].evidence[0]


async def test_a_timeout_is_a_finding(endpoints: CloudEndpoints, cloud: CloudSandbox, now: datetime) -> None:
    cloud.run.delays_s["get_service"] = 0.8
    slow = build_cloud_apis(endpoints.environ(), project=PROJECT, timeout_s=0.2)
    try:
        found = await Diagnoser(slow.run, slow.logs, clock=lambda: now).diagnose(service("auth"))
    finally:
        slow.close()
    assert fault(found)[0] is Cause.API_TIMEOUT


async def test_no_cloud_run_mapping_says_so(apis: CloudApis, now: datetime) -> None:
    plain = ServiceConfig(name="smtp", kind="tcp", url="tcp://mail:25")
    found = await diagnoser(apis, now).diagnose(plain)
    assert [f.cause for f in found.findings] == [Cause.NOT_ON_CLOUD_RUN]
    assert "cloud_run = {" in found.findings[0].fix


async def test_a_new_scenario_installs_alongside(apis: CloudApis, cloud: CloudSandbox, now: datetime) -> None:
    cloud.install([build_scenario("out_of_memory", "reports-worker", now=now)])
    found = await diagnoser(apis, now).diagnose(service("reports", "reports-worker"))
    assert found.service == "reports" and found.top is not None and found.top.cause is Cause.OUT_OF_MEMORY
