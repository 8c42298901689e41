"""`stagebot status` end to end: real servers, the real command line, the JSON contract and the exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main
from sandbox.servers import RunningServer, serve_in_thread
from sandbox.staging import SandboxService, SandboxStaging


@pytest.fixture
def staging() -> SandboxStaging:
    return SandboxStaging(
        services={
            "api": SandboxService(http="unavailable"),
            "search": SandboxService(http="slow", delay_ms=300),
            "frontend": SandboxService(),
            "websocket": SandboxService(requires="api"),
        }
    )


@pytest.fixture
def server(staging: SandboxStaging) -> Iterator[RunningServer]:
    with serve_in_thread(staging.app()) as running:
        yield running


def write_config(tmp_path: Path, server: RunningServer, extra: str = "") -> Path:
    path = tmp_path / "stagebot.toml"
    path.write_text(
        f"""
[environment]
name = "staging"

[services.frontend]
kind = "http"
url = "{server.base_url}/frontend/health"

[services.api]
kind = "http"
url = "{server.base_url}/api/health"
impact = "Core API"

[services.search]
kind = "http"
url = "{server.base_url}/search/health"
degraded_ms = 150

[services.websocket]
kind = "websocket"
url = "{server.ws_url}/websocket/ws"
depends_on = ["api"]
send = '{{"type": "ping"}}'
expect = "pong"
{extra}
""",
        encoding="utf-8",
    )
    return path


def test_json_reports_up_down_degraded_and_the_cascade(
    tmp_path: Path, server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["status", "--config", str(write_config(tmp_path, server)), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert set(report) >= {"environment", "started_at", "elapsed_ms", "availability", "services"}
    assert report["environment"] == "staging"
    assert report["started_at"].endswith("Z")
    assert report["availability"] == 0.25
    by_name = {s["name"]: s for s in report["services"]}
    assert [s["name"] for s in report["services"]] == ["frontend", "api", "search", "websocket"]
    for service in report["services"]:
        assert set(service) >= {
            "name", "kind", "target", "state", "status_code", "latency_ms", "error", "caused_by", "timings"
        }  # fmt: skip
    assert (by_name["frontend"]["state"], by_name["frontend"]["status_code"]) == ("up", 200)
    assert (by_name["api"]["state"], by_name["api"]["status_code"]) == ("down", 503)
    assert by_name["api"]["caused_by"] is None
    assert (by_name["search"]["state"], by_name["search"]["status_code"]) == ("degraded", 200)
    assert by_name["search"]["latency_ms"] >= 300
    assert by_name["websocket"]["state"] == "down"
    assert by_name["websocket"]["status_code"] == 503
    assert by_name["websocket"]["caused_by"] == "api"
    assert by_name["websocket"]["error"] == "upgrade rejected with HTTP 503"


def test_every_service_up_exits_zero_with_a_table(
    tmp_path: Path, server: RunningServer, staging: SandboxStaging, capsys: pytest.CaptureFixture[str]
) -> None:
    staging.set("api", http="healthy")
    staging.set("search", http="healthy", delay_ms=0)
    code = main(["status", "--config", str(write_config(tmp_path, server))])
    table = capsys.readouterr().out
    assert code == 0
    assert table.splitlines()[0].split() == ["SERVICE", "TARGET", "STATE", "CODE", "LATENCY", "CAUSE", "IMPACT"]
    for name in ("frontend", "api", "search", "websocket"):
        assert any(line.startswith(name) and "✓ up" in line for line in table.splitlines())
    assert "4/4 up" in table and "availability 100%" in table


def test_table_names_the_cause_of_a_cascade(
    tmp_path: Path, server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--config", str(write_config(tmp_path, server))]) == 1
    lines = capsys.readouterr().out.splitlines()
    websocket = next(line for line in lines if line.startswith("websocket"))
    assert "✗ down" in websocket and "caused by api" in websocket
    assert "1/4 up, 1 degraded, 2 down" in lines[-1]


def test_config_from_the_environment_variable(
    tmp_path: Path, server: RunningServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The CLI reads STAGEBOT_CONFIG from the process environment: set it the way a user's shell would.
    monkeypatch.setenv("STAGEBOT_CONFIG", str(write_config(tmp_path, server)))
    monkeypatch.chdir(tmp_path.parent)
    assert main(["status", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["environment"] == "staging"


def test_secrets_are_redacted_from_targets_and_errors(
    tmp_path: Path, server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = f"""
[services.db]
kind = "postgres"
url = "postgresql://probe:sup3r-secret@127.0.0.1:{server.port}/app"
timeout_s = 1
retries = 0
"""
    assert main(["status", "--config", str(write_config(tmp_path, server, extra)), "--json"]) == 1
    out = capsys.readouterr().out
    assert "sup3r-secret" not in out
    db = next(s for s in json.loads(out)["services"] if s["name"] == "db")
    assert db["target"] == f"postgresql://probe:***@127.0.0.1:{server.port}/app"
    assert db["state"] == "down"


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], capture_output=True, text=True, cwd=cwd, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("config_text", "expected"),
    [
        ("[services.api]\nkind = 'gopher'\nurl = 'http://x'", "services.api.kind: expected one of http"),
        ("not toml at all = = =", "not valid TOML"),
        ("[services.api]\nkind = 'http'\nurl = '${NOT_SET_ANYWHERE}'", "NOT_SET_ANYWHERE is not set"),
    ],
)
def test_bad_config_is_one_line_and_exit_2_without_traceback(tmp_path: Path, config_text: str, expected: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(config_text, encoding="utf-8")
    result = run_cli("status", "--config", str(path), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0] and expected in lines[0]
    assert "Traceback" not in result.stderr


def test_missing_default_config_and_bad_flags_exit_2(tmp_path: Path) -> None:
    missing = run_cli("status", cwd=tmp_path)
    assert missing.returncode == 2
    assert "stagebot.toml" in missing.stderr and "file not found" in missing.stderr
    bad_flag = run_cli("status", "--jsonn", cwd=tmp_path)
    assert bad_flag.returncode == 2
    assert bad_flag.stderr.strip().splitlines() == [
        "stagebot: error: unrecognized arguments: --jsonn (see stagebot --help)"
    ]


def test_a_target_that_fails_every_way_is_a_row_not_a_crash(tmp_path: Path, server: RunningServer) -> None:
    path = tmp_path / "odd.toml"
    path.write_text(
        """
[services.nowhere]
kind = "http"
url = "http://does-not-resolve.invalid/health"
retries = 0
[services.refused]
kind = "tcp"
url = "tcp://127.0.0.1:9"
retries = 0
""",
        encoding="utf-8",
    )
    result = run_cli("status", "--config", str(path), "--json", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    rows = {s["name"]: s for s in json.loads(result.stdout)["services"]}
    assert rows["nowhere"]["state"] == "down" and rows["nowhere"]["error"].startswith("name does not resolve")
    assert rows["refused"]["state"] == "down" and rows["refused"]["error"] == "connection refused"
    assert rows["refused"]["status_code"] is None
