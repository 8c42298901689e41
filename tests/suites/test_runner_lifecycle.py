"""How a run ends: timeouts, cancels and clean exits leave no process behind; events arrive while pytest runs."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from bot.errors import UsageError
from bot.redaction import Redactor
from suites.events import Event, SessionStarted, TestStarted
from suites.report import render_summary, report_to_json
from suites.runner import TierRunner
from tests.suites.conftest import is_gone, make_engine, make_tier


def _child_pid(path: Path) -> int:
    return int(path.read_text())


async def _wait_until_gone(pid: int, deadline_s: float = 10.0) -> bool:
    deadline = time.monotonic() + deadline_s
    while not is_gone(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def test_timeout_ends_pytest_and_the_child_it_spawned(suites_dir: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    tier = make_tier(
        suites_dir, ["cases/test_spawns_and_hangs.py"], timeout_s=3.0, env={"CHILD_PID_FILE": str(pid_file)}
    )
    report = await make_engine(grace_s=2.0).run(tier)
    assert report.verdict.state.value == "incomplete"
    assert [r.code for r in report.verdict.reasons] == ["timeout"]
    assert is_gone(_child_pid(pid_file)), "the test's child survived the timeout"


async def test_a_clean_exit_still_sweeps_children_left_behind(suites_dir: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    tier = make_tier(suites_dir, ["cases/test_leaves_child.py"], env={"CHILD_PID_FILE": str(pid_file)})
    report = await make_engine().run(tier)
    assert report.verdict.state.value == "passed"
    assert is_gone(_child_pid(pid_file)), "a child the test left behind outlived the run"


async def test_stop_set_from_a_live_event_cancels_the_run(suites_dir: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    tier = make_tier(suites_dir, ["cases/test_spawns_and_hangs.py"], env={"CHILD_PID_FILE": str(pid_file)})
    stop = asyncio.Event()
    seen: list[Event] = []

    def on_event(event: Event) -> None:
        seen.append(event)
        if isinstance(event, TestStarted):
            stop.set()  # only possible if events stream while pytest is still running

    started = time.monotonic()
    report = await make_engine().run(tier, on_event=on_event, stop=stop)
    assert time.monotonic() - started < 30
    assert isinstance(seen[0], SessionStarted)
    assert report.verdict.state.value == "incomplete"
    assert report.verdict.headline.startswith("cancelled")
    assert await _wait_until_gone(_child_pid(pid_file)) if pid_file.exists() else True


async def test_cancelling_the_task_ends_the_process_group(suites_dir: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    tier = make_tier(suites_dir, ["cases/test_spawns_and_hangs.py"], env={"CHILD_PID_FILE": str(pid_file)})
    task = asyncio.create_task(make_engine().run(tier))
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the fixture test never started its child"
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert is_gone(_child_pid(pid_file))


async def test_secrets_and_token_shapes_are_redacted_everywhere(suites_dir: Path) -> None:
    secret = "s3cr3t-staging-token-value"
    tier = make_tier(suites_dir, ["cases/test_secrets.py"], env={"STAGING_TEST_JWT_TOKEN": secret})
    report = await make_engine(secrets=[secret]).run(tier)
    assert report.verdict.state.value == "failed"
    shown = json.dumps(report_to_json(report)) + render_summary(report) + report.output_tail
    shown += "".join(r.message for r in report.results)
    for leaked in (secret, "eyJhbGciOiJIUzI1NiJ9", "xoxb-1234567890", "abcdef123456"):
        assert leaked not in shown
    assert "token *** rejected; jwt ***; ***" in report.failures[0].message
    assert "using token *** and ***" in report.output_tail


def test_a_missing_root_is_a_usage_error(tmp_path: Path) -> None:
    tier = make_tier(tmp_path / "nowhere", ["tests"])
    with pytest.raises(UsageError, match=r"root .* does not exist"):
        asyncio.run(TierRunner(Redactor()).run(tier))


def test_a_python_that_is_not_executable_is_a_usage_error(tmp_path: Path) -> None:
    fake = tmp_path / "python"
    fake.write_text("not a program")
    tier = make_tier(tmp_path, ["tests"], python=str(fake))
    with pytest.raises(UsageError, match="is not an executable file"):
        asyncio.run(TierRunner(Redactor()).run(tier))
