"""Structured logs: JSON lines when no person is watching the stream, text when one is; no secret reaches either.

One JSON object per event, on one line: `time`, `level`, `logger`, `message`, plus `run_id` / `service` / `tier` /
`channel` when a call passes them with `extra=`. `severity` repeats the level under the name Cloud Logging reads from
a container's stdout (https://cloud.google.com/logging/docs/structured-logging), so Cloud Run shows the right level.

`STAGEBOT_LOG_FORMAT=json` or `text` overrides the guess made from `stream.isatty()`.
"""

from __future__ import annotations

import datetime as dt
import json as jsonlib
import logging
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

from bot.errors import UsageError
from bot.redaction import Redactor

# Fields a call may attach with `extra={...}` that the logs carry; anything else in `extra` is not ours to print
# (uvicorn, for one, attaches `color_message`).
CONTEXT_FIELDS = ("run_id", "service", "tier", "channel")

# uvicorn's own logging config gives these loggers their own handlers and `propagate = False`; they are routed
# through the root handler instead, so every line has one shape.
_ROUTED_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "slack_bolt", "slack_sdk")

# Chatter at INFO that says nothing about the bot: one line per Alembic plugin at every store open.
_QUIETED_LOGGERS = ("alembic.runtime.plugins",)

_SEVERITY = {"DEBUG": "DEBUG", "INFO": "INFO", "WARNING": "WARNING", "ERROR": "ERROR", "CRITICAL": "CRITICAL"}


def is_json_format(json: bool | None, environ: Mapping[str, str], is_tty: bool) -> bool:
    """Decide the format: an explicit choice, else `$STAGEBOT_LOG_FORMAT`, else JSON unless a terminal is watching."""
    if json is not None:
        return json
    chosen = environ.get("STAGEBOT_LOG_FORMAT", "").strip().lower()
    if chosen == "json":
        return True
    if chosen == "text":
        return False
    if chosen:
        raise UsageError(f"STAGEBOT_LOG_FORMAT must be json or text, got {chosen!r}")
    return not is_tty


def _context(record: logging.LogRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in CONTEXT_FIELDS if getattr(record, name, None) is not None}


class JsonFormatter(logging.Formatter):
    """Format a record as one line of JSON, with every text in it redacted."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        created = dt.datetime.fromtimestamp(record.created, dt.UTC)
        event: dict[str, Any] = {
            "time": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "severity": _SEVERITY.get(record.levelname, "DEFAULT"),
            "logger": record.name,
            "message": self.redactor.redact(record.getMessage()),
        }
        for name, value in _context(record).items():
            event[name] = self.redactor.redact(value) if isinstance(value, str) else value
        if record.exc_info:
            event["exception"] = self.redactor.redact(self.formatException(record.exc_info))
        return jsonlib.dumps(event, ensure_ascii=False, default=lambda value: self.redactor.redact(str(value)))


class TextFormatter(logging.Formatter):
    """Format a record as one readable line (a traceback below it), with every text in it redacted."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = " ".join(f"{name}={value}" for name, value in _context(record).items())
        if context:
            head, sep, tail = line.partition("\n")
            line = f"{head} [{context}]{sep}{tail}"
        return self.redactor.redact(line)


class _StagebotHandler(logging.StreamHandler[TextIO]):
    """The handler `configure_logging` installs; a second call replaces it instead of adding another."""


def configure_logging(
    stream: TextIO,
    *,
    json: bool | None = None,
    level: int = logging.INFO,
    environ: Mapping[str, str] | None = None,
    secrets: Iterable[str] = (),
) -> logging.Handler:
    """Send every logger's records (ours, uvicorn's, Bolt's) to `stream`, as JSON or text, with secrets masked."""
    redactor = Redactor(secrets)
    as_json = is_json_format(json, environ or {}, _is_tty(stream))
    handler = _StagebotHandler(stream)
    handler.setFormatter(JsonFormatter(redactor) if as_json else TextFormatter(redactor))
    root = logging.getLogger()
    for previous in [h for h in root.handlers if isinstance(h, _StagebotHandler)]:
        root.removeHandler(previous)
    root.addHandler(handler)
    root.setLevel(level)
    for name in _ROUTED_LOGGERS:
        routed = logging.getLogger(name)
        routed.handlers.clear()
        routed.propagate = True
    for name in _QUIETED_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    return handler


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or bare stream is no terminal
        return False
