"""`status`: probe every configured service once and judge the round.

`check_status` is the only part that does IO; turning a report into JSON or a terminal table is pure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from bot.config import Config, ServiceConfig
from bot.redaction import Redactor
from probes import ProbeTarget, ServiceState, StatusReport, judge_round, probe_targets


def to_probe_target(service: ServiceConfig) -> ProbeTarget:
    """Return what the probes need to know of a configured service."""
    return ProbeTarget(
        name=service.name,
        kind=service.kind,
        url=service.url,
        timeout_s=service.timeout_s,
        degraded_ms=service.degraded_ms,
        depends_on=service.depends_on,
        expect_status=service.expect_status,
        expect_body=service.expect_body,
        headers=service.headers,
        send=service.send,
        expect=service.expect,
        retries=service.retries,
        impact=service.impact,
    )


async def check_status(
    config: Config, *, only: set[str] | None = None, now: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> StatusReport:
    """Probe every service (or only those named) concurrently and return the judged round, secrets redacted."""
    redact = Redactor(config.secrets)
    targets = [to_probe_target(s) for s in config.services.values() if only is None or s.name in only]
    started_at = now()
    started = time.perf_counter()
    outcomes = await probe_targets(targets, config.round_deadline_s(), config.probes.retry_delay_s)
    elapsed_ms = (time.perf_counter() - started) * 1000
    services = judge_round(targets, outcomes, {t.name: redact(t.url) for t in targets})
    services = tuple(replace(s, error=redact.redact_optional(s.error)) for s in services)
    return StatusReport(
        environment=config.environment,
        started_at=started_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        elapsed_ms=round(elapsed_ms, 1),
        services=services,
    )


def status_exit_code(report: StatusReport) -> int:
    """Return 0 when every service is up, 1 when any is degraded or down."""
    return 0 if report.all_up else 1


def status_to_json(report: StatusReport) -> dict[str, Any]:
    """Return the `status --json` object (a contract: field names are read by other tools)."""
    return {
        "environment": report.environment,
        "started_at": report.started_at,
        "elapsed_ms": report.elapsed_ms,
        "availability": round(report.availability, 4),
        "counts": {state.value: report.count(state) for state in ServiceState},
        "services": [
            {
                "name": s.name,
                "kind": s.kind,
                "target": s.target,
                "state": s.state.value,
                "status_code": s.status_code,
                "latency_ms": s.latency_ms,
                "error": s.error,
                "caused_by": s.caused_by,
                "timings": dict(s.timings),
                "impact": s.impact,
                "attempts": s.attempts,
            }
            for s in report.services
        ],
    }


_STATE_MARK = {ServiceState.UP: "✓ up", ServiceState.DEGRADED: "~ degraded", ServiceState.DOWN: "✗ down"}
_STATE_COLOUR = {ServiceState.UP: "32", ServiceState.DEGRADED: "33", ServiceState.DOWN: "31"}


def render_status_table(report: StatusReport, *, colour: bool = False) -> str:
    """Return the terminal table: service, target, state, code, latency, cause, impact."""
    headers = ("SERVICE", "TARGET", "STATE", "CODE", "LATENCY", "CAUSE", "IMPACT")
    rows = [
        (
            s.name,
            _shorten(s.target, 42),
            _STATE_MARK[s.state],
            "-" if s.status_code is None else str(s.status_code),
            "-" if s.latency_ms is None else f"{s.latency_ms:,.0f} ms",
            _cause(s.caused_by, s.error),
            _shorten(s.impact, 40),
        )
        for s in report.services
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = [_join(headers, widths)]
    for status, row in zip(report.services, rows, strict=True):
        line = _join(row, widths)
        if colour:
            mark = row[2].ljust(widths[2])
            line = line.replace(mark, f"\x1b[{_STATE_COLOUR[status.state]}m{mark}\x1b[0m", 1)
        lines.append(line)
    up, total = report.count(ServiceState.UP), len(report.services)
    lines.append("")
    lines.append(
        f"{report.environment}: {up}/{total} up, {report.count(ServiceState.DEGRADED)} degraded, "
        f"{report.count(ServiceState.DOWN)} down; availability {report.availability:.0%}; "
        f"probed in {report.elapsed_ms / 1000:.2f}s"
    )
    return "\n".join(lines)


def _cause(caused_by: str | None, error: str | None) -> str:
    if caused_by:
        return _shorten(f"caused by {caused_by}: {error}" if error else f"caused by {caused_by}", 60)
    return _shorten(error or "", 60)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _join(cells: tuple[str, ...], widths: list[int]) -> str:
    return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()
