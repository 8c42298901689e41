"""Block Kit for `/e2e run`: the live channel message, the verdict, and the thread of details. Pure."""

from __future__ import annotations

from collections.abc import Sequence

from bot.slack.render import Attachment, Block, SlackMessage, context, fit, section, shorten
from suites.events import Progress
from suites.report import TierReport, render_counts, render_summary
from suites.verdict import VerdictState

_VERDICT_EMOJI = {
    VerdictState.PASSED: ":white_check_mark:",
    VerdictState.UNTRUSTED: ":warning:",
    VerdictState.FAILED: ":x:",
    VerdictState.INCOMPLETE: ":hourglass:",
}
_VERDICT_WORD = {
    VerdictState.PASSED: "passed",
    VerdictState.UNTRUSTED: "UNTRUSTED: green, but do not believe it",
    VerdictState.FAILED: "FAILED",
    VerdictState.INCOMPLETE: "INCOMPLETE",
}


def render_tier_progress(
    tier: str, run_id: int, progress: Progress, elapsed_s: float, requested_by: str
) -> SlackMessage:
    """Return the channel message while a tier runs: counts so far, elapsed time, the test running now."""
    c = progress.counts
    total = "?" if progress.selected is None else str(progress.selected)
    done = c.finished + c.errors
    head = f":test_tube: *{tier}* running — {done}/{total} · {render_counts(c)} · {elapsed_s:.0f}s"
    blocks: list[Block] = [section(head)]
    if progress.current:
        blocks.append(context(f"Now: `{shorten(progress.current, 200)}`"))
    blocks.append(context(f"Requested by <@{requested_by}> · run #{run_id} · `cancel {run_id}` to stop it"))
    return SlackMessage(text=f"{tier}: running, {done}/{total} done", blocks=tuple(blocks))


def render_tier_verdict(report: TierReport, requested_by: str) -> SlackMessage:
    """Return the channel message once the run has ended: the verdict first, then the counts."""
    verdict = report.verdict
    c = report.counts
    title = f"{report.tier}: {_VERDICT_WORD[verdict.state]}"
    lines = [
        f"{_VERDICT_EMOJI[verdict.state]} *{title}*",
        verdict.headline,
        f"{render_counts(c)} of {c.collected} collected in {report.duration_s:.1f}s",
    ]
    if verdict.reasons:
        lines.append("Why: " + ", ".join(f"`{r.code}`" for r in verdict.reasons))
    if report.impact and verdict.state is not VerdictState.PASSED:
        lines.append(f"_Impact: {report.impact}_")
    blocks = [
        section("\n".join(lines)),
        context(f"Requested by <@{requested_by}> · run #{report.run_id} · details in the thread"),
    ]
    return SlackMessage(text=shorten(f"{title} — {verdict.headline}", 3000), blocks=tuple(blocks))


def render_tier_details(report: TierReport) -> SlackMessage:
    """Return the thread reply: every trust reason, failures, skips by reason, flaky notes, the slowest tests."""
    blocks: list[Block] = []
    for reason in report.verdict.reasons:
        tests = _list(reason.tests, 8)
        blocks.append(section(f":mag: *{reason.code}*: {reason.detail}" + (f"\n{tests}" if tests else "")))
    if report.failures:
        lines = []
        for failure in report.failures[:15]:
            first = failure.message.strip().splitlines()[0] if failure.message.strip() else ""
            note = f" _({failure.flaky.note})_" if failure.flaky else ""
            lines.append(f"• `{shorten(failure.nodeid, 150)}`: {shorten(first, 300)}{note}")
        more = len(report.failures) - 15
        blocks.append(section("*Failures*\n" + "\n".join(lines) + (f"\n…and {more} more" if more > 0 else "")))
    if report.skips:
        lines = [f"• {len(ids)} x {shorten(why, 200)}" for why, ids in report.skips.items()]
        blocks.append(section("*Skipped*\n" + "\n".join(lines)))
    if report.slowest:
        lines = [f"• `{shorten(s.nodeid, 150)}` {s.duration_s:.2f}s" for s in report.slowest]
        blocks.append(section("*Slowest*\n" + "\n".join(lines)))
    if not blocks:
        blocks.append(section("Nothing to add: every test passed, and no trust check fired."))
    text = f"{report.tier}: details of run #{report.run_id}"
    overflow = Attachment(
        filename=f"{report.tier}-run-{report.run_id}.txt", title=f"{report.tier}: full report",
        content=render_summary(report) + ("\n\n" + report.output_tail if report.output_tail else ""),
    )  # fmt: skip
    needs_file = len(report.failures) > 15 or any(len(r.tests) > 8 for r in report.verdict.reasons)
    message = fit(text, blocks, overflow)
    if needs_file and message.attachment is None:
        message = SlackMessage(text=message.text, blocks=message.blocks, attachment=overflow)
    return message


def _list(nodeids: Sequence[str], limit: int) -> str:
    shown = [f"• `{shorten(n, 150)}`" for n in nodeids[:limit]]
    if len(nodeids) > limit:
        shown.append(f"…and {len(nodeids) - limit} more (in the file)")
    return "\n".join(shown)
