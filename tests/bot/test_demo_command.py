"""`stagebot demo`, the README's first command: the whole story on a bare machine, exit 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_demo_plays_the_whole_story_and_exits_zero(tmp_path: Path) -> None:
    config = tmp_path / "demo" / "stagebot.toml"
    result = subprocess.run(
        [sys.executable, "-m", "bot", "demo", "--config", str(config)],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
    )  # fmt: skip
    transcript = result.stdout
    assert result.returncode == 0, transcript + result.stderr
    assert result.stderr == ""  # no warning, no traceback reaches the person watching
    # The status table, then a diagnosis per down service with its evidence, and the echo named as such.
    assert "/staging status" in transcript and "3 down" in transcript
    assert "port_mismatch" in transcript and "PORT=8080" in transcript
    assert "out_of_memory" in transcript and "Memory limit of 512 MiB exceeded with 530 MiB used." in transcript
    assert "caused by *api*" in transcript
    # An approver's click, the confirm dialog, the recovery.
    assert "[ Restart ]" in transcript and "Slack asks: Restart auth?" in transcript
    assert "auth is up again" in transcript and "api is up again" in transcript
    assert "Approved by @lee (approver)" in transcript
    # Green again, then an honest pass and an untrusted green.
    assert "0 down" in transcript
    assert "p1: passed" in transcript
    assert "tokens: UNTRUSTED" in transcript and "`skipped`" in transcript
    assert "remediation.approved" in transcript and "cloud_run.update_service" in transcript
    assert "Demo complete" in transcript
    assert config.exists() and (config.parent / "demo.sqlite3").exists()  # --config keeps both for a person to reuse
