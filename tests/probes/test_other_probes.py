"""WebSocket, TCP, PostgreSQL and Redis probes against real servers, and the round's concurrency and deadline."""

from __future__ import annotations

import time

from probes import ProbeOutcome, ProbeTarget
from probes.http import build_http_client
from probes.rounds import Prober, probe_targets
from sandbox.servers import RunningServer
from tests.probes.conftest import RawServer


async def probe(target: ProbeTarget) -> ProbeOutcome:
    async with build_http_client() as client:
        return await Prober(client).probe(target)


def ws(url: str, **kwargs: object) -> ProbeTarget:
    return ProbeTarget(name="ws", kind="websocket", url=url, **kwargs)  # type: ignore[arg-type]


# -- WebSocket -------------------------------------------------------------------------------------------------
async def test_websocket_handshake_and_ping_pong(server: RunningServer) -> None:
    outcome = await probe(ws(f"{server.ws_url}/ok/ws", send='{"type": "ping"}', expect="pong"))
    assert outcome.ok, outcome.error
    assert outcome.status_code == 101
    assert {"handshake_ms", "reply_ms", "total_ms"} <= set(outcome.timings)


async def test_websocket_handshake_only(server: RunningServer) -> None:
    outcome = await probe(ws(f"{server.ws_url}/ok/ws"))
    assert outcome.ok and "reply_ms" not in outcome.timings


async def test_rejected_upgrade_reports_the_http_status(server: RunningServer) -> None:
    outcome = await probe(ws(f"{server.ws_url}/reject/ws"))
    assert not outcome.ok
    assert outcome.status_code == 503
    assert outcome.error == "upgrade rejected with HTTP 503"


async def test_silent_server_after_handshake_is_down_not_a_hang(server: RunningServer) -> None:
    started = time.perf_counter()
    outcome = await probe(ws(f"{server.ws_url}/silent/ws", send='{"type": "ping"}', expect="pong", timeout_s=0.4))
    elapsed = time.perf_counter() - started
    assert not outcome.ok
    assert outcome.error == "no reply matching 'pong' within 0.4s"
    assert elapsed < 3  # two attempts of 0.4 s each, not a hang


async def test_reply_that_never_matches_is_down(server: RunningServer) -> None:
    outcome = await probe(ws(f"{server.ws_url}/ok/ws", send='{"type": "nonsense"}', expect="pong", timeout_s=0.3))
    assert not outcome.ok and outcome.error == "no reply matching 'pong' within 0.3s"


async def test_websocket_refused_and_hanging_handshake(closed_port: int, silent_server: RawServer) -> None:
    refused = await probe(ws(f"ws://127.0.0.1:{closed_port}/ws", retries=0))
    assert not refused.ok and refused.error == "connection refused"
    hanging = await probe(ws(f"ws://127.0.0.1:{silent_server.port}/ws", timeout_s=0.3, retries=0))
    assert not hanging.ok and hanging.error == "no answer within 0.3s"


# -- TCP -------------------------------------------------------------------------------------------------------
async def test_tcp_connect(server: RunningServer, closed_port: int) -> None:
    up = await probe(ProbeTarget(name="t", kind="tcp", url=f"tcp://127.0.0.1:{server.port}"))
    assert up.ok and up.status_code is None and "connect_ms" in up.timings
    down = await probe(ProbeTarget(name="t", kind="tcp", url=f"tcp://127.0.0.1:{closed_port}", retries=0))
    assert not down.ok and down.error == "connection refused"


# -- PostgreSQL ------------------------------------------------------------------------------------------------
async def test_postgres_select_one(postgres_admin_url: str) -> None:
    outcome = await probe(ProbeTarget(name="pg", kind="postgres", url=postgres_admin_url))
    assert outcome.ok, outcome.error
    assert outcome.status_code is None
    assert {"connect_ms", "query_ms", "total_ms"} <= set(outcome.timings)


async def test_postgres_missing_database_and_refused(postgres_admin_url: str, closed_port: int) -> None:
    base = postgres_admin_url.rsplit("/", 1)[0]
    missing = await probe(ProbeTarget(name="pg", kind="postgres", url=f"{base}/no_such_db_here", retries=0))
    assert not missing.ok
    assert missing.error == 'database "no_such_db_here" does not exist'
    refused = await probe(
        ProbeTarget(name="pg", kind="postgres", url=f"postgresql://postgres@127.0.0.1:{closed_port}/x", retries=0)
    )
    assert not refused.ok and refused.error == "connection refused"


# -- Redis -----------------------------------------------------------------------------------------------------
async def test_redis_ping(redis_url: str, closed_port: int) -> None:
    up = await probe(ProbeTarget(name="r", kind="redis", url=redis_url))
    assert up.ok, up.error
    assert {"connect_ms", "ping_ms"} <= set(up.timings)
    down = await probe(ProbeTarget(name="r", kind="redis", url=f"redis://127.0.0.1:{closed_port}/0", retries=0))
    assert not down.ok and down.error == "connection refused"


async def test_redis_silent_server_times_out(silent_server: RawServer) -> None:
    outcome = await probe(
        ProbeTarget(name="r", kind="redis", url=f"redis://127.0.0.1:{silent_server.port}/0", timeout_s=0.3, retries=0)
    )
    assert not outcome.ok and outcome.error == "no answer within 0.3s"


# -- The round -------------------------------------------------------------------------------------------------
async def test_round_runs_probes_concurrently(server: RunningServer) -> None:
    # Eight services that each take 250 ms: concurrently that is ~0.25 s, sequentially 2 s.
    targets = [ProbeTarget(name=f"s{i}", kind="http", url=f"{server.base_url}/slow/health") for i in range(8)]
    started = time.perf_counter()
    outcomes = await probe_targets(targets, deadline_s=10)
    elapsed = time.perf_counter() - started
    assert all(o.ok for o in outcomes)
    assert elapsed < 8 * 0.25  # less than the sequential sum: they overlapped


async def test_deadline_cuts_a_hanging_probe_and_keeps_the_rest(
    server: RunningServer, silent_server: RawServer
) -> None:
    targets = [
        ProbeTarget(name="ok", kind="http", url=f"{server.base_url}/ok/health"),
        ProbeTarget(name="hang", kind="http", url=f"http://127.0.0.1:{silent_server.port}/", timeout_s=30),
    ]
    outcomes = await probe_targets(targets, deadline_s=0.5)
    assert outcomes[0].ok
    assert not outcomes[1].ok
    assert outcomes[1].error == "still no answer at the round's deadline of 0.5s"
