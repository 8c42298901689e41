"""`stagebot diagnose` end to end: the real CLI, the real clients, the stand-ins telling the demo's story."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.cli import build_parser, main
from bot.cloud import ServiceChange, build_cloud_apis
from bot.commands.base import CommandContext
from bot.config import CloudRunRef, StoreSettings
from bot.errors import UsageError
from bot.store import open_store
from sandbox.cloud_scenarios import CloudEndpoints, cloud_run_config_text, demo_cloud, serve_cloud_in_thread
from sandbox.staging import SandboxStaging, broken_staging, sandbox_config_text


@dataclass
class Cli:
    config: Path
    environ: dict[str, str]
    staging: SandboxStaging
    endpoints: CloudEndpoints
    cwd: Path

    def run(self, *argv: str) -> tuple[int, str]:
        arguments = [*argv, "--config", str(self.config)]
        args = build_parser(arguments).parse_args(arguments)
        out = io.StringIO()
        code: int = args.run(args, CommandContext(self.environ, self.cwd, out, io.StringIO()))
        return code, out.getvalue()


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    staging = broken_staging()
    cloud = demo_cloud(now=datetime.now(UTC), staging=staging)
    config = tmp_path / "stagebot.toml"
    # The probes are not used by `diagnose`: the URLs only have to be valid.
    text = sandbox_config_text("http://127.0.0.1:9", "ws://127.0.0.1:9")
    config.write_text(text + cloud_run_config_text(["api", "auth", "frontend"]), encoding="utf-8")
    with serve_cloud_in_thread(cloud) as endpoints:
        environ = {**endpoints.environ(), "DATABASE_URL": f"sqlite:///{tmp_path / 'store.sqlite'}", "USER": "ana"}
        yield Cli(config, environ, staging, endpoints, tmp_path)


def test_auth_says_port_mismatch_with_the_log_line(cli: Cli) -> None:
    code, out = cli.run("diagnose", "auth", "--json", "--no-record")
    body = json.loads(out)
    assert code == 1
    assert set(body) == {"service", "cloud_run", "findings", "logs"}
    assert set(body["cloud_run"]) == {
        "ready", "reason", "latest_created", "latest_ready", "traffic", "failing_revision", "last_healthy_revision",
        "changes",
    }  # fmt: skip
    top = body["findings"][0]
    assert set(top) == {"cause", "confidence", "evidence", "fix"}
    assert top["cause"] == "port_mismatch" and top["confidence"] == "high"
    log_line = next(e["text"] for e in body["logs"] if "PORT=8080" in e["text"])
    assert log_line in top["evidence"]
    assert body["cloud_run"]["ready"] is False
    assert body["cloud_run"]["failing_revision"] == "auth-00012-vop"
    assert body["cloud_run"]["traffic"] == [{"revision": "auth-00011-fuw", "percent": 100}]
    assert {"field": "env", "before": None, "after": "LISTEN_PORT"} in body["cloud_run"]["changes"]
    assert set(body["logs"][0]) == {"timestamp", "severity", "revision", "text"}


def test_api_says_out_of_memory(cli: Cli) -> None:
    code, out = cli.run("diagnose", "api", "--no-record")
    assert code == 1
    assert out.splitlines()[0] == "api: out_of_memory (high)"
    assert "Memory limit of 512 MiB exceeded with 530 MiB used." in out
    assert "limits.memory: 1Gi -> 512Mi" in out


def test_a_healthy_service_exits_0(cli: Cli) -> None:
    code, out = cli.run("diagnose", "frontend", "--json", "--no-record")
    assert code == 0 and json.loads(out)["findings"] == []


def test_a_service_without_cloud_run_says_so(cli: Cli) -> None:
    code, out = cli.run("diagnose", "reports", "--json", "--no-record")
    body = json.loads(out)
    assert code == 1 and body["cloud_run"] is None
    assert body["findings"][0]["cause"] == "not_on_cloud_run"


def test_an_unknown_service_is_one_line_exit_2(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UsageError, match=r"unknown service 'nope' \(known: api, auth, frontend, reports, websocket\)"):
        cli.run("diagnose", "nope")
    assert main(["diagnose", "nope", "--config", str(cli.config), "--no-record"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "known: api, auth" in err


def test_the_diagnosis_is_recorded(cli: Cli) -> None:
    code, _ = cli.run("diagnose", "auth")
    assert code == 1
    store = open_store(None, cli.environ, StoreSettings())
    try:
        (run,) = store.recent_runs(kind="diagnose")
        assert (run.target, run.state, run.verdict, run.requested_by, run.origin) == (
            "auth", "finished", "port_mismatch", "ana", "cli",
        )  # fmt: skip
        findings = store.findings(int(run.details["diagnosis_id"]))
        assert [f.code for f in findings] == ["port_mismatch"]
        assert any("PORT=8080" in line for line in findings[0].evidence["lines"])
    finally:
        store.close()


def test_a_restart_heals_the_service_and_the_diagnosis_says_so(cli: Cli) -> None:
    # Issue 7 and 8's story: the restart goes through the adapter, the stand-in calls back into the staging.
    apis = build_cloud_apis(cli.environ, project="stagebot-sandbox", poll_interval_s=0.01)
    ref = CloudRunRef("stagebot-sandbox", "europe-west1", "auth")

    async def restart() -> None:
        before = await apis.run.get_service(ref)
        await apis.run.update_service(ref, ServiceChange(restart_token="demo-1"), etag=before.etag)

    try:
        asyncio.run(restart())
    finally:
        apis.close()
    assert cli.staging.is_healthy("auth")
    code, out = cli.run("diagnose", "auth", "--json", "--no-record")
    assert code == 0 and json.loads(out)["cloud_run"]["ready"] is True
