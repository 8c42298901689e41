"""`/e2e` in Slack: live progress, an honest verdict in the channel, details in the thread, one run per tier."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox.servers import RunningServer
from sandbox.slack import SlackWorkspace
from sandbox.staging import SandboxStaging
from tests.slack.conftest import CHANNEL, ONCALL, BotHarness, start_bot
from tests.slack.test_staging_command import block_text
from tests.suites.conftest import is_gone

FIXTURE_SUITES = Path(__file__).resolve().parents[1] / "fixtures" / "suites"


@pytest.fixture
async def e2e_bot(
    tmp_path: Path, workspace: SlackWorkspace, staging_server: tuple[SandboxStaging, RunningServer]
) -> AsyncIterator[BotHarness]:
    sandbox, server = staging_server
    sandbox.set("api", http="healthy")
    sandbox.set("auth", http="healthy")
    suites = tmp_path / "suites"
    shutil.copytree(FIXTURE_SUITES, suites, ignore=shutil.ignore_patterns("conftest.py", "__pycache__"))
    tiers = f"""
[tiers.honest]
paths = ["cases/test_honest.py"]
root = "{suites}"
timeout_s = 60
env = {{ SERVICE_URL = "{server.base_url}" }}

[tiers.skippy]
paths = ["cases/test_all_skipped.py"]
root = "{suites}"
timeout_s = 60

[tiers.hangs]
paths = ["cases/test_spawns_and_hangs.py"]
root = "{suites}"
timeout_s = 120
env = {{ CHILD_PID_FILE = "{tmp_path}/child.pid" }}

[slack]
allowed_users = ["{ONCALL}"]
allowed_groups = ["S0QA"]
"""
    workspace.usergroups["S0QA"] = ["U0QA"]
    async with start_bot(tmp_path, workspace, staging_server, tiers) as harness:
        harness.running.bot.progress_interval_s = 0.2
        yield harness


async def e2e(bot: BotHarness, text: str, user: str = ONCALL) -> str:
    answer = await bot.slack.command("/e2e", text, user=user, channel=CHANNEL)
    assert answer.status_code == 200
    return answer.text


async def finished(bot: BotHarness, run_id: int) -> None:
    ws = bot.workspace
    await ws.wait_for(
        lambda: (r := bot.store.get_run(run_id)) is not None and r.state != "running" and r.state != "queued", 60
    )
    await ws.wait_for(
        lambda: bool(ws.channel_messages(CHANNEL)) and len(ws.thread(CHANNEL, ws.channel_messages(CHANNEL)[0].ts)) >= 1,
        20,
    )


async def test_a_passing_tier_ends_green_with_its_counts(e2e_bot: BotHarness) -> None:
    assert "Running `honest` (run #1)" in await e2e(e2e_bot, "run honest")
    await finished(e2e_bot, 1)
    ws = e2e_bot.workspace
    [main] = ws.channel_messages(CHANNEL)
    assert "honest: passed" in main.text
    assert "2 passed, 0 failed of 2 collected" in block_text(main.blocks)
    [details] = ws.thread(CHANNEL, main.ts)
    text = block_text(details.blocks)
    assert "*Slowest*" in text and "test_api_health" in text
    assert ":mag:" not in text and "*Failures*" not in text  # no trust reason, no failure
    run = e2e_bot.store.get_run(1)
    assert run is not None and run.verdict == "passed" and run.origin == "slack"


async def test_a_green_run_that_skipped_everything_is_untrusted(e2e_bot: BotHarness) -> None:
    await e2e(e2e_bot, "run skippy")
    await finished(e2e_bot, 1)
    ws = e2e_bot.workspace
    [main] = ws.channel_messages(CHANNEL)
    assert "UNTRUSTED" in main.text
    assert "`skipped`" in block_text(main.blocks)
    details = block_text(ws.thread(CHANNEL, main.ts)[0].blocks)
    assert "*skipped*" in details and "no STAGING token" in details


async def test_one_run_per_tier_live_progress_and_cancel_without_orphans(e2e_bot: BotHarness) -> None:
    ws = e2e_bot.workspace
    assert "run #1" in await e2e(e2e_bot, "run hangs")
    pid_file = Path(e2e_bot.config.tiers["hangs"].env["CHILD_PID_FILE"])
    await ws.wait_for(lambda: pid_file.exists() and pid_file.read_text().strip() != "", 30)
    # Live progress: the channel message is edited with the test running now.
    await ws.wait_for(
        lambda: any("test_spawns_child_then_hangs" in block_text(m.blocks) for m in ws.channel_messages(CHANNEL)), 15
    )
    # A second request for a running tier points at the running one instead of starting another.
    again = await e2e(e2e_bot, "run hangs")
    assert "already running (run #1)" in again and "slack.com/archives/" in again
    assert len(e2e_bot.store.recent_runs(kind="tier")) == 1

    assert "Cancelling run #1" in await e2e(e2e_bot, "cancel 1")
    await finished(e2e_bot, 1)
    run = e2e_bot.store.get_run(1)
    assert run is not None and run.verdict == "incomplete"
    [main] = ws.channel_messages(CHANNEL)
    assert "INCOMPLETE" in main.text
    child = int(pid_file.read_text())
    await ws.wait_for(lambda: is_gone(child), 10)  # the test's own child died with pytest's process group


async def test_refusals_run_nothing(e2e_bot: BotHarness) -> None:
    assert "No tier named `nope`" in await e2e(e2e_bot, "run nope")
    assert "exactly one tier name" in await e2e(e2e_bot, "run honest skippy")
    assert "not allowed to run test tiers" in await e2e(e2e_bot, "run honest", user="U0STRANGER")
    assert "There is no test run #99" in await e2e(e2e_bot, "cancel 99")
    assert e2e_bot.store.recent_runs() == []
    # A member of an allowed user group may run tiers.
    assert "Running `honest`" in await e2e(e2e_bot, "run honest", user="U0QA")


async def test_list_and_history(e2e_bot: BotHarness) -> None:
    listing = await e2e(e2e_bot, "list")
    assert "*honest*" in listing and "*skippy*" in listing
    assert "No runs of `honest`" in await e2e(e2e_bot, "history honest")
    await e2e(e2e_bot, "run honest")
    await finished(e2e_bot, 1)
    assert "1/1 passed" in await e2e(e2e_bot, "history honest")
