"""`/staging` through real signed HTTP requests: the ack, the channel message, the thread, and every refusal."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from sandbox.cloud_scenarios import cloud_run_config_text, demo_cloud, serve_cloud_in_loop
from sandbox.servers import RunningServer
from sandbox.slack import SlackMessage, SlackWorkspace
from sandbox.staging import SandboxStaging
from tests.slack.conftest import CHANNEL, ONCALL, BotHarness, start_bot


def block_text(blocks: list[dict]) -> str:  # type: ignore[type-arg]
    texts = []
    for block in blocks:
        if "text" in block and isinstance(block["text"], dict):
            texts.append(block["text"]["text"])
        for element in block.get("elements", []):
            if isinstance(element.get("text"), str):
                texts.append(element["text"])
    return "\n".join(texts)


def reply_service(message: SlackMessage) -> str:
    """Return the service a thread reply is about: the first bold name in it."""
    return block_text(message.blocks).split("*")[1]


async def test_status_acks_fast_then_posts_the_table_and_a_thread(bot: BotHarness) -> None:
    started = time.perf_counter()
    answer = await bot.status()
    ack_s = time.perf_counter() - started
    assert answer.status_code == 200
    assert "Probing 5 services" in answer.text
    assert ack_s < 1.0
    # The run is stored before the ack returned.
    runs = bot.store.recent_runs(kind="status")
    assert len(runs) == 1 and runs[0].origin == "slack" and runs[0].requested_by == ONCALL

    ws = bot.workspace
    await ws.wait_for(
        lambda: (
            len(ws.thread(CHANNEL, ws.channel_messages(CHANNEL)[0].ts)) == 3 if ws.channel_messages(CHANNEL) else False
        )
    )
    [main] = ws.channel_messages(CHANNEL)
    text = block_text(main.blocks)
    assert "1/5 up" in main.text and "3 down" in main.text and "1 degraded" in main.text
    assert "*api* down" in text and "HTTP 503" in text and "Core API for every customer-facing feature" in text
    assert "*websocket* down" in text and "caused by api" in text
    assert "availability 20%" in text
    replies = {reply_service(m): block_text(m.blocks) for m in ws.thread(CHANNEL, main.ts)}
    assert set(replies) == {"api", "auth", "websocket"}
    assert "caused by *api*" in replies["websocket"]
    assert "is down: HTTP 503" in replies["auth"]
    # With no Cloud Run mapping the reply says so, instead of guessing.
    assert "no Cloud Run mapping" in replies["auth"]
    # The run finished with its probe results recorded.
    [run] = bot.store.recent_runs(kind="status")
    assert run.state == "finished" and run.verdict == "down"


async def test_unknown_subcommand_or_garbage_is_refused_and_nothing_runs(bot: BotHarness) -> None:
    for text in ("stauts", "status now please", "history nosuchservice", "diagnose"):
        answer = await bot.status(text=text)
        assert answer.status_code == 200
        assert "/staging status" in answer.text  # the valid choices are listed
    assert bot.store.recent_runs() == []
    assert bot.workspace.calls_of("chat.postMessage") == []


async def test_help_lists_the_commands(bot: BotHarness) -> None:
    answer = await bot.status(text="help")
    assert "/staging status" in answer.text and "/staging history" in answer.text


async def test_bad_signature_stale_and_replayed_requests_get_401_and_do_nothing(bot: BotHarness) -> None:
    from urllib.parse import urlencode

    from sandbox.slack_requests import command_payload, signed_headers

    body = urlencode(
        command_payload("/staging", "status", user=ONCALL, channel=CHANNEL, response_url="http://127.0.0.1:9/x")
    ).encode()
    url = bot.slack.events_url
    http = bot.slack.client
    wrong = signed_headers("not-the-secret", body)
    assert (await http.post(url, content=body, headers=wrong)).status_code == 401
    stale = signed_headers("sandbox-signing-secret-0123456789", body, timestamp=time.time() - 6 * 60)
    assert (await http.post(url, content=body, headers=stale)).status_code == 401
    future = signed_headers("sandbox-signing-secret-0123456789", body, timestamp=time.time() + 6 * 60)
    assert (await http.post(url, content=body, headers=future)).status_code == 401
    unsigned = {"content-type": "application/x-www-form-urlencoded"}
    assert (await http.post(url, content=body, headers=unsigned)).status_code == 401
    assert bot.store.recent_runs() == []

    good = signed_headers("sandbox-signing-secret-0123456789", body)
    assert (await http.post(url, content=body, headers=good)).status_code == 200
    assert (await http.post(url, content=body, headers=good)).status_code == 401  # the same request again
    assert len(bot.store.recent_runs()) == 1


async def test_a_slack_retry_never_starts_a_second_run(bot: BotHarness) -> None:
    retry = {"x-slack-retry-num": "1", "x-slack-retry-reason": "http_timeout"}
    answer = await bot.slack.command("/staging", "status", user=ONCALL, channel=CHANNEL, headers=retry)
    assert answer.status_code == 200
    assert bot.store.recent_runs() == []


async def test_disallowed_channel_is_refused(
    tmp_path: Path, workspace: SlackWorkspace, staging_server: tuple[SandboxStaging, RunningServer]
) -> None:
    async with start_bot(tmp_path, workspace, staging_server, '[slack]\nallowed_channels = ["C0OTHER"]\n') as bot:
        answer = await bot.status()
        assert "not enabled in this channel" in answer.text
        assert bot.store.recent_runs() == []


async def test_history_in_slack_reads_recorded_runs(bot: BotHarness) -> None:
    empty = await bot.status(text="history")
    assert "No status runs recorded" in empty.text
    await bot.status()
    ws = bot.workspace
    await ws.wait_for(lambda: bool(ws.channel_messages(CHANNEL)))
    await ws.wait_for(lambda: bot.store.recent_runs()[0].state == "finished")
    answer = await bot.status(text="history api")
    assert "*api*: down, uptime 0.0% over 1 runs" in answer.text


async def test_healthz_reports_the_database(bot: BotHarness) -> None:
    response = await bot.slack.client.get(f"{bot.server.base_url}/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok", "database": "ok"}


async def test_down_services_on_cloud_run_get_a_diagnosis_with_evidence(
    tmp_path: Path, workspace: SlackWorkspace, staging_server: tuple[SandboxStaging, RunningServer]
) -> None:
    sandbox, _server = staging_server
    cloud = demo_cloud(now=datetime.now(UTC), staging=sandbox)
    mappings = cloud_run_config_text(["api", "auth", "frontend", "websocket"])
    async with (
        serve_cloud_in_loop(cloud) as endpoints,
        start_bot(tmp_path, workspace, staging_server, mappings, environ=endpoints.environ()) as bot,
    ):
        await bot.status()
        ws = bot.workspace
        await ws.wait_for(
            lambda: (
                bool(ws.channel_messages(CHANNEL)) and len(ws.thread(CHANNEL, ws.channel_messages(CHANNEL)[0].ts)) == 3
            ),
            20,
        )
        [main] = ws.channel_messages(CHANNEL)
        replies = {reply_service(m): block_text(m.blocks) for m in ws.thread(CHANNEL, main.ts)}
        assert "port_mismatch" in replies["auth"]
        assert "failed to start and listen on the port defined provided by the PORT=8080" in replies["auth"]
        assert "out_of_memory" in replies["api"]
        assert "Memory limit of 512 MiB exceeded with 530 MiB used." in replies["api"]
        # The WebSocket is only the API's echo: no diagnosis of its own.
        assert "caused by *api*" in replies["websocket"] and "port_mismatch" not in replies["websocket"]
        # The diagnoses are kept under the status run.
        [run] = bot.store.recent_runs(kind="status")
        details = [bot.store.findings(d) for d in diagnosis_ids(bot, run.id)]
        assert {f.code for found in details for f in found} >= {"port_mismatch", "out_of_memory"}

        answer = await bot.status(text="diagnose auth")
        assert "Diagnosing `auth`" in answer.text
        await ws.wait_for(lambda: len(ws.channel_messages(CHANNEL)) == 2, 20)
        assert "port_mismatch" in block_text(ws.channel_messages(CHANNEL)[1].blocks)


def diagnosis_ids(bot: BotHarness, run_id: int) -> list[int]:
    import sqlalchemy as sa

    with bot.store.engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT id FROM diagnoses WHERE run_id = :r"), {"r": run_id}).scalars()
        return [int(r) for r in rows]
