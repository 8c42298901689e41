"""Block Kit messages as pure functions: plain values in, `SlackMessage` out, within Slack's limits.

Limits (https://api.slack.com/reference/block-kit/blocks): 50 blocks a message, 3,000 characters a section text;
in practice `msg_blocks_too_long` at ~13k characters of blocks (bolt-js issue 2509). A message that would not fit
keeps a summary in the blocks and carries the whole text as a file to upload in the thread.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.diagnosis import Diagnosis, render_diagnosis, summarize
from probes import ServiceState, ServiceStatus, StatusReport

MAX_BLOCKS = 50
MAX_SECTION_CHARS = 3000
MAX_BLOCKS_CHARS = 12_000  # below the ~13k where Slack answers msg_blocks_too_long
MAX_TEXT_CHARS = 3000  # the notification/fallback text; Slack truncates at 40k, nobody reads that far

Block = dict[str, Any]

_EMOJI = {ServiceState.UP: ":large_green_circle:", ServiceState.DEGRADED: ":large_yellow_circle:",
          ServiceState.DOWN: ":red_circle:"}  # fmt: skip


@dataclass(frozen=True)
class Attachment:
    """A file to upload in the thread when the message itself cannot hold everything."""

    filename: str
    title: str
    content: str


@dataclass(frozen=True)
class SlackMessage:
    """One message: the fallback text, the blocks, and an optional file for the overflow."""

    text: str
    blocks: tuple[Block, ...] = ()
    attachment: Attachment | None = None

    def payload(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": list(self.blocks)}


@dataclass(frozen=True)
class Button:
    action_id: str
    text: str
    value: str
    style: str | None = None  # "primary" | "danger"
    confirm: tuple[str, str] | None = None  # (title, text) of Slack's confirm dialog
    extra: dict[str, Any] = field(default_factory=dict)


# -- building blocks ----------------------------------------------------------------------------------------------
def section(markdown: str) -> Block:
    """Return a mrkdwn section, cut to Slack's 3,000 characters."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": shorten(markdown, MAX_SECTION_CHARS)}}


def context(markdown: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": shorten(markdown, MAX_SECTION_CHARS)}]}


def header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": shorten(text, 150), "emoji": True}}


def actions(buttons: Sequence[Button], block_id: str = "actions") -> Block:
    elements = []
    for button in buttons[:25]:
        element: dict[str, Any] = {
            "type": "button",
            "action_id": button.action_id,
            "text": {"type": "plain_text", "text": shorten(button.text, 75)},
            "value": shorten(button.value, 2000),
        }
        if button.style:
            element["style"] = button.style
        if button.confirm:
            title, text = button.confirm
            element["confirm"] = {
                "title": {"type": "plain_text", "text": shorten(title, 100)},
                "text": {"type": "mrkdwn", "text": shorten(text, 300)},
                "confirm": {"type": "plain_text", "text": "Yes, do it"},
                "deny": {"type": "plain_text", "text": "Cancel"},
            }
        elements.append(element | button.extra)
    return {"type": "actions", "block_id": block_id, "elements": elements}


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def code_sections(lines: Sequence[str]) -> list[Block]:
    """Return monospace sections holding `lines`, split so each stays within a section's limit."""
    blocks: list[Block] = []
    chunk: list[str] = []
    size = 0
    for line in lines:
        line = shorten(line, MAX_SECTION_CHARS - 10)
        if chunk and size + len(line) + 1 > MAX_SECTION_CHARS - 10:
            blocks.append(section("```" + "\n".join(chunk) + "```"))
            chunk, size = [], 0
        chunk.append(line)
        size += len(line) + 1
    if chunk:
        blocks.append(section("```" + "\n".join(chunk) + "```"))
    return blocks


def fit(text: str, blocks: Sequence[Block], overflow: Attachment | None) -> SlackMessage:
    """Return a message within Slack's limits; what does not fit is dropped for a note pointing at the file."""
    kept: list[Block] = []
    size = 0
    for block in blocks:
        block_size = len(json.dumps(block))
        if len(kept) >= MAX_BLOCKS - 1 or size + block_size > MAX_BLOCKS_CHARS:
            kept.append(context(":page_facing_up: The full report is in the file attached in the thread."))
            return SlackMessage(text=shorten(text, MAX_TEXT_CHARS), blocks=tuple(kept), attachment=overflow)
        kept.append(block)
        size += block_size
    return SlackMessage(text=shorten(text, MAX_TEXT_CHARS), blocks=tuple(kept))


# -- /staging status --------------------------------------------------------------------------------------------
def _latency(service: ServiceStatus) -> str:
    return "-" if service.latency_ms is None else f"{service.latency_ms:,.0f} ms"


def _cause(service: ServiceStatus) -> str:
    if service.caused_by:
        return f"caused by {service.caused_by}"
    return service.error or ""


def status_table_lines(report: StatusReport) -> list[str]:
    """Return the status table as fixed-width lines (for a code block or a file)."""
    rows = [("SERVICE", "STATE", "CODE", "LATENCY", "CAUSE")]
    for s in report.services:
        code = "-" if s.status_code is None else str(s.status_code)
        rows.append((s.name, s.state.value, code, _latency(s), shorten(_cause(s), 60)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def status_summary(report: StatusReport) -> str:
    up, total = report.count(ServiceState.UP), len(report.services)
    return (
        f"{up}/{total} up · {report.count(ServiceState.DEGRADED)} degraded · "
        f"{report.count(ServiceState.DOWN)} down · availability {report.availability:.0%}"
    )


def render_status(report: StatusReport, *, run_id: int | None, requested_by: str) -> SlackMessage:
    """Return the channel message for a `/staging status` round."""
    worst = (
        ServiceState.DOWN if report.count(ServiceState.DOWN)
        else ServiceState.DEGRADED if report.count(ServiceState.DEGRADED) else ServiceState.UP
    )  # fmt: skip
    title = f"{report.environment}: {status_summary(report)}"
    blocks: list[Block] = [header(f"Staging status: {report.environment}"), section(f"{_EMOJI[worst]} *{title}*")]
    trouble = [s for s in report.services if s.state is not ServiceState.UP]
    for service in trouble:
        line = f"{_EMOJI[service.state]} *{service.name}* {service.state.value}"
        details = [d for d in (
            f"HTTP {service.status_code}" if service.status_code and service.kind != "websocket" else
            (f"upgrade {service.status_code}" if service.status_code else ""),
            _latency(service) if service.latency_ms is not None else "",
            _cause(service),
        ) if d]  # fmt: skip
        if details:
            line += " — " + " · ".join(details)
        if service.impact:
            line += f"\n_Impact: {service.impact}_"
        blocks.append(section(line))
    blocks.extend(code_sections(status_table_lines(report)))
    footer = f"Requested by <@{requested_by}> · probed in {report.elapsed_ms / 1000:.1f}s"
    if run_id is not None:
        footer += f" · run #{run_id}"
    blocks.append(context(footer))
    overflow = Attachment(
        filename=f"status-{run_id or 'now'}.txt",
        title="Full status table",
        content="\n".join(status_table_lines(report)),
    )
    return fit(title, blocks, overflow)


def render_down_service(service: ServiceStatus) -> SlackMessage:
    """Return the thread reply for one down service: what is known before any diagnosis."""
    if service.caused_by:
        text = (
            f":link: *{service.name}* is down, caused by *{service.caused_by}* "
            f"(it depends on it): fix {service.caused_by} first."
        )
    else:
        text = f":red_circle: *{service.name}* is down: {service.error or 'no answer'}"
    lines = [text, f"Target: `{service.target}`"]
    if service.status_code is not None:
        lines.append(f"Status: {service.status_code}")
    if service.timings:
        lines.append("Timings: " + ", ".join(f"{k} {v:,.0f}" for k, v in service.timings.items()))
    if service.attempts > 1:
        lines.append(f"Tried {service.attempts} times.")
    if service.impact:
        lines.append(f"_Impact: {service.impact}_")
    return SlackMessage(text=shorten(text, MAX_TEXT_CHARS), blocks=(section("\n".join(lines)),))


def render_diagnosis_reply(service: ServiceStatus | None, diagnosis: Diagnosis, *, log_lines: int = 5) -> SlackMessage:
    """Return a thread reply: the probe's view of a down service (when known), then what Cloud Run says.

    The newest log lines are shown; all of them go in a file when there are more.
    """
    top = diagnosis.top
    emoji = ":mag:" if top is None or top.is_fault else ":rotating_light:"
    first = f"{emoji} *{diagnosis.service}*"
    if service is not None:
        first += f" is down: {service.error or 'no answer'}"
    body = render_diagnosis(diagnosis, markdown=True, log_lines=log_lines)
    blocks = [section(first), *(section(part) for part in _split(body, MAX_SECTION_CHARS - 10))]
    attachment = None
    if len(diagnosis.logs) > log_lines:
        attachment = Attachment(
            filename=f"{diagnosis.service}-logs.txt",
            title=f"{diagnosis.service}: the last {len(diagnosis.logs)} log lines",
            content="\n".join(
                f"{e.timestamp.isoformat()} {e.severity} {e.revision} {e.log}: {e.text}" for e in diagnosis.logs
            ),
        )
    text = f"{diagnosis.service}: {summarize(diagnosis)}"
    message = fit(text, blocks, attachment)
    return SlackMessage(text=message.text, blocks=message.blocks, attachment=attachment or message.attachment)


def _split(text: str, limit: int) -> list[str]:
    """Split text at line ends into pieces of at most `limit` characters, keeping ``` fences balanced."""
    pieces: list[str] = []
    current = ""
    for line in text.splitlines():
        if current and len(current) + len(line) + 1 > limit:
            if current.count("```") % 2:
                current += "\n```"
                line = "```" + line
            pieces.append(current)
            current = ""
        current = f"{current}\n{line}" if current else line
    if current:
        pieces.append(current)
    return pieces


# -- answers to the person who typed the command ------------------------------------------------------------------
def render_choices(problem: str, usage: Sequence[str]) -> str:
    """Return an ephemeral answer: what was wrong, and what would have worked."""
    return problem + "\n" + "\n".join(f"• `{line}`" for line in usage)
