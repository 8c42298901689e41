"""The bot under uvicorn on port 0, the Slack stand-in, the sandbox staging: all in the test's own loop."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import RunningBot, assemble_bot
from bot.config import Config, parse_config
from bot.slack.server import build_asgi_app, database_check
from bot.store import Store, open_store
from sandbox.servers import RunningServer, serve_in_loop
from sandbox.slack import SlackWorkspace
from sandbox.slack_requests import SlackSender
from sandbox.staging import SandboxStaging, broken_staging, sandbox_config_text

SIGNING_SECRET = "sandbox-signing-secret-0123456789"
BOT_TOKEN = "xoxb-1111-2222-sandboxbottoken"
CHANNEL = "C0STAGING"
ONCALL = "U0ONCALL"


@dataclass
class BotHarness:
    workspace: SlackWorkspace
    staging: SandboxStaging
    store: Store
    running: RunningBot
    server: RunningServer
    slack: SlackSender
    config: Config

    async def status(self, user: str = ONCALL, channel: str = CHANNEL, text: str = "status") -> httpx.Response:
        return await self.slack.command(self.config.slack.staging_command, text, user=user, channel=channel)


@pytest.fixture
async def workspace() -> AsyncIterator[SlackWorkspace]:
    workspace = SlackWorkspace(usergroups={"S0ONCALL": [ONCALL]})
    async with serve_in_loop(workspace.app()) as running:
        workspace.base_url = running.base_url
        yield workspace


@pytest.fixture
async def staging_server() -> AsyncIterator[tuple[SandboxStaging, RunningServer]]:
    staging = broken_staging()
    async with serve_in_loop(staging.app()) as running:
        yield staging, running


@contextlib.asynccontextmanager
async def start_bot(
    tmp_path: Path,
    workspace: SlackWorkspace,
    staging: tuple[SandboxStaging, RunningServer],
    extra_config: str = "",
    database: str | None = None,
    environ: dict[str, str] | None = None,
    edit_config: Callable[[str], str] = lambda text: text,
) -> AsyncIterator[BotHarness]:
    """Start the real bot (assemble_bot + the ASGI app under uvicorn, lifespan on) against the stand-ins."""
    sandbox, sandbox_server = staging
    text = edit_config(sandbox_config_text(sandbox_server.base_url, sandbox_server.ws_url) + extra_config)
    config = parse_config(text, source="bot.toml", environ={}, base_dir=tmp_path)
    store = open_store(database or f"sqlite:///{tmp_path}/bot.sqlite3", {}, config.store)
    client = AsyncWebClient(token=BOT_TOKEN, base_url=f"{workspace.base_url}/api/")
    running = await assemble_bot(
        config, store, client, SIGNING_SECRET, environ=environ or {}, drain_timeout_s=10, poll_interval_s=0.1
    )
    # Deliveries retried by the background loop are checked every 0.2 s here, so outage tests stay short.
    running.lifecycle.delivery_interval_s = 0.2
    asgi = build_asgi_app(running.app, running.lifecycle, database_check(store.engine), SIGNING_SECRET)
    async with serve_in_loop(asgi, lifespan=True) as server, httpx.AsyncClient(timeout=10) as http:
        sender = SlackSender(http, f"{server.base_url}/slack/events", SIGNING_SECRET, workspace)
        try:
            yield BotHarness(workspace, sandbox, store, running, server, sender, config)
        finally:
            pass
    store.close()


@pytest.fixture
async def bot(
    tmp_path: Path, workspace: SlackWorkspace, staging_server: tuple[SandboxStaging, RunningServer]
) -> AsyncIterator[BotHarness]:
    async with start_bot(tmp_path, workspace, staging_server) as harness:
        yield harness
