"""The staging suite itself (suites/staging/) against the sandbox: green when healthy, red naming what is dead."""

from __future__ import annotations

from pathlib import Path

from sandbox.servers import serve_in_thread
from sandbox.staging import broken_staging, healthy_staging
from tests.suites.conftest import make_engine, make_tier

REPO = Path(__file__).resolve().parents[2]


def staging_env(base_url: str, ws_url: str) -> dict[str, str]:
    services = ("api", "auth", "frontend")
    return {
        "STAGING_HEALTH_URLS": ",".join(f"{name}={base_url}/{name}/health" for name in services),
        "STAGING_AUTH_URL": f"{base_url}/auth",
        "STAGING_WS_URL": f"{ws_url}/websocket/ws",
        "STAGING_TIMEOUT_S": "5",
    }


async def test_the_staging_suite_passes_against_a_healthy_sandbox() -> None:
    with serve_in_thread(healthy_staging().app()) as server:
        tier = make_tier(REPO, ["suites/staging"], env=staging_env(server.base_url, server.ws_url))
        report = await make_engine().run(tier)
    assert report.verdict.state.value == "passed", (report.verdict, report.failures)
    assert report.verdict.reasons == ()
    assert report.counts.passed == report.counts.collected == 6


async def test_the_staging_suite_fails_naming_each_dead_service() -> None:
    with serve_in_thread(broken_staging().app()) as server:
        tier = make_tier(REPO, ["suites/staging"], env=staging_env(server.base_url, server.ws_url))
        report = await make_engine().run(tier)
    assert report.verdict.state.value == "failed"
    messages = {f.nodeid.split("::")[-1]: f.message for f in report.failures}
    assert "api is unavailable" in messages["test_health_endpoint_answers[api]"]
    assert "auth is unavailable" in messages["test_health_endpoint_answers[auth]"]
    assert "auth is unavailable" in messages["test_auth_issues_a_token_it_then_accepts"]
    assert "websocket is unavailable" in messages["test_user_message_yields_agent_events_in_order"]
    assert "HTTP 503" in messages["test_user_message_yields_agent_events_in_order"]
    assert "test_health_endpoint_answers[frontend]" not in messages  # the live service still passes


async def test_the_staging_suite_fails_naming_a_missing_target() -> None:
    report = await make_engine().run(make_tier(REPO, ["suites/staging"], env={"STAGING_HEALTH_URLS": ""}))
    assert report.verdict.state.value == "failed"
    text = " ".join(f.message for f in report.failures)
    for variable in ("STAGING_HEALTH_URLS", "STAGING_AUTH_URL", "STAGING_WS_URL"):
        assert variable in text
