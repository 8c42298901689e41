"""`stagebot demo`, the README's first command: it must tell the whole story and exit 0 on a bare machine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_demo_runs_the_story_and_exits_zero(tmp_path: Path) -> None:
    config = tmp_path / "demo" / "stagebot.toml"
    result = subprocess.run(
        [sys.executable, "-m", "bot", "demo", "--config", str(config)],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    transcript = result.stdout
    assert "$ stagebot status" in transcript
    websocket = next(line for line in transcript.splitlines() if line.startswith("websocket"))
    assert "down" in websocket and "caused by api" in websocket
    assert "Demo complete" in transcript
    assert config.exists()  # --config keeps the generated sandbox config for a person to reuse
    assert "Traceback" not in result.stderr
