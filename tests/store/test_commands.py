"""`stagebot status` records, `stagebot history` reads, `stagebot db upgrade` migrates: the real command line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.config import StoreSettings
from bot.store import head_revision, open_store
from sandbox.servers import RunningServer, serve_in_thread
from sandbox.staging import SandboxStaging, healthy_staging, sandbox_config_text


@pytest.fixture
def staging() -> SandboxStaging:
    return healthy_staging()


@pytest.fixture
def server(staging: SandboxStaging) -> Iterator[RunningServer]:
    with serve_in_thread(staging.app()) as running:
        yield running


@pytest.fixture
def config(tmp_path: Path, server: RunningServer) -> Path:
    path = tmp_path / "stagebot.toml"
    path.write_text(sandbox_config_text(server.base_url, server.ws_url), encoding="utf-8")
    return path


@pytest.fixture
def database(store_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABASE_URL", store_url)
    return store_url


def history_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["history", "--json", *args]) == 0
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


def test_three_status_runs_then_history_shows_them_and_each_services_uptime(
    database: str, config: Path, staging: SandboxStaging, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--config", str(config), "--json"]) == 0
    staging.set("api", http="unavailable")  # the API goes down; the WebSocket, which needs it, with it
    assert main(["status", "--config", str(config), "--json"]) == 1
    assert main(["status", "--config", str(config)]) == 1

    report = history_json(capsys, "--config", str(config))
    runs = report["runs"]
    assert len(runs) == 3
    assert [(r["kind"], r["state"]) for r in runs] == [("status", "finished")] * 3
    assert set(runs[0]) >= {"id", "kind", "state", "started_at", "summary"}
    assert runs[0]["started_at"].endswith("Z")
    assert "not up: api, websocket" in runs[0]["summary"]
    services = {s["name"]: s for s in report["services"]}
    assert set(services) == {"api", "auth", "frontend", "websocket", "reports"}
    uptime = {name: s["uptime"] for name, s in services.items()}
    assert uptime == {"api": 0.3333, "websocket": 0.3333, "auth": 1.0, "frontend": 1.0, "reports": 1.0}
    assert services["api"]["samples"] == 3
    assert services["api"]["state"] == "down"
    assert services["api"]["last_change"]["from"] == "up"
    assert services["api"]["last_change"]["to"] == "down"
    assert services["api"]["last_change"]["run_id"] == runs[1]["id"]
    assert services["auth"]["latency_p50_ms"] is not None
    assert report["tiers"] == []

    only = history_json(capsys, "--service", "auth", "--limit", "1")
    assert [s["name"] for s in only["services"]] == ["auth"]
    assert len(only["runs"]) == 1


def test_history_as_tables(database: str, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--config", str(config), "--json"]) == 0
    capsys.readouterr()
    assert main(["history", "--since", "1h"]) == 0
    out = capsys.readouterr().out
    assert "History over the last 1h" in out
    assert "SERVICE" in out and "UPTIME" in out and "100.0%" in out
    assert "RUN" in out and "status" in out


def test_no_record_leaves_no_trace(database: str, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--config", str(config), "--no-record", "--json"]) == 0
    assert history_json(capsys)["runs"] == []


def test_status_records_in_the_default_sqlite_file_without_any_url(
    config: Path, isolated_stagebot_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--config", str(config), "--json"]) == 0
    assert (isolated_stagebot_home / "stagebot.sqlite3").is_file()
    assert len(history_json(capsys)["runs"]) == 1


@pytest.mark.parametrize("since", ["3x", "yesterday", "0h", "-2d"])
def test_a_bad_since_is_one_line_and_exit_2(since: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history", f"--since={since}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--since" in err and "24h" in err


def test_db_upgrade_migrates_then_says_it_is_current(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade"]) == 0
    assert f"upgraded the schema from empty to {head_revision()}" in capsys.readouterr().out
    assert main(["db", "upgrade"]) == 0
    assert f"schema already at {head_revision()}" in capsys.readouterr().out
    store = open_store(database, {}, StoreSettings())
    store.close()


def test_an_unreachable_database_url_is_exit_2_with_the_password_masked(
    monkeypatch: pytest.MonkeyPatch, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("DATABASE_URL", f"postgresql://bot:s3cr3t-pw@127.0.0.1:{port}/stagebot")
    for argv in (["history"], ["db", "upgrade"], ["status", "--config", str(config)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert f"127.0.0.1:{port}" in err and "'stagebot'" in err
        assert "s3cr3t-pw" not in err and "***" in err
