"""The Slack bot: `/staging` and `/e2e` answered in threads, work in the background.

The ack path does no Slack call and no probe: it parses, checks who may do what, stores the run, starts the
background task, and acknowledges (`process_before_response=True`, so the ack is the HTTP answer and nothing
polls). Everything the channel sees goes through the `Deliverer`: stored first, then posted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Config
from bot.slack import render
from bot.slack.access import GroupDirectory, channel_refusal, tier_refusal
from bot.slack.delivery import Deliverer
from bot.slack.requests import Refusal, Request, e2e_usage, parse_e2e, parse_staging, staging_usage
from bot.slack.runs import RunTracker, TrackedRun
from bot.store import Store
from probes import ServiceState, StatusReport

log = logging.getLogger(__name__)

StatusCheck = Callable[[Config], Awaitable[StatusReport]]
Extension = Callable[["SlackBot", TrackedRun, StatusReport], Awaitable[None]]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def permalink(channel: str, ts: str | None) -> str:
    """Return a link to a message (Slack resolves `/archives/C/pTS` in every workspace)."""
    return f"https://slack.com/archives/{channel}/p{(ts or '').replace('.', '')}"


@dataclass
class SlackBot:
    """Everything the listeners need, handed in by the composition root."""

    config: Config
    store: Store
    deliverer: Deliverer
    tracker: RunTracker
    groups: GroupDirectory
    check_status: StatusCheck
    clock: Callable[[], datetime] = _utcnow
    # Later capabilities (diagnosis threads) add replies for down services after the status message.
    after_status: list[Extension] = field(default_factory=list)

    # -- wiring -------------------------------------------------------------------------------------------------
    def build_app(self, client: AsyncWebClient, signing_secret: str, bot_user_id: str, team_id: str) -> AsyncApp:
        """Return the Bolt app; `authorize` is answered from the startup `auth.test`, so no request pays for it."""

        async def authorize(**_: Any) -> AuthorizeResult:
            return AuthorizeResult(
                enterprise_id=None, team_id=team_id, bot_user_id=bot_user_id, bot_id=bot_user_id,
                bot_token=client.token,
            )  # fmt: skip

        app = AsyncApp(
            client=client, signing_secret=signing_secret, authorize=authorize,
            process_before_response=True, request_verification_enabled=True,
        )  # fmt: skip
        app.command(self.config.slack.staging_command)(self.on_staging)
        app.command(self.config.slack.e2e_command)(self.on_e2e)
        return app

    # -- /staging -----------------------------------------------------------------------------------------------
    async def on_staging(self, ack: AsyncAck, command: dict[str, Any], request: AsyncBoltRequest) -> None:
        settings = self.config.slack
        refused = channel_refusal(settings, command["channel_id"])
        if refused:
            await ack(refused)
            return
        parsed = parse_staging(command.get("text", ""), settings.staging_command, self.config.services)
        if isinstance(parsed, Refusal):
            await ack(render.render_choices(parsed.problem, parsed.usage))
            return
        if parsed.verb == "help":
            await ack(render.render_choices("What I can do:", staging_usage(settings.staging_command)))
            return
        if parsed.verb == "history":
            await ack(await self._history_text(parsed))
            return
        if parsed.verb == "status":
            await ack(await self._start_status(command, request))
            return
        await ack(f"`{parsed.verb}` is not available in this deployment yet.")

    async def _start_status(self, command: dict[str, Any], request: AsyncBoltRequest) -> str:
        if _is_slack_retry(request):
            return "Already on it."
        user, channel = command["user_id"], command["channel_id"]
        run_id = await asyncio.to_thread(
            self.store.create_run,
            kind="status", target=None, requested_by=user, origin="slack", channel=channel,
            state="queued", request_key=f"trigger:{command.get('trigger_id')}",
        )  # fmt: skip
        started = self.tracker.start(TrackedRun(run_id, None, channel), self._run_status, self._mark_started)
        if not started and not self.tracker.accepting:
            await asyncio.to_thread(self.store.finish_run, run_id, state="cancelled", summary="bot shutting down")
            return "The bot is restarting; try again in a minute."
        return f"Probing {len(self.config.services)} services… (run #{run_id})"

    async def _mark_started(self, run_id: int) -> bool:
        return await asyncio.to_thread(self.store.start_run, run_id)

    async def _run_status(self, run: TrackedRun) -> None:
        record = await asyncio.to_thread(self.store.get_run, run.run_id)
        requested_by = record.requested_by if record else "someone"
        try:
            report = await self.check_status(self.config)
        except Exception as exc:
            await asyncio.to_thread(
                self.store.finish_run, run.run_id, state="interrupted", summary=f"probing failed: {exc!r}"
            )
            raise
        await asyncio.to_thread(self.store.finish_status_run, run.run_id, report)
        main = await self.deliverer.post(
            key=f"run:{run.run_id}:status", channel=run.channel, run_id=run.run_id,
            message=render.render_status(report, run_id=run.run_id, requested_by=requested_by),
        )  # fmt: skip
        run.message_id = main
        for service in report.services:
            if service.state is ServiceState.DOWN:
                await self.deliverer.post(
                    key=f"run:{run.run_id}:down:{service.name}", channel=run.channel, run_id=run.run_id,
                    thread_of=main, message=render.render_down_service(service),
                )  # fmt: skip
        for extension in self.after_status:
            await extension(self, run, report)

    async def _history_text(self, parsed: Request) -> str:
        report = await asyncio.to_thread(
            self.store.history, since=self.clock() - timedelta(hours=24), service=parsed.argument, limit=5
        )
        if not report.services:
            return "No status runs recorded in the last 24 h. Try `status` first."
        lines = ["*Last 24 h*"]
        for s in report.services:
            uptime = "-" if s.uptime is None else f"{s.uptime:.1%}"
            p50 = "-" if s.latency_p50_ms is None else f"{s.latency_p50_ms:,.0f} ms"
            p95 = "-" if s.latency_p95_ms is None else f"{s.latency_p95_ms:,.0f} ms"
            change = ""
            if s.last_change is not None:
                change = f", {s.last_change.from_state}→{s.last_change.to_state} at {s.last_change.at:%H:%M} UTC"
            lines.append(
                f"• *{s.name}*: {s.state or '-'}, uptime {uptime} over {s.samples} runs, p50 {p50}, p95 {p95}{change}"
            )
        return "\n".join(lines)

    # -- /e2e ---------------------------------------------------------------------------------------------------
    async def on_e2e(self, ack: AsyncAck, command: dict[str, Any], request: AsyncBoltRequest) -> None:
        settings = self.config.slack
        refused = channel_refusal(settings, command["channel_id"])
        if refused:
            await ack(refused)
            return
        parsed = parse_e2e(command.get("text", ""), settings.e2e_command, self.config.tiers)
        if isinstance(parsed, Refusal):
            await ack(render.render_choices(parsed.problem, parsed.usage))
            return
        if parsed.verb in ("run", "cancel"):
            groups = await self.groups.groups_of(command["user_id"], settings.allowed_groups)
            refused = tier_refusal(settings, command["user_id"], groups)
            if refused:
                await ack(refused)
                return
        if parsed.verb == "list":
            await ack(self._tier_list())
            return
        await ack(render.render_choices("What I can do:", e2e_usage(settings.e2e_command, self.config.tiers)))

    def _tier_list(self) -> str:
        if not self.config.tiers:
            return "No test tiers are configured."
        lines = ["*Test tiers*"]
        for tier in self.config.tiers.values():
            about = tier.description or ", ".join(tier.paths)
            lines.append(f"• *{tier.name}*: {about}" + (f" — _{tier.impact}_" if tier.impact else ""))
        return "\n".join(lines)


def _is_slack_retry(request: AsyncBoltRequest) -> bool:
    """Slack re-sends a request it got no timely 200 for; a retry must never start a second run."""
    return bool(request.headers.get("x-slack-retry-num"))
