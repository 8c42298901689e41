"""Delivery that loses nothing: a Slack outage delays messages, a restart resumes them, nothing is posted twice."""

from __future__ import annotations

from pathlib import Path

from sandbox.servers import RunningServer
from sandbox.slack import SlackWorkspace
from sandbox.staging import SandboxStaging
from tests.slack.conftest import CHANNEL, BotHarness, start_bot


async def test_rate_limits_and_server_errors_delay_but_lose_nothing(bot: BotHarness) -> None:
    ws = bot.workspace
    ws.fail_next("chat.postMessage", status=429, times=1, retry_after_s=1)
    ws.fail_next("chat.postMessage", status=503, times=2)
    await bot.status()
    await ws.wait_for(
        lambda: bool(ws.channel_messages(CHANNEL)) and len(ws.thread(CHANNEL, ws.channel_messages(CHANNEL)[0].ts)) == 3,
        timeout_s=20,
    )
    failed = [c for c in ws.calls if c.method == "chat.postMessage" and c.status != 200]
    assert [c.status for c in failed] == [429, 503, 503]
    # The retry after the 429 waited for Retry-After (1 s), not less.
    first_429 = failed[0]
    next_try = next(c for c in ws.calls if c.method == "chat.postMessage" and c.at > first_429.at)
    assert next_try.at - first_429.at >= 0.95
    # Exactly one channel message and one reply per down service: nothing lost, nothing twice.
    assert len(ws.channel_messages(CHANNEL)) == 1
    assert len(ws.calls_of("chat.postMessage")) == 4


async def test_messages_left_undelivered_are_posted_after_a_restart_once(
    tmp_path: Path, workspace: SlackWorkspace, staging_server: tuple[SandboxStaging, RunningServer]
) -> None:
    database = f"sqlite:///{tmp_path}/shared.sqlite3"
    # Slack is down for longer than the first bot lives.
    workspace.fail_next("chat.postMessage", status=500, times=1000)
    async with start_bot(tmp_path, workspace, staging_server, database=database) as first:
        await first.status()
        await workspace.wait_for(lambda: len(workspace.calls_of("chat.postMessage", succeeded=False)) >= 1)
        await workspace.wait_for(lambda: first.store.recent_runs()[0].state == "finished")
    assert workspace.channel_messages(CHANNEL) == []

    workspace._faults.clear()  # Slack is back
    async with start_bot(tmp_path, workspace, staging_server, database=database):
        await workspace.wait_for(
            lambda: (
                bool(workspace.channel_messages(CHANNEL))
                and len(workspace.thread(CHANNEL, workspace.channel_messages(CHANNEL)[0].ts)) == 3
            ),
            timeout_s=20,
        )
    assert len(workspace.channel_messages(CHANNEL)) == 1
    assert len(workspace.calls_of("chat.postMessage")) == 4


async def test_a_long_report_keeps_within_slack_limits_and_uploads_the_rest(
    tmp_path: Path, workspace: SlackWorkspace, staging_server: tuple[SandboxStaging, RunningServer]
) -> None:
    _sandbox, server = staging_server
    many = "".join(
        f'\n[services.extra{i:03d}]\nkind = "http"\nurl = "{server.base_url}/api/health"\nretries = 0\n'
        f'impact = "{"A long impact statement for a service nobody reads to the end. " * 3}"\n'
        for i in range(120)
    )
    async with start_bot(tmp_path, workspace, staging_server, many) as bot:
        await bot.status()
        await workspace.wait_for(lambda: any(f.content for f in workspace.files.values()), timeout_s=30)
        [main] = workspace.channel_messages(CHANNEL)
    import json

    assert len(main.blocks) <= 50
    assert len(json.dumps(main.blocks)) <= 13_000
    [uploaded] = [f for f in workspace.files.values() if f.content]
    assert uploaded.thread_ts == main.ts
    table = uploaded.content.decode()
    assert table.count("\n") == 125  # a header and every one of the 125 services
    assert "extra119" in table


async def test_a_post_that_went_through_unheard_is_not_posted_again(bot: BotHarness) -> None:
    # Slack posts the status message but the bot never hears (a 503 after the fact, like a timeout): the retry
    # finds the message by its metadata key and marks it delivered instead of posting it a second time.
    ws = bot.workspace
    ws.fail_next("chat.postMessage", status=503, times=1, applied=True)
    await bot.status()
    await ws.wait_for(
        lambda: bool(ws.channel_messages(CHANNEL)) and len(ws.thread(CHANNEL, ws.channel_messages(CHANNEL)[0].ts)) == 3,
        timeout_s=20,
    )
    assert len(ws.channel_messages(CHANNEL)) == 1
    assert ws.calls_of("conversations.history")  # it looked before posting again
    [main] = ws.channel_messages(CHANNEL)
    assert main.metadata is not None and main.metadata["event_type"] == "stagebot_message"


async def test_a_crash_between_posting_and_recording_posts_once(
    tmp_path: Path, workspace: SlackWorkspace, staging_server: tuple[SandboxStaging, RunningServer]
) -> None:
    from datetime import UTC, datetime

    from bot.slack.delivery import METADATA_TYPE
    from bot.slack.render import SlackMessage as Rendered

    database = f"sqlite:///{tmp_path}/shared.sqlite3"
    async with start_bot(tmp_path, workspace, staging_server, database=database) as first:
        deliverer = first.running.bot.deliverer
        message_id = await deliverer.post(
            key="crash-test", channel=CHANNEL, message=Rendered(text="posted before the crash"), deliver_now=False
        )
        # The process claims the message, Slack posts it, and the process dies before recording that it did.
        [claimed] = first.store.claim_messages(now=datetime.now(UTC))
        assert claimed.id == message_id
        await deliverer.client.chat_postMessage(
            channel=CHANNEL, text="posted before the crash",
            metadata={"event_type": METADATA_TYPE, "event_payload": {"key": "crash-test"}},
        )  # fmt: skip
        # A dead process's claim lapses after its 60 s lease; release it now instead of waiting that out.
        first.store.mark_failed(message_id, error="the process died", retry_at=datetime.now(UTC))
    async with start_bot(tmp_path, workspace, staging_server, database=database) as second:
        await workspace.wait_for(lambda: second.store.get_message(message_id).delivered_at is not None, 10)  # type: ignore[union-attr]
    assert [m.text for m in workspace.channel_messages(CHANNEL)] == ["posted before the crash"]
