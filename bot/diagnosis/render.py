"""Diagnoses as `diagnose --json` objects, terminal text, and Slack mrkdwn: pure."""

from __future__ import annotations

from typing import Any

from bot.cloud.models import LogEntry
from bot.diagnosis.models import Diagnosis, Finding

MAX_LINE = 300  # characters of one log line in text and Slack output (JSON keeps the whole line)


def _timestamp(entry: LogEntry) -> str:
    return entry.timestamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def diagnosis_to_json(diagnosis: Diagnosis) -> dict[str, Any]:
    """Return the `diagnose --json` object (a contract: field names are read by other tools)."""
    view = diagnosis.cloud_run
    cloud_run = None
    if view is not None:
        cloud_run = {
            "ready": view.ready,
            "reason": view.reason,
            "latest_created": view.latest_created,
            "latest_ready": view.latest_ready,
            "traffic": [{"revision": t.revision or "LATEST", "percent": t.percent} for t in view.traffic],
            "failing_revision": view.failing_revision,
            "last_healthy_revision": view.last_healthy_revision,
            "changes": [{"field": c.field, "before": c.before, "after": c.after} for c in view.changes],
        }
    return {
        "service": diagnosis.service,
        "cloud_run": cloud_run,
        "findings": [
            {"cause": f.cause.value, "confidence": f.confidence.value, "evidence": list(f.evidence), "fix": f.fix}
            for f in diagnosis.findings
        ],
        "logs": [
            {"timestamp": _timestamp(e), "severity": e.severity, "revision": e.revision, "text": e.text}
            for e in diagnosis.logs
        ],
    }


def _clip(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    more = len(text.strip().splitlines()) > 1
    return first[:MAX_LINE] + ("…" if len(first) > MAX_LINE or more else "")


def summarize(diagnosis: Diagnosis) -> str:
    """Return one line naming the verdict, e.g. "auth: port_mismatch (high)"."""
    top = diagnosis.top
    if top is None:
        return f"{diagnosis.service}: no problem found"
    return f"{diagnosis.service}: {top.cause.value} ({top.confidence.value})"


def _finding_lines(finding: Finding, *, markdown: bool) -> list[str]:
    head = (
        f"*{finding.cause.value}* ({finding.confidence.value})"
        if markdown
        else f"{finding.cause.value} ({finding.confidence.value})"
    )
    lines = [head]
    for line in finding.evidence:
        lines.append(f"> `{_clip(line)}`" if markdown else f"    | {_clip(line)}")
    lines.append(f"Fix: {finding.fix}" if markdown else f"    fix: {finding.fix}")
    return lines


def render_diagnosis(diagnosis: Diagnosis, *, markdown: bool = False, log_lines: int = 10) -> str:
    """Return the diagnosis as terminal text, or as Slack mrkdwn with `markdown=True` (logs: the newest lines)."""
    lines = [summarize(diagnosis)]
    view = diagnosis.cloud_run
    if view is not None:
        state = "ready" if view.ready else f"NOT ready ({view.reason or 'no reason given'})"
        traffic = ", ".join(f"{t.revision or 'LATEST'} {t.percent}%" for t in view.traffic) or "none"
        lines.append(f"Cloud Run: {state}; latest created {view.latest_created}, latest ready {view.latest_ready}")
        lines.append(f"Traffic: {traffic}")
        if view.failing_revision:
            lines.append(
                f"Failing revision: {view.failing_revision}; last healthy: {view.last_healthy_revision or 'none'}"
            )
        if view.changes:
            lines.append("Changed since: " + "; ".join(c.summary for c in view.changes))
    for finding in diagnosis.findings:
        lines.append("")
        lines.extend(_finding_lines(finding, markdown=markdown))
    if diagnosis.logs and log_lines > 0:
        shown = diagnosis.logs[-log_lines:]
        lines.append("")
        lines.append(f"Last {len(shown)} of {len(diagnosis.logs)} log lines:")
        body = [f"{_timestamp(e)} {e.severity:<7} {e.log}: {_clip(e.text)}" for e in shown]
        lines.extend(["```", *body, "```"] if markdown else [f"  {line}" for line in body])
    return "\n".join(lines)
