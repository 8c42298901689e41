"""Real processes sharing one database: concurrent writers, concurrent clicks, and a run killed halfway."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import StoreSettings
from bot.store import RunRecord, Store, open_store, open_store_with_schema
from sandbox.servers import RunningServer, serve_in_thread
from sandbox.staging import SandboxService, SandboxStaging

REPO = Path(__file__).resolve().parents[2]

# Each worker opens the store, says it is ready, waits for the go signal, then does its part; so both really overlap.
WORKER_PRELUDE = """
import sys, time
from pathlib import Path
from bot.config import StoreSettings
from bot.store import open_store
url, folder, name = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
store = open_store(url, {}, StoreSettings())
(folder / f"ready-{name}").touch()
deadline = time.monotonic() + 30
while not (folder / "go").exists():
    if time.monotonic() > deadline:
        sys.exit("no go signal within 30 s")
    time.sleep(0.005)
"""

WRITER = """
from probes.types import ServiceState, ServiceStatus
for i in range(40):
    run_id = store.create_run(kind="status", target=None, requested_by=name, origin="cli")
    status = ServiceStatus(f"svc{i % 4}", "http", "t", ServiceState.UP, 200, 5.0, None, None, {})
    store.record_probe_results(run_id, [status])
    store.finish_run(run_id, state="finished", verdict="up", summary=name)
    store.append_audit(actor=name, action="wrote", subject=f"run:{run_id}", detail={})
print("done")
"""

CLICKER = """
import threading
from datetime import UTC, datetime
offer_id = int(sys.argv[4])
barrier = threading.Barrier(25)
wins = []
def click(i):
    barrier.wait()
    if store.decide_offer(offer_id, decision="approved", decided_by=f"{name}-{i}", now=datetime.now(UTC)).won:
        wins.append(i)
threads = [threading.Thread(target=click, args=(i,)) for i in range(25)]
[t.start() for t in threads]
[t.join() for t in threads]
print(len(wins))
"""


def wait_for(condition: Callable[[], bool], what: str, deadline_s: float = 30.0) -> None:
    end = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline_s:g}s waiting for {what}")
        time.sleep(0.02)


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "STAGEBOT_CONFIG")}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def run_together(tmp_path: Path, code: str, *args: str) -> list[str]:
    """Start two workers, release them at once, and return what each printed."""
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER_PRELUDE + textwrap.dedent(code), *args[:1], str(tmp_path), name, *args[1:]],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(),
            cwd=REPO,
        )
        for name in ("a", "b")
    ]
    try:
        wait_for(lambda: all((tmp_path / f"ready-{n}").exists() for n in ("a", "b")), "both workers to open the store")
        (tmp_path / "go").touch()
        outputs = [worker.communicate(timeout=120) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
    return [out.strip() for out, _ in outputs]


def test_two_processes_writing_at_once_both_succeed(store_url: str, tmp_path: Path) -> None:
    assert run_together(tmp_path, WRITER, store_url) == ["done", "done"]
    store = open_store(store_url, {}, StoreSettings())
    try:
        runs = store.recent_runs(limit=1000)
        assert sorted(r.summary for r in runs) == ["a"] * 40 + ["b"] * 40
        assert all(r.state == "finished" for r in runs)
        assert len(store.audit_entries(limit=1000)) == 80
        report = store.history(since=datetime.now(UTC) - timedelta(hours=1))
        assert sum(s.samples for s in report.services) == 80
    finally:
        store.close()


def test_fifty_clicks_from_two_processes_approve_once(store_url: str, tmp_path: Path) -> None:
    store = open_store(store_url, {}, StoreSettings())
    try:
        expires = datetime.now(UTC) + timedelta(minutes=30)
        offer_id = store.create_offer(service="api", action="restart", requested_by="U0", expires_at=expires)
        wins = run_together(tmp_path, CLICKER, store_url, str(offer_id))
        assert sorted(int(w) for w in wins) == [0, 1]  # one process won once, the other never
        offer = store.get_offer(offer_id)
        assert offer is not None and offer.state == "approved"
    finally:
        store.close()


@pytest.fixture
def hanging_staging() -> Iterator[RunningServer]:
    """A staging whose API takes a minute to answer: long enough to kill a probe round halfway through."""
    staging = SandboxStaging(services={"api": SandboxService(http="slow", delay_ms=60_000), "web": SandboxService()})
    with serve_in_thread(staging.app()) as server:
        yield server


def test_a_killed_status_run_is_marked_interrupted_on_the_next_open(
    store_url: str, tmp_path: Path, hanging_staging: RunningServer
) -> None:
    config = tmp_path / "stagebot.toml"
    config.write_text(
        f"""
[services.api]
kind = "http"
url = "{hanging_staging.base_url}/api/health"
timeout_s = 120

[services.web]
kind = "http"
url = "{hanging_staging.base_url}/web/health"
""",
        encoding="utf-8",
    )
    observer, _ = open_store_with_schema(store_url, {}, StoreSettings())  # no maintenance: only looks
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "status", "--config", str(config)],
        env=child_env(DATABASE_URL=store_url), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:

        def running() -> list[RunRecord]:
            return observer.recent_runs(kind="status", states=["running"])

        wait_for(lambda: bool(running()) or process.poll() is not None, "the status run to be stored")
        assert process.poll() is None, process.communicate()
        [run] = running()
        os.kill(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)  # reaped: a zombie's pid would still look alive
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        observer.close()

    store = open_store(store_url, {}, StoreSettings())
    try:
        after = store.get_run(run.id)
        assert after is not None and after.state == "interrupted"
        assert f"process {store.host}:{process.pid} is gone" in after.summary
        assert after.finished_at is not None
    finally:
        store.close()


def test_interrupted_runs_are_not_tier_history(store: Store) -> None:
    run_id = store.create_run(kind="tier", target="p1", requested_by="x", origin="cli")
    store.finish_run(run_id, state="interrupted", summary="killed")
    assert store.tier_history("p1").collected_counts == ()
