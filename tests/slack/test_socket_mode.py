"""The same bot over Socket Mode: envelopes from the stand-in, acks back, and a reconnect on `disconnect`."""

from __future__ import annotations

from pathlib import Path

from slack_bolt.adapter.socket_mode.websockets import AsyncSocketModeHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import assemble_bot
from bot.config import parse_config
from bot.store import open_store
from sandbox.servers import RunningServer
from sandbox.slack import SlackWorkspace
from sandbox.slack_requests import command_payload
from sandbox.staging import SandboxStaging, sandbox_config_text
from tests.slack.conftest import BOT_TOKEN, CHANNEL, ONCALL, SIGNING_SECRET


async def test_commands_over_socket_mode_and_a_reconnect(
    tmp_path: Path, workspace: SlackWorkspace, staging_server: tuple[SandboxStaging, RunningServer]
) -> None:
    _sandbox, server = staging_server
    config = parse_config(
        sandbox_config_text(server.base_url, server.ws_url), source="t", environ={}, base_dir=tmp_path
    )
    store = open_store(f"sqlite:///{tmp_path}/bot.sqlite3", {}, config.store)
    client = AsyncWebClient(token=BOT_TOKEN, base_url=f"{workspace.base_url}/api/")
    running = await assemble_bot(config, store, client, SIGNING_SECRET)
    handler = AsyncSocketModeHandler(running.app, "xapp-1-sandbox-app-token")
    await running.lifecycle.start()
    await handler.connect_async()  # type: ignore[no-untyped-call]
    try:
        await workspace.wait_for(lambda: workspace.socket_connections == 1)
        payload = command_payload("/staging", "status", user=ONCALL, channel=CHANNEL,
                                  response_url=workspace.response_url_for(CHANNEL, ONCALL))  # fmt: skip
        envelope = await workspace.push_envelope("slash_commands", payload)
        await workspace.wait_for(lambda: envelope in workspace.socket_acks)
        assert "Probing 5 services" in workspace.socket_acks[envelope]["payload"]["text"]
        await workspace.wait_for(lambda: bool(workspace.channel_messages(CHANNEL)), timeout_s=15)

        # Slack rotates the connection: the client must open a new one (and drop the old) and keep working.
        await workspace.disconnect_sockets()
        await workspace.wait_for(
            lambda: workspace.sockets_opened == 2 and workspace.socket_connections == 1, timeout_s=15
        )
        refused = await workspace.push_envelope("slash_commands", {**payload, "text": "nonsense"})
        await workspace.wait_for(lambda: refused in workspace.socket_acks)
        assert "/staging status" in workspace.socket_acks[refused]["payload"]["text"]
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]
        await running.lifecycle.stop()
        store.close()
