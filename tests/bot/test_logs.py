"""Structured logs: one JSON object a line off a terminal, text on one, and no secret in either.

The in-process tests log through real `logging` loggers into a StringIO; the last test runs `stagebot serve` as a
process against the Slack stand-in and reads what it printed to stdout (uvicorn's and the bot's lines alike).
"""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.errors import UsageError
from bot.logs import configure_logging, is_json_format
from sandbox.servers import bind_loopback, serve_in_thread
from sandbox.slack import SlackWorkspace

SLACK_TOKEN = "xoxb-1111-2222-abcdefghijklmnop"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzdGFnZWJvdCJ9.c2lnbmF0dXJlLXZhbHVl"


class TerminalStream(io.StringIO):
    """A stream that says a person is watching it."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Give back the loggers as the test found them: configure_logging changes process-wide state."""
    names = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "slack_bolt", "slack_sdk", "alembic.runtime.plugins")
    saved = {name: (list(logging.getLogger(name).handlers), logging.getLogger(name).propagate) for name in names}
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    for name, (handlers, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.propagate = propagate
        logger.setLevel(levels[name])


def lines_of(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_each_event_is_one_json_line_with_its_fields_and_run_context() -> None:
    stream = io.StringIO()
    configure_logging(stream)
    log = logging.getLogger("bot.slack.runs")
    log.info("run %s started", 41, extra={"run_id": 41, "tier": "p1"})
    log.warning("api is down", extra={"service": "api"})
    # uvicorn sets its loggers' own levels (`log_level`); warning passes any of them.
    logging.getLogger("uvicorn.error").warning("Invalid HTTP request received.")

    events = [json.loads(line) for line in lines_of(stream)]
    assert len(events) == 3
    first, second, third = events
    assert {"time", "level", "logger", "message"} <= first.keys()
    assert first["message"] == "run 41 started" and first["run_id"] == 41 and first["tier"] == "p1"
    assert first["level"] == "info" and first["severity"] == "INFO" and first["logger"] == "bot.slack.runs"
    assert first["time"].endswith("Z") and "T" in first["time"]
    assert second["service"] == "api" and second["level"] == "warning" and "run_id" not in second
    assert third["logger"] == "uvicorn.error"


def test_tokens_and_configured_secrets_come_out_masked() -> None:
    stream = io.StringIO()
    configure_logging(stream, secrets={"hunter2-signing-secret"})
    log = logging.getLogger("bot.test")
    log.error("Slack said no to %s", SLACK_TOKEN)
    log.error("Authorization: Bearer %s; signing with hunter2-signing-secret", JWT)
    log.info("socket mode with xapp-1-A0-123-abcdef", extra={"tier": f"token={JWT}"})
    try:
        raise RuntimeError(f"refused {SLACK_TOKEN}")
    except RuntimeError:
        log.exception("delivery failed")

    text = stream.getvalue()
    for secret in (SLACK_TOKEN, JWT, "hunter2-signing-secret", "xapp-1-A0-123-abcdef"):
        assert secret not in text
    events = [json.loads(line) for line in lines_of(stream)]
    assert events[0]["message"] == "Slack said no to ***"
    assert events[1]["message"] == "Authorization: Bearer ***; signing with ***"
    assert events[2]["tier"] == "token=***"
    assert "RuntimeError: refused ***" in events[3]["exception"]


def test_a_terminal_gets_text_lines() -> None:
    stream = TerminalStream()
    configure_logging(stream)
    logging.getLogger("bot.slack.delivery").warning("retrying %s", SLACK_TOKEN, extra={"run_id": 3})

    (line,) = lines_of(stream)
    assert not line.startswith("{")
    assert "WARNING" in line and "bot.slack.delivery: retrying ***" in line and "[run_id=3]" in line


def test_a_second_configuration_replaces_the_first() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging(first)
    configure_logging(second, json=False)
    logging.getLogger("bot.test").info("once")
    assert first.getvalue() == "" and len(lines_of(second)) == 1


@pytest.mark.parametrize(
    ("explicit", "environ", "is_tty", "expected"),
    [
        (None, {}, False, True),
        (None, {}, True, False),
        (None, {"STAGEBOT_LOG_FORMAT": "json"}, True, True),
        (None, {"STAGEBOT_LOG_FORMAT": "TEXT"}, False, False),
        (False, {"STAGEBOT_LOG_FORMAT": "json"}, False, False),
        (True, {}, True, True),
    ],
)
def test_the_format_follows_the_argument_then_the_environment_then_the_stream(
    explicit: bool | None, environ: dict[str, str], is_tty: bool, expected: bool
) -> None:
    assert is_json_format(explicit, environ, is_tty) is expected


def test_an_unknown_format_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="STAGEBOT_LOG_FORMAT must be json or text"):
        is_json_format(None, {"STAGEBOT_LOG_FORMAT": "yaml"}, False)


def test_serve_writes_json_lines_from_every_logger_and_no_secret(tmp_path: Path) -> None:
    config = tmp_path / "stagebot.toml"
    config.write_text('[services.api]\nkind = "http"\nurl = "http://127.0.0.1:9/health"\n', encoding="utf-8")
    with bind_loopback() as probe:
        port = probe.getsockname()[1]  # a port that was free a moment ago: `stagebot serve` takes no port 0
    with serve_in_thread(SlackWorkspace().app()) as slack:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "STAGEBOT_", "DATABASE_URL"))}
        env |= {
            "SLACK_BOT_TOKEN": SLACK_TOKEN,
            "SLACK_SIGNING_SECRET": "signing-secret-for-logs",
            "STAGEBOT_SLACK_API_URL": f"{slack.base_url}/api/",
            "STAGEBOT_HOME": str(tmp_path),
            "PORT": str(port),
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", "--config", str(config), "--host", "127.0.0.1"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        try:
            health = _wait_for_health(f"http://127.0.0.1:{port}/healthz", process)
            process.send_signal(signal.SIGTERM)
            stdout, stderr = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert health == {"status": "ok", "database": "ok"}
    # A clean shutdown on SIGTERM: the drain ran, the store was closed, and the process says so with exit 0.
    assert process.returncode == 0, stderr
    events = [json.loads(line) for line in stdout.splitlines()]  # every stdout line is one JSON object
    loggers = {event["logger"] for event in events}
    assert {"bot.commands.serve", "uvicorn.error", "alembic.runtime.migration"} <= loggers, loggers
    assert "alembic.runtime.plugins" not in loggers  # a line per plugin at every start is noise
    assert any("serving Slack on http://127.0.0.1" in event["message"] for event in events)
    assert any("Shutting down" in event["message"] for event in events)  # uvicorn saw SIGTERM and drained
    assert SLACK_TOKEN not in stdout + stderr and "signing-secret-for-logs" not in stdout + stderr


def _wait_for_health(url: str, process: subprocess.Popen[str]) -> object:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"stagebot serve exited early: {process.communicate()}")
        try:
            return httpx.get(url, timeout=2).json()
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("stagebot serve did not answer /healthz within 30 s")
