"""Fifty approvers click the same restart at once, on two bot processes sharing one database: one restart.

Two real `stagebot serve` processes (`python -m bot serve`) share a SQLite file or a fresh PostgreSQL database. The
Slack, Cloud Run and Logging stand-ins and the sandbox staging are served in the test's own loop, so
`SlackWorkspace.wait_for` sees whatever either process posts; the processes are stopped (SIGTERM, then kill) whatever
happens, and every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from bot.config import StoreSettings, parse_config
from bot.store import Store, open_store
from sandbox.cloud_scenarios import cloud_run_config_text, demo_cloud, serve_cloud_in_loop
from sandbox.servers import RunningServer, bind_loopback
from sandbox.slack import SlackMessage, SlackWorkspace
from sandbox.slack_requests import SlackSender
from sandbox.staging import SandboxStaging, sandbox_config_text
from tests.slack.conftest import BOT_TOKEN, CHANNEL, ONCALL, SIGNING_SECRET
from tests.slack.test_remediation import button, remediable, told
from tests.slack.test_staging_command import reply_service

APPROVERS = [f"U0APPROVER{n:02d}" for n in range(50)]
PROCESSES = 2
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0
SETTLE_TIMEOUT_S = 90.0
# slack-sdk honours these even for 127.0.0.1 and ignores NO_PROXY: the bot processes must not inherit them.
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")
FINISHED = ("succeeded", "failed", "stale", "dry_run")  # an approved offer's outcomes


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL only this test uses: a SQLite file in tmp_path, or a PostgreSQL database created for it."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.sqlite3'}"
        return
    import psycopg

    admin_url: str = request.getfixturevalue("postgres_admin_url")  # skips, or under CI=true fails, without one
    name = f"stagebot_race_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = make_url(admin_url).set(drivername="postgresql+psycopg", database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class BotProcess:
    """One `stagebot serve` subprocess and where it listens."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-4000:]


def free_ports(count: int) -> list[int]:
    """Return ports that were free a moment ago (`stagebot serve` takes no port 0); held together, so distinct."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(bind_loopback()) for _ in range(count)]
        return [sock.getsockname()[1] for sock in sockets]


def bot_environ(tmp_path: Path, database_url: str, slack_url: str, cloud: Mapping[str, str]) -> dict[str, str]:
    """Return a bot process's environment: ours minus secrets, proxies and stagebot settings, plus the stand-ins."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SLACK_", "STAGEBOT_", "DATABASE_URL")) and name.lower() not in PROXY_VARIABLES
    }
    return inherited | dict(cloud) | {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "STAGEBOT_SLACK_API_URL": f"{slack_url}/api/",
        "DATABASE_URL": database_url,
        "STAGEBOT_HOME": str(tmp_path / "home"),
        "STAGEBOT_LOG_FORMAT": "text",
    }  # fmt: skip


async def wait_until_healthy(bot: BotProcess, http: httpx.AsyncClient) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if bot.process.poll() is not None:
            raise AssertionError(f"the bot on port {bot.port} exited early:\n{bot.output()}")
        with contextlib.suppress(httpx.TransportError):
            if (await http.get(f"http://127.0.0.1:{bot.port}/healthz", timeout=2)).status_code == 200:
                return
        await asyncio.sleep(0.1)
    raise AssertionError(
        f"the bot on port {bot.port} did not answer /healthz within {START_TIMEOUT_S} s:\n{bot.output()}"
    )


async def stop(bot: BotProcess) -> None:
    """SIGTERM (uvicorn drains, the bot's lifecycle stops), then kill at the deadline; never leave an orphan."""
    if bot.process.poll() is None:
        bot.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while bot.process.poll() is None and time.monotonic() < deadline:
        await asyncio.sleep(0.05)  # poll, not wait(): the stand-ins the bot drains into are served by this loop
    if bot.process.poll() is None:
        bot.process.kill()
        await asyncio.to_thread(bot.process.wait, 10)


@contextlib.asynccontextmanager
async def bot_processes(
    tmp_path: Path, config: Path, environ: dict[str, str], http: httpx.AsyncClient
) -> AsyncIterator[list[BotProcess]]:
    """Start the bot processes together (their migrations race on purpose: the schema lock must hold) until healthy."""
    bots: list[BotProcess] = []
    with contextlib.ExitStack() as logs:
        try:
            for index, port in enumerate(free_ports(PROCESSES)):
                log = tmp_path / f"bot-{index}.log"
                process = subprocess.Popen(
                    [sys.executable, "-m", "bot", "serve", "--config", str(config), "--host", "127.0.0.1",
                     "--port", str(port)],
                    stdout=logs.enter_context(log.open("wb")), stderr=subprocess.STDOUT, env=environ,
                    stdin=subprocess.DEVNULL,
                )  # fmt: skip
                bots.append(BotProcess(process, port, log))
            await asyncio.gather(*(wait_until_healthy(bot, http) for bot in bots))
            yield bots
        finally:
            await asyncio.gather(*(stop(bot) for bot in bots))
    assert all(bot.process.returncode == 0 for bot in bots), [b.output() for b in bots]  # drained, closed, exit 0


def auth_offer_reply(ws: SlackWorkspace) -> SlackMessage | None:
    """Return the thread reply diagnosing auth once it carries its restart button."""
    for main in ws.channel_messages(CHANNEL):
        for reply in ws.thread(CHANNEL, main.ts):
            if reply_service(reply) == "auth" and "remediate:restart" in str(reply.blocks):
                return reply
    return None


def click_story(store: Store, offer_id: int) -> Counter[tuple[str, str]]:
    """Count the offer's audit entries by (action, actor)."""
    entries = store.audit_entries(subject="service:auth", limit=10_000)
    return Counter((e.action, e.actor) for e in entries if e.detail.get("offer_id") == offer_id)


def total(story: Counter[tuple[str, str]], action: str) -> int:
    return sum(count for (done, _actor), count in story.items() if done == action)


async def settle(store: Store, ws: SlackWorkspace, offer_id: int, describe: Callable[[], str]) -> None:
    """Wait until every click was decided, the offer's action finished, and every losing clicker was told why.

    Not "until one update and 49 losers": were two clicks to win, this still settles, and the assertions say so.
    """

    def is_settled() -> bool:
        offer = store.get_offer(offer_id)
        story = click_story(store, offer_id)
        decided = sum(
            total(story, action) for action in ("remediation.approved", "remediation.lost", "remediation.refused")
        )
        answered = sum(1 for user in APPROVERS if told(ws, user))
        return (
            offer is not None and offer.state in FINISHED and decided == len(APPROVERS)
            and answered == decided - total(story, "remediation.approved")
        )  # fmt: skip

    try:
        await ws.wait_for(is_settled, SETTLE_TIMEOUT_S)
    except TimeoutError:
        offer = store.get_offer(offer_id)
        raise AssertionError(
            f"not settled in {SETTLE_TIMEOUT_S} s: offer {offer and offer.state}, {describe()}, "
            f"audit {dict(click_story(store, offer_id))}"
        ) from None


async def test_fifty_clicks_on_two_processes_restart_auth_exactly_once(
    tmp_path: Path,
    workspace: SlackWorkspace,
    staging_server: tuple[SandboxStaging, RunningServer],
    shared_database: str,
) -> None:
    sandbox, staging = staging_server
    cloud = demo_cloud(now=datetime.now(UTC), staging=sandbox)
    approvers = ", ".join(f'"{user}"' for user in APPROVERS)
    text = remediable(
        sandbox_config_text(staging.base_url, staging.ws_url)
        + cloud_run_config_text(["api", "auth", "frontend", "websocket"])
        + f"\n[remediation]\napprovers = [{approvers}]\n"
    )
    config_path = tmp_path / "stagebot.toml"
    config_path.write_text(text, encoding="utf-8")
    command = parse_config(text, source="stagebot.toml", environ={}, base_dir=tmp_path).slack.staging_command

    async with (
        serve_cloud_in_loop(cloud) as endpoints,
        httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=len(APPROVERS))) as http,
        bot_processes(
            tmp_path, config_path, bot_environ(tmp_path, shared_database, workspace.base_url, endpoints.environ()),
            http,
        ) as bots,
    ):  # fmt: skip
        senders = [SlackSender(http, bot.events_url, SIGNING_SECRET, workspace) for bot in bots]
        assert (await senders[0].command(command, "status", user=ONCALL, channel=CHANNEL)).status_code == 200
        await workspace.wait_for(lambda: auth_offer_reply(workspace) is not None, 30)
        auth = copy.deepcopy(auth_offer_reply(workspace))  # as every clicker's Slack shows it: buttons and all
        assert auth is not None
        offer_id = int(button(auth, "remediate:restart")["value"])

        # Every approver clicks at once; clicks alternate between the processes, as a load balancer would send them.
        answers = await asyncio.gather(
            *(
                senders[index % PROCESSES].click(
                    action_id="remediate:restart", value=str(offer_id), user=user, channel=CHANNEL,
                    message_ts=auth.ts, thread_ts=auth.thread_ts, blocks=auth.blocks,
                )
                for index, user in enumerate(APPROVERS)
            )
        )  # fmt: skip
        assert [answer.status_code for answer in answers] == [200] * len(APPROVERS)
        # Both processes took part (the audit does not say which process wrote an entry; the acks do).
        per_port = Counter(answer.request.url.port for answer in answers)
        assert per_port == {bot.port: len(APPROVERS) // PROCESSES for bot in bots}

        store = await asyncio.to_thread(open_store, shared_database, {}, StoreSettings(), maintain=False)
        try:
            await settle(
                store, workspace, offer_id, describe=lambda: f"update_service: {cloud.run.count('update_service')}"
            )
            offer = store.get_offer(offer_id)
            actions = click_story(store, offer_id)
        finally:
            store.close()

    updates = cloud.run.count("update_service")
    assert updates == 1
    assert offer is not None and offer.state == "succeeded", offer
    winner = offer.decided_by
    assert winner in APPROVERS
    assert told(workspace, winner or "") == []  # the winner is told nothing: the thread shows the restart
    for user in set(APPROVERS) - {winner}:
        [answer] = told(workspace, user)
        assert f"Already approved by <@{winner}>" in answer
    assert total(actions, "remediation.click") == len(APPROVERS)
    assert total(actions, "remediation.lost") == len(APPROVERS) - 1
    assert total(actions, "remediation.refused") == 0
    assert total(actions, "cloud_run.update_service") == 1
    assert actions["remediation.approved", winner] == 1
    assert sandbox.is_healthy("auth")
