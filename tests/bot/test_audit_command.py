"""`stagebot audit` and `stagebot actions` read what remediation recorded, through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.config import StoreSettings
from bot.store import open_store


def run_cli(*args: str, database: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=60, check=False
    )


def test_audit_tells_the_story_and_actions_lists_what_waits(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path}/store.sqlite3"
    store = open_store(database, {}, StoreSettings())
    now = datetime.now(UTC)
    waiting = store.create_offer(
        service="api", action="rollback", requested_by="U0ONCALL", expires_at=now + timedelta(minutes=30),
        etag='"e1"', target_revision="api-00041-abc",
    )  # fmt: skip
    expired = store.create_offer(
        service="api", action="restart", requested_by="U0ONCALL", expires_at=now - timedelta(minutes=1), etag='"e1"'
    )
    done = store.create_offer(
        service="auth", action="restart", requested_by="U0ONCALL", expires_at=now + timedelta(minutes=30), etag='"e2"'
    )
    store.decide_offer(done, decision="approved", decided_by="U0LEAD", now=now)
    for actor, action in (("stagebot", "remediation.offered"), ("U0LEAD", "remediation.approved"),
                          ("U0LEAD", "cloud_run.update_service"), ("U0LEAD", "remediation.succeeded")):  # fmt: skip
        store.append_audit(actor=actor, action=action, subject="service:auth", detail={"offer_id": done})
    store.append_audit(actor="U0X", action="remediation.refused", subject="service:api", detail={"offer_id": expired})
    store.close()

    audit = run_cli("audit", "--service", "auth", "--json", database=database, cwd=tmp_path)
    assert audit.returncode == 0, audit.stderr
    entries = json.loads(audit.stdout)["entries"]
    assert [e["action"] for e in entries] == [
        "remediation.offered", "remediation.approved", "cloud_run.update_service", "remediation.succeeded"
    ]  # fmt: skip
    assert {e["subject"] for e in entries} == {"service:auth"}
    text = run_cli("audit", database=database, cwd=tmp_path).stdout
    assert "U0LEAD" in text and "remediation.refused" in text

    actions = run_cli("actions", "--json", database=database, cwd=tmp_path)
    assert actions.returncode == 0, actions.stderr
    pending = json.loads(actions.stdout)["pending"]
    assert [(p["id"], p["action"], p["target_revision"]) for p in pending] == [(waiting, "rollback", "api-00041-abc")]
    assert "#" + str(waiting) in run_cli("actions", database=database, cwd=tmp_path).stdout


def test_bad_window_is_one_line_exit_2(tmp_path: Path) -> None:
    result = run_cli("audit", "--since", "yesterday", database=f"sqlite:///{tmp_path}/s.sqlite3", cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "--since" in result.stderr
