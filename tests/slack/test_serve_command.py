"""`stagebot serve` refuses to start without its secrets, with one line naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.commands.serve import resolve_port
from bot.errors import UsageError


@pytest.mark.parametrize(
    ("environ", "flags", "missing"),
    [
        ({}, [], "SLACK_BOT_TOKEN"),
        ({"SLACK_BOT_TOKEN": "xoxb-1-2-abc"}, [], "SLACK_SIGNING_SECRET"),
        ({"SLACK_BOT_TOKEN": "xoxb-1-2-abc", "SLACK_SIGNING_SECRET": "s3cret"}, ["--socket"], "SLACK_APP_TOKEN"),
    ],
)
def test_missing_secret_is_one_line_exit_2(
    tmp_path: Path, environ: dict[str, str], flags: list[str], missing: str
) -> None:
    config = tmp_path / "stagebot.toml"
    config.write_text('[services.api]\nkind = "http"\nurl = "http://127.0.0.1:9/health"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")} | environ
    result = subprocess.run(
        [sys.executable, "-m", "bot", "serve", "--config", str(config), *flags],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"stagebot serve: {missing} is not set")
    assert "xoxb-1-2-abc" not in result.stderr


def test_port_comes_from_the_flag_then_the_environment_then_3000() -> None:
    assert resolve_port(8080, {"PORT": "9000"}) == 8080
    assert resolve_port(None, {"PORT": "9000"}) == 9000
    assert resolve_port(None, {}) == 3000
    with pytest.raises(UsageError, match="PORT must be a port number"):
        resolve_port(None, {"PORT": "eighty"})
