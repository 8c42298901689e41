"""HTTP probes against a real uvicorn server: every state and every way a target can fail."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from probes import ProbeOutcome, ProbeTarget, ServiceState, judge_state
from probes.http import build_http_client
from probes.rounds import Prober
from sandbox.servers import RunningServer, serve_in_loop
from tests.probes.conftest import RawServer


async def probe(target: ProbeTarget) -> ProbeOutcome:
    async with build_http_client() as client:
        return await Prober(client).probe(target)


def http(url: str, **kwargs: object) -> ProbeTarget:
    return ProbeTarget(name="svc", kind="http", url=url, **kwargs)  # type: ignore[arg-type]


async def test_healthy_endpoint_is_up_with_phase_timings(server: RunningServer) -> None:
    outcome = await probe(http(f"{server.base_url}/ok/health"))
    assert outcome.ok and outcome.status_code == 200 and outcome.attempts == 1
    assert judge_state(outcome, 3000) is ServiceState.UP
    assert {"connect_ms", "ttfb_ms", "total_ms"} <= set(outcome.timings)
    assert outcome.timings["connect_ms"] <= outcome.timings["ttfb_ms"] <= outcome.timings["total_ms"]


async def test_503_is_down_with_its_code_after_one_retry(server: RunningServer) -> None:
    outcome = await probe(http(f"{server.base_url}/down/health"))
    assert not outcome.ok
    assert outcome.status_code == 503
    assert outcome.error == "HTTP 503, expected 2xx"
    assert outcome.attempts == 2


async def test_retries_are_configurable(server: RunningServer) -> None:
    assert (await probe(http(f"{server.base_url}/down/health", retries=0))).attempts == 1
    assert (await probe(http(f"{server.base_url}/down/health", retries=3))).attempts == 4


async def test_expect_status_overrides_any_2xx(server: RunningServer) -> None:
    assert (await probe(http(f"{server.base_url}/broken/health", expect_status=(500,)))).ok
    outcome = await probe(http(f"{server.base_url}/ok/health", expect_status=(204,)))
    assert not outcome.ok and outcome.error == "HTTP 200, expected 204"


async def test_slow_answer_is_degraded_not_down(server: RunningServer) -> None:
    outcome = await probe(http(f"{server.base_url}/slow/health"))
    assert outcome.ok
    assert outcome.latency_ms is not None and outcome.latency_ms >= 250
    assert judge_state(outcome, degraded_ms=100) is ServiceState.DEGRADED
    assert judge_state(outcome, degraded_ms=5000) is ServiceState.UP


async def test_body_regex(server: RunningServer) -> None:
    assert (await probe(http(f"{server.base_url}/ok/health", expect_body=r'"status":\s*"ok"'))).ok
    outcome = await probe(http(f"{server.base_url}/ok/health", expect_body="healthy"))
    assert not outcome.ok and outcome.error == "body does not match 'healthy'"


async def test_refused_connection_is_down(closed_port: int) -> None:
    outcome = await probe(http(f"http://127.0.0.1:{closed_port}/health", retries=0))
    assert not outcome.ok and outcome.status_code is None
    assert outcome.error == "connection refused"


async def test_unresolvable_host_is_down() -> None:
    outcome = await probe(http("http://staging-api.invalid/health", retries=0))
    assert not outcome.ok
    assert outcome.error is not None and outcome.error.startswith("name does not resolve")


async def test_hanging_server_is_down_after_timeout(silent_server: RawServer) -> None:
    outcome = await probe(http(f"http://127.0.0.1:{silent_server.port}/health", timeout_s=0.3, retries=0))
    assert not outcome.ok and outcome.error == "no answer within 0.3s"


async def test_reset_connection_is_down(resetting_server: RawServer) -> None:
    outcome = await probe(http(f"http://127.0.0.1:{resetting_server.port}/health", retries=0))
    assert not outcome.ok
    assert outcome.error is not None
    assert "reset" in outcome.error or "disconnected" in outcome.error.lower()


@pytest.fixture
async def flaky_server() -> AsyncIterator[RunningServer]:
    """Fails its first request with a 502, then answers 200: one lost request must not page anyone."""
    calls = {"n": 0}

    async def health(request: Request) -> PlainTextResponse:
        calls["n"] += 1
        return PlainTextResponse("ok", status_code=502 if calls["n"] == 1 else 200)

    async with serve_in_loop(Starlette(routes=[Route("/health", health)])) as running:
        yield running


async def test_one_failure_then_success_is_up(flaky_server: RunningServer) -> None:
    outcome = await probe(http(f"{flaky_server.base_url}/health"))
    assert outcome.ok and outcome.attempts == 2 and outcome.status_code == 200


async def test_headers_are_sent(flaky_server: RunningServer) -> None:
    seen: dict[str, str] = {}

    async def echo(request: Request) -> PlainTextResponse:
        seen.update(request.headers)
        return PlainTextResponse("ok")

    async with serve_in_loop(Starlette(routes=[Route("/h", echo)])) as running:
        outcome = await probe(http(f"{running.base_url}/h", headers={"Authorization": "Bearer abc123"}))
    assert outcome.ok and seen["authorization"] == "Bearer abc123"
