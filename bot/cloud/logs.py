"""`CloudLogs`: a revision's recent platform and container log lines, through the real `google-cloud-logging` client.

The REST client (`_use_grpc=False`) is sync, so it runs on an executor like `CloudRun`. Every filter carries an
explicit timestamp clause: without one the library silently adds "the last 24 hours" (shared/reference/cloud-run.md).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from concurrent.futures import Executor
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

from google.cloud import logging as cloud_logging
from google.cloud.logging import Resource

from bot.cloud.faults import CloudError, FaultKind, to_cloud_error
from bot.cloud.models import LogEntry
from bot.config import CloudRunRef

# Cloud Run's platform messages (probe failures, memory limit, port) and the container's own output.
REVISION_LOGS: tuple[str, ...] = ("varlog/system", "stdout", "stderr")
_LOG_PREFIX = "run.googleapis.com/"
_READ_ONLY_RESOURCE = Resource(type="global", labels={})


def to_rfc3339(moment: datetime) -> str:
    """Return `moment` as the UTC RFC 3339 text Logging filters compare against."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def log_name(project: str, log: str) -> str:
    """Return the full `logName` of one of Cloud Run's logs (the log id is URL-encoded, slashes included)."""
    return f"projects/{project}/logs/{quote(_LOG_PREFIX + log, safe='')}"


def build_log_filter(
    ref: CloudRunRef,
    revision: str | None,
    *,
    since: datetime,
    until: datetime | None = None,
    logs: Sequence[str] = REVISION_LOGS,
) -> str:
    """Return the Logging filter for a service's (or one revision's) lines between `since` and `until`."""
    clauses = [
        'resource.type="cloud_run_revision"',
        f'resource.labels.service_name="{ref.service}"',
        f'resource.labels.location="{ref.region}"',
    ]
    if revision:
        clauses.append(f'resource.labels.revision_name="{revision}"')
    if logs:
        clauses.append("(" + " OR ".join(f'logName="{log_name(ref.project, log)}"' for log in logs) + ")")
    clauses.append(f'timestamp>="{to_rfc3339(since)}"')
    if until is not None:
        clauses.append(f'timestamp<="{to_rfc3339(until)}"')
    return " AND ".join(clauses)


class ReadingClient(cloud_logging.Client):
    """A Logging client for reading entries that never asks the metadata server where it runs.

    Parsing each entry builds a `Logger` for its log name, and a `Logger` without a resource calls `detect_resource`,
    which queries metadata.google.internal twice: outside Google Cloud that is a DNS lookup per log name per call,
    and twenty concurrent diagnoses stalled on it for 10 s (bench/diagnose_fanout.py). Reading needs no resource.
    """

    def logger(self, name: str, *, labels: Any = None, resource: Any = None) -> Any:
        return super().logger(name, labels=labels, resource=resource or _READ_ONLY_RESOURCE)  # type: ignore[no-untyped-call]


class CloudLogs:
    """Cloud Logging entries of Cloud Run revisions, as plain values."""

    def __init__(
        self, client: cloud_logging.Client, *, executor: Executor | None = None, timeout_s: float = 10.0
    ) -> None:
        self._client = client
        self._executor = executor
        self._timeout_s = timeout_s

    async def revision_entries(
        self,
        ref: CloudRunRef,
        revision: str | None,
        *,
        since: datetime,
        until: datetime | None = None,
        limit: int = 50,
        logs: Sequence[str] = REVISION_LOGS,
    ) -> tuple[LogEntry, ...]:
        """Return the newest `limit` entries of the revision (every revision when None) since `since`, oldest first."""
        filter_ = build_log_filter(ref, revision, since=since, until=until, logs=logs)

        def fetch() -> list[Any]:
            iterator = self._client.list_entries(  # type: ignore[no-untyped-call]
                resource_names=[f"projects/{ref.project}"],
                filter_=filter_,
                order_by=cloud_logging.DESCENDING,
                page_size=limit,
                max_results=limit,
            )
            return list(iterator)

        resource = f"projects/{ref.project} (logs of {ref.service})"
        loop = asyncio.get_running_loop()
        try:
            # list_entries takes no timeout: bound the wait here (the thread finishes on its own).
            found = await asyncio.wait_for(loop.run_in_executor(self._executor, fetch), self._timeout_s)
        except TimeoutError:
            raise CloudError(FaultKind.TIMEOUT, f"reading the logs of {ref.service} timed out") from None
        except Exception as exc:
            raise to_cloud_error(
                exc, call="list_entries", permission="logging.logEntries.list", resource=resource
            ) from exc
        return tuple(reversed([to_log_entry(e) for e in found]))


def to_log_entry(entry: Any) -> LogEntry:
    """Return our `LogEntry` for a `google.cloud.logging` entry (text, JSON or proto payload)."""
    labels = entry.resource.labels if entry.resource is not None else {}
    timestamp = entry.timestamp or datetime.fromtimestamp(0, UTC)
    return LogEntry(
        timestamp=timestamp,
        severity=str(entry.severity or "DEFAULT"),
        text=payload_text(entry.payload),
        log=_short_log(entry.log_name or ""),
        revision=labels.get("revision_name"),
        insert_id=entry.insert_id or "",
    )


def payload_text(payload: Any) -> str:
    """Return the human line of a payload: the text, a JSON payload's message, else the JSON itself."""
    if payload is None:
        return ""
    if isinstance(payload, str):
        return payload
    if isinstance(payload, dict):
        for key in ("message", "msg", "textPayload", "error"):
            if isinstance(payload.get(key), str):
                return str(payload[key])
        return json.dumps(payload, sort_keys=True, default=str)
    return str(payload)


def _short_log(name: str) -> str:
    log_id = unquote(name.split("/logs/", 1)[-1])
    return log_id.removeprefix(_LOG_PREFIX)
