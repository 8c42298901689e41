"""Ack round trip of signed `/staging status` requests, against Bolt with an empty listener in the same run.

Targets (issue 5): p99 <= 50 ms for 500 sequential requests, <= 300 ms with 20 concurrent clients (500 requests in
all), and within 1.5 x the baseline: the same uvicorn + Bolt `AsyncApp` (`process_before_response=True`, the same
signing and Starlette adapter) whose listener only acks. Prints figures and ratios; asserts nothing.

Three processes, so the load generator's CPU never sits in a server's event loop: this one (the aiohttp clients,
keep-alive, one connection per client), the server under test, and the stand-ins (the Slack Web API and the sandbox
staging) the bot's background work talks to. That work is real: every acked status run probes 5 services (one
answers after 600 ms) and posts to the stand-in, `[slack] max_concurrent_runs` at a time; the rest wait queued.
At the end the server gets SIGTERM and drains as in production (`--drain-s`, then queued runs end `interrupted`).

    python bench/slack_ack.py [--requests 500] [--clients 20] [--max-runs 4] [--drain-s 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import sqlalchemy as sa
import uvicorn
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.app import assemble_bot
from bot.config import parse_config
from bot.slack.server import ReplayGuard, build_asgi_app, database_check
from bot.store import open_store
from sandbox.servers import serve_in_loop
from sandbox.slack import SlackWorkspace
from sandbox.slack_requests import command_payload, signed_headers
from sandbox.staging import broken_staging, sandbox_config_text

SIGNING_SECRET = "bench-signing-secret-0123456789"
BOT_TOKEN = "xoxb-1111-2222-benchbottoken"
CHANNEL = "C0STAGING"
USER = "U0ONCALL"
START_TIMEOUT_S = 30.0


# -- the server side (each runs in its own process: `--role ...`) ---------------------------------------------------
async def serve_standins(folder: Path) -> None:
    """Serve the Slack Web API stand-in and the sandbox staging until SIGTERM."""
    workspace = SlackWorkspace()
    staging = broken_staging()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with serve_in_loop(workspace.app()) as slack, serve_in_loop(staging.app()) as sandbox:
        workspace.base_url = slack.base_url
        urls = {"slack": slack.base_url, "staging": sandbox.base_url, "ws": sandbox.ws_url}
        _announce(folder / "standins.json", urls)
        await stop.wait()
        posted = len(workspace.calls_of("chat.postMessage"))
    _announce(folder / "standins-exit.json", {"posted": posted})


def _baseline_app(slack_url: str) -> Starlette:
    """Return Bolt with a listener that only acks, behind the same adapter, signing and authorization as the bot."""

    async def authorize(**_: Any) -> AuthorizeResult:  # the bot answers it from its startup `auth.test` too
        return AuthorizeResult(
            enterprise_id=None, team_id="T0SANDBOX", bot_user_id="U0BOT", bot_id="U0BOT", bot_token=BOT_TOKEN
        )

    app = AsyncApp(
        client=AsyncWebClient(token=BOT_TOKEN, base_url=f"{slack_url}/api/"), signing_secret=SIGNING_SECRET,
        authorize=authorize, process_before_response=True, request_verification_enabled=True,
    )  # fmt: skip

    async def empty(ack: AsyncAck) -> None:
        await ack()

    app.command("/staging")(empty)
    handler = AsyncSlackRequestHandler(app)

    async def events(request: Request) -> Response:
        response: Response = await handler.handle(request)
        return response

    return Starlette(routes=[Route("/slack/events", events, methods=["POST"])])


async def serve_target(role: str, folder: Path, urls: dict[str, str], max_runs: int, drain_s: float) -> None:
    """Serve the bot (or the baseline) under uvicorn as `stagebot serve` does, until SIGTERM."""
    store = None
    if role == "baseline":
        asgi: Any = _baseline_app(urls["slack"])
    else:
        text = sandbox_config_text(urls["staging"], urls["ws"]) + f"\n[slack]\nmax_concurrent_runs = {max_runs}\n"
        config = parse_config(text, source="bench.toml", environ={}, base_dir=folder)
        store = open_store(f"sqlite:///{folder}/bench.sqlite3", {}, config.store)
        client = AsyncWebClient(token=BOT_TOKEN, base_url=f"{urls['slack']}/api/")
        running = await assemble_bot(config, store, client, SIGNING_SECRET, environ={}, drain_timeout_s=drain_s)
        asgi = build_asgi_app(running.app, running.lifecycle, database_check(store.engine), SIGNING_SECRET)
    # uvicorn.Server binds host and port itself, as `stagebot serve` runs it (so asyncio sets TCP_NODELAY on every
    # connection), and its SIGTERM handler starts the lifespan's drain. It re-raises that SIGTERM once stopped;
    # with a no-op handler the process lives on to report what the drain left behind.
    signal.signal(signal.SIGTERM, lambda *_: None)
    server = uvicorn.Server(
        uvicorn.Config(asgi, host="127.0.0.1", port=0, log_level="warning", access_log=False, lifespan="on")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started and not serving.done():
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    _announce(folder / f"{role}.json", {"port": port})
    await serving
    stats: dict[str, Any] = {}
    if store is not None:
        with store.engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT state, count(*) FROM runs GROUP BY state")).all()
        stats["runs"] = {state: count for state, count in rows}
        store.close()
    _announce(folder / f"{role}-exit.json", stats)


def _announce(path: Path, value: dict[str, Any]) -> None:
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(value), encoding="utf-8")
    partial.replace(path)  # the parent polls for the file: it must never see half of it


# -- the load generator ---------------------------------------------------------------------------------------------
@dataclass
class Phase:
    latencies_ms: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def line(self, name: str) -> str:
        if not self.latencies_ms:
            return f"  {name:<22} no successful request; failures: {len(self.failures)} {self.failures[:3]}"
        p50, p99 = percentile(self.latencies_ms, 50), percentile(self.latencies_ms, 99)
        rate = (len(self.latencies_ms) + len(self.failures)) / self.wall_s
        return (
            f"  {name:<22} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   max {max(self.latencies_ms):7.1f} ms"
            f"   {rate:6.0f} req/s   failures {len(self.failures)}"
        )


def percentile(values: list[float], pct: float) -> float:
    """Return the nearest-rank percentile (p99 of 500 is the 495th value: 5 slower ones are allowed)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def signed_status_requests(count: int, slack_url: str) -> list[tuple[bytes, dict[str, str]]]:
    """Return `count` signed `/staging status` bodies, each with its own trigger_id (so none is a replay)."""
    requests = []
    for _ in range(count):
        fields = command_payload(
            "/staging", "status", user=USER, channel=CHANNEL, response_url=f"{slack_url}/response/{CHANNEL}/{USER}/1"
        )
        body = urlencode(fields).encode()
        requests.append((body, signed_headers(SIGNING_SECRET, body)))
    return requests


async def send(session: aiohttp.ClientSession, url: str, request: tuple[bytes, dict[str, str]], phase: Phase) -> None:
    body, headers = request
    started = time.perf_counter()
    try:
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        phase.failures.append(f"{type(exc).__name__}: {exc}")
        return
    elapsed_ms = (time.perf_counter() - started) * 1000
    if status == 200:
        phase.latencies_ms.append(elapsed_ms)
    else:
        phase.failures.append(f"HTTP {status}")


def _session() -> aiohttp.ClientSession:
    # One keep-alive connection per client, as each of Slack's connections would be.
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=1, force_close=False), timeout=aiohttp.ClientTimeout(total=30)
    )


async def measure(url: str, slack_url: str, requests: int, clients: int) -> tuple[Phase, Phase, Phase]:
    """Send one cold request, `requests` one after another, then `requests` more from `clients` clients at once."""
    cold, sequential, concurrent = Phase(), Phase(), Phase()
    batch = signed_status_requests(1 + 2 * requests, slack_url)
    async with _session() as session:
        started = time.perf_counter()
        await send(session, url, batch[0], cold)
        cold.wall_s = time.perf_counter() - started
        started = time.perf_counter()
        for request in batch[1 : 1 + requests]:
            await send(session, url, request, sequential)
        sequential.wall_s = time.perf_counter() - started
    rest = batch[1 + requests :]
    shares = [rest[i::clients] for i in range(clients)]
    sessions = [_session() for _ in range(clients)]

    async def client(session: aiohttp.ClientSession, share: list[tuple[bytes, dict[str, str]]]) -> None:
        for request in share:
            await send(session, url, request, concurrent)

    try:
        # Open every connection first, so the concurrent figures are not about 20 TCP handshakes at once.
        await asyncio.gather(*(s.get(url.replace("/slack/events", "/nowhere")) for s in sessions))
        started = time.perf_counter()
        await asyncio.gather(*(client(s, share) for s, share in zip(sessions, shares, strict=True)))
        concurrent.wall_s = time.perf_counter() - started
    finally:
        await asyncio.gather(*(s.close() for s in sessions))
    return cold, sequential, concurrent


def ack_path_parts(folder: Path, rounds: int = 500) -> dict[str, float]:
    """Return the median ms of what stagebot's ack adds to Bolt's, each alone in this process on an idle loop."""
    text = sandbox_config_text("http://127.0.0.1:9", "ws://127.0.0.1:9")
    config = parse_config(text, source="parts.toml", environ={}, base_dir=folder)
    store = open_store(f"sqlite:///{folder}/parts.sqlite3", {}, config.store)
    guard = ReplayGuard(SIGNING_SECRET)
    requests = signed_status_requests(rounds, "http://127.0.0.1:9")
    keys = iter(range(rounds))

    def create_run() -> None:
        store.create_run(
            kind="status", target=None, requested_by=USER, origin="slack", channel=CHANNEL, state="queued",
            request_key=f"trigger:{next(keys)}",
        )  # fmt: skip

    def timed(call: Callable[[], object]) -> float:
        samples = []
        for _ in range(rounds):
            started = time.perf_counter()
            call()
            samples.append((time.perf_counter() - started) * 1000)
        return statistics.median(samples)

    async def to_thread_handoff() -> float:
        samples = []
        for _ in range(rounds):
            started = time.perf_counter()
            await asyncio.to_thread(lambda: None)
            samples.append((time.perf_counter() - started) * 1000)
        return statistics.median(samples)

    pending = iter(requests)

    def check_replay() -> None:
        body, headers = next(pending)
        guard.is_replay(headers, body)

    try:
        return {
            "replay guard (HMAC again + memory)": timed(check_replay),
            "store.create_run (SQLite WAL commit)": timed(create_run),
            "asyncio.to_thread hand-off (no-op)": asyncio.run(to_thread_handoff()),
        }
    finally:
        store.close()


# -- orchestration --------------------------------------------------------------------------------------------------
class Child:
    """A server process of this script, announced through a file, stopped with SIGTERM within a bound."""

    def __init__(self, role: str, folder: Path, extra: list[str]) -> None:
        self.role, self.folder = role, folder
        with (folder / f"{role}.log").open("wb") as log:
            command = [sys.executable, __file__, "--role", role, "--folder", str(folder), *extra]
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    def announced(self, name: str, timeout_s: float) -> dict[str, Any]:
        path = self.folder / name
        deadline = time.monotonic() + timeout_s
        while not path.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = (self.folder / f"{self.role}.log").read_text(errors="replace")[-2000:]
                raise SystemExit(f"the {self.role} server did not answer in time:\n{tail}")
            time.sleep(0.02)
        value: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return value

    def stop(self, timeout_s: float) -> tuple[float, bool]:
        """SIGTERM, wait up to `timeout_s`, else kill; return the seconds it took and whether it exited by itself."""
        started = time.perf_counter()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout_s)
            clean = True
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            clean = False
        return time.perf_counter() - started, clean


def run_target(role: str, folder: Path, urls: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    extra = ["--urls", json.dumps(urls), "--max-runs", str(args.max_runs), "--drain-s", str(args.drain_s)]
    child = Child(role, folder, extra)
    try:
        port = child.announced(f"{role}.json", START_TIMEOUT_S)["port"]
        url = f"http://127.0.0.1:{port}/slack/events"
        cold, sequential, concurrent = asyncio.run(measure(url, urls["slack"], args.requests, args.clients))
    finally:
        stop_s, clean = child.stop(args.drain_s + 60)
    exit_stats = child.announced(f"{role}-exit.json", 1) if clean else {}
    return {"cold": cold, "sequential": sequential, "concurrent": concurrent, "stop_s": stop_s, "clean": clean,
            **exit_stats}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500, help="requests per phase (sequential, concurrent)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--max-runs", type=int, default=4, help="the bot's [slack] max_concurrent_runs")
    parser.add_argument("--drain-s", type=float, default=5.0, help="the bot's drain timeout at SIGTERM")
    parser.add_argument("--role", choices=["standins", "baseline", "bot"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--urls", type=json.loads, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "standins":
        asyncio.run(serve_standins(args.folder))
        return
    if args.role is not None:
        asyncio.run(serve_target(args.role, args.folder, args.urls, args.max_runs, args.drain_s))
        return

    with tempfile.TemporaryDirectory(prefix="stagebot-bench-") as tmp:
        folder = Path(tmp)
        standins = Child("standins", folder, [])
        try:
            urls = standins.announced("standins.json", START_TIMEOUT_S)
            results = {role: run_target(role, folder, urls, args) for role in ("baseline", "bot")}
        finally:
            standins.stop(10)
        exit_file = folder / "standins-exit.json"
        posted = json.loads(exit_file.read_text(encoding="utf-8")) if exit_file.exists() else {}
        parts = ack_path_parts(folder)
    report(results, posted, parts, args)


def report(
    results: dict[str, dict[str, Any]], posted: dict[str, Any], parts: dict[str, float], args: argparse.Namespace
) -> None:
    print(
        f"Ack round trip, signed /staging status, uvicorn (1 worker) in its own process, {os.cpu_count()} CPUs;"
        f" {args.requests} sequential, then {args.requests} from {args.clients} concurrent keep-alive clients"
    )
    titles = {"baseline": "baseline: Bolt, listener only acks", "bot": "stagebot: parse, store the run, start it"}
    for role, title in titles.items():
        r = results[role]
        cold = r["cold"].latencies_ms[0] if r["cold"].latencies_ms else float("nan")
        print(title)
        print(f"  {'cold (first request)':<22} {cold:7.1f} ms")
        print(r["sequential"].line("sequential"))
        print(r["concurrent"].line(f"{args.clients} concurrent"))
    print("ratios (stagebot / baseline) and targets")
    for phase, target in (("sequential", 50.0), ("concurrent", 300.0)):
        bot, base = results["bot"][phase].latencies_ms, results["baseline"][phase].latencies_ms
        if not bot or not base:
            continue
        b50, b99, s50, s99 = percentile(base, 50), percentile(base, 99), percentile(bot, 50), percentile(bot, 99)
        print(
            f"  {phase:<11} p50 x{s50 / b50:4.2f}  p99 x{s99 / b99:4.2f} (target <= 1.5)"
            f"   stagebot p99 {s99:.1f} ms (target <= {target:.0f} ms)"
        )
    bot = results["bot"]
    acked = len(bot["cold"].latencies_ms) + len(bot["sequential"].latencies_ms) + len(bot["concurrent"].latencies_ms)
    print(
        f"background work: {acked} status runs acked, max_concurrent_runs {args.max_runs}, each probing 5 sandbox"
        f" services (one answers after 600 ms) and posting to the Slack stand-in in another process;"
        f" {posted.get('posted', '?')} messages posted"
    )
    print(
        f"  at SIGTERM: runs by state {bot.get('runs', '?')};"
        f" server {'exited by itself' if bot['clean'] else 'KILLED'} after {bot['stop_s']:.1f} s"
        f" (drain timeout {args.drain_s:.0f} s, queued runs end interrupted)"
    )
    print("what stagebot's ack adds to Bolt's, each part alone (median, this process, idle loop):")
    for name, ms in parts.items():
        print(f"  {name:<38} {ms:6.3f} ms")


if __name__ == "__main__":
    main()
