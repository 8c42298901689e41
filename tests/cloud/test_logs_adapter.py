"""The real google-cloud-logging REST client against the Logging stand-in, and the stand-in's filter language."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from google.api_core import exceptions as gexc

from bot.cloud import CloudApis, CloudError, FaultKind, build_cloud_apis, build_log_filter
from bot.cloud.logs import log_name, payload_text
from sandbox.cloud_logging import FilterError, parse_filter
from sandbox.cloud_scenarios import PROJECT, CloudEndpoints, CloudSandbox, build_scenario
from tests.cloud.conftest import ref


def test_the_filter_always_names_a_time_window() -> None:
    since = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
    text = build_log_filter(ref("auth"), "auth-00012-vop", since=since, until=since + timedelta(minutes=30))
    assert 'timestamp>="2026-11-24T03:00:00.000000Z"' in text
    assert 'timestamp<="2026-11-24T03:30:00.000000Z"' in text
    assert 'resource.labels.revision_name="auth-00012-vop"' in text
    assert f'logName="projects/{PROJECT}/logs/run.googleapis.com%2Fvarlog%2Fsystem"' in text
    assert log_name(PROJECT, "stdout").endswith("run.googleapis.com%2Fstdout")


async def test_entries_of_one_revision_oldest_first(apis: CloudApis, cloud: CloudSandbox, now: datetime) -> None:
    entries = await apis.logs.revision_entries(ref("auth"), "auth-00012-vop", since=now - timedelta(minutes=30))
    assert [e.log for e in entries][-2:] == ["varlog/system", "varlog/system"]
    assert entries[-1].text.startswith("Revision 'auth-00012-vop' is not ready")
    assert all(e.revision == "auth-00012-vop" for e in entries)
    assert entries == tuple(sorted(entries, key=lambda e: e.timestamp))
    body = cloud.logging.requests[-1]
    assert body["orderBy"] == "timestamp desc" and body["resourceNames"] == [f"projects/{PROJECT}"]
    assert "timestamp>=" in body["filter"]


async def test_the_limit_keeps_the_newest(apis: CloudApis, now: datetime) -> None:
    entries = await apis.logs.revision_entries(ref("crash-on-start"), None, since=now - timedelta(hours=1), limit=3)
    assert len(entries) == 3
    assert entries[-1].text.startswith("Revision ")
    assert entries[0].text == "KeyError: 'DATABASE_URL'"


async def test_the_window_leaves_older_lines_out(apis: CloudApis, cloud: CloudSandbox, now: datetime) -> None:
    old = build_scenario("port_mismatch", "auth", now=now - timedelta(hours=2))
    cloud.logging.add(old.entries_json())
    recent = await apis.logs.revision_entries(ref("auth"), "auth-00012-vop", since=now - timedelta(minutes=30))
    wide = await apis.logs.revision_entries(ref("auth"), "auth-00012-vop", since=now - timedelta(hours=3))
    assert len(recent) == 6 and len(wide) == 12


async def test_a_json_payload_reads_as_its_message(apis: CloudApis, now: datetime) -> None:
    entries = await apis.logs.revision_entries(ref("dependency-unreachable"), None, since=now - timedelta(hours=1))
    assert any(e.text.startswith("psycopg.OperationalError: connection failed") for e in entries)
    assert payload_text({"no": "message"}) == '{"no": "message"}'


@pytest.mark.parametrize(
    ("status", "kind", "words"),
    [
        (403, FaultKind.PERMISSION_DENIED, "lacks logging.logEntries.list"),
        (503, FaultKind.UNAVAILABLE, "Logging is unavailable"),
    ],
)
async def test_errors_become_cloud_errors(
    apis: CloudApis, cloud: CloudSandbox, now: datetime, status: int, kind: FaultKind, words: str
) -> None:
    cloud.logging.fail(status)
    with pytest.raises(CloudError) as caught:
        await apis.logs.revision_entries(ref("auth"), None, since=now - timedelta(minutes=30))
    assert caught.value.kind is kind and words in caught.value.message


async def test_a_slow_logging_answer_is_a_timeout(
    endpoints: CloudEndpoints, cloud: CloudSandbox, now: datetime
) -> None:
    cloud.logging.delay_s = 0.8
    slow = build_cloud_apis(endpoints.environ(), project=PROJECT, timeout_s=0.2)
    try:
        with pytest.raises(CloudError) as caught:
            await slow.logs.revision_entries(ref("auth"), None, since=now - timedelta(minutes=30))
    finally:
        slow.close()
    assert caught.value.kind is FaultKind.TIMEOUT


ENTRY = {
    "logName": "projects/p/logs/run.googleapis.com%2Fstdout",
    "resource": {"type": "cloud_run_revision", "labels": {"service_name": "auth", "revision_name": "auth-1"}},
    "severity": "WARNING",
    "timestamp": "2026-11-24T03:10:00Z",
    "textPayload": "GET /healthz 503",
}


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        ('resource.labels.service_name="auth"', True),
        ('resource.labels.service_name="api"', False),
        ("severity>=WARNING", True),
        ("severity>=ERROR", False),
        ('timestamp>="2026-11-24T03:00:00Z" AND timestamp<="2026-11-24T03:20:00Z"', True),
        ('timestamp>="2026-11-24T03:10:00.000001Z"', False),
        ('(logName="x" OR logName="projects/p/logs/run.googleapis.com%2Fstdout") severity>=INFO', True),
        ('logName="x" OR severity=WARNING AND textPayload:"healthz"', True),  # OR binds tighter than AND
        ('NOT resource.labels.revision_name="auth-1"', False),
        ('textPayload:"HEALTHZ"', True),
        ("", True),
    ],
)
def test_the_stand_in_filter_language(text: str, matches: bool) -> None:
    assert parse_filter(text)(ENTRY) is matches


@pytest.mark.parametrize("text", ['severity>="', "(severity=ERROR", "= ERROR", "severity"])
def test_a_bad_filter_is_refused(text: str) -> None:
    with pytest.raises(FilterError):
        parse_filter(text)


async def test_a_bad_filter_is_a_400_from_the_stand_in(apis: CloudApis) -> None:
    client = apis.logs._client  # the same real client the adapter holds
    with pytest.raises(gexc.BadRequest, match="Invalid filter"):
        list(client.list_entries(resource_names=[f"projects/{PROJECT}"], filter_="(severity=ERROR"))


def test_reading_never_asks_the_metadata_server(apis: CloudApis) -> None:
    # Entry parsing builds a Logger per log name; without a resource each one would query metadata.google.internal.
    client = apis.logs._client
    assert client.logger("run.googleapis.com/stdout").default_resource.type == "global"
