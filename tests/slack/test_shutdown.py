"""A shutdown (uvicorn's lifespan end, which SIGTERM triggers) drains: work past the deadline is stopped and marked."""

from __future__ import annotations

import shutil
from pathlib import Path

from bot.store import RunRecord, open_store
from sandbox.servers import RunningServer
from sandbox.slack import SlackWorkspace
from sandbox.staging import SandboxStaging
from tests.slack.conftest import CHANNEL, ONCALL, start_bot
from tests.suites.conftest import is_gone

FIXTURE_SUITES = Path(__file__).resolve().parents[1] / "fixtures" / "suites"


async def run_left_at_shutdown(
    tmp_path: Path, workspace: SlackWorkspace, staging_server: tuple[SandboxStaging, RunningServer]
) -> tuple[RunRecord, int]:
    """Start a tier that hangs, shut the bot down under it; return the run as stored afterwards, and its child's pid."""
    suites = tmp_path / "suites"
    shutil.copytree(FIXTURE_SUITES, suites, ignore=shutil.ignore_patterns("conftest.py", "__pycache__"))
    pid_file = tmp_path / "child.pid"
    tiers = f"""
[tiers.hangs]
paths = ["cases/test_spawns_and_hangs.py"]
root = "{suites}"
timeout_s = 120
env = {{ CHILD_PID_FILE = "{pid_file}" }}
"""
    async with start_bot(tmp_path, workspace, staging_server, tiers) as bot:
        bot.running.lifecycle.drain_timeout_s = 0.5  # the run hangs for 600 s: the drain must give up on it
        answer = await bot.slack.command("/e2e", "run hangs", user=ONCALL, channel=CHANNEL)
        assert "Running `hangs` (run #1)" in answer.text
        await workspace.wait_for(lambda: pid_file.exists() and pid_file.read_text().strip() != "", 30)
        running = bot.store.get_run(1)
        assert running is not None and running.state == "running"
    # Leaving the block ended the server's lifespan, as SIGTERM does: BotLifecycle.stop ran.
    store = open_store(f"sqlite:///{tmp_path}/bot.sqlite3", {}, bot.config.store)
    try:
        run = store.get_run(1)
    finally:
        store.close()
    assert run is not None
    return run, int(pid_file.read_text())


async def test_a_run_still_going_at_shutdown_is_stopped_and_finished(
    tmp_path: Path, workspace: SlackWorkspace, staging_server: tuple[SandboxStaging, RunningServer]
) -> None:
    run, child = await run_left_at_shutdown(tmp_path, workspace, staging_server)
    assert run.state not in ("queued", "running") and run.finished_at is not None
    await workspace.wait_for(lambda: is_gone(child), 10)  # the tier's processes did not outlive the bot


async def test_a_run_stopped_by_shutdown_says_so(
    tmp_path: Path, workspace: SlackWorkspace, staging_server: tuple[SandboxStaging, RunningServer]
) -> None:
    run, _ = await run_left_at_shutdown(tmp_path, workspace, staging_server)
    assert (run.state, run.summary) == ("interrupted", "stopped by a bot shutdown")
