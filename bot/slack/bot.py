"""The Slack bot: `/staging` and `/e2e` answered in threads, work in the background.

The ack path does no Slack call and no probe: it parses, checks who may do what, stores the run, starts the
background task, and acknowledges (`process_before_response=True`, so the ack is the HTTP answer and nothing
polls). Everything the channel sees goes through the `Deliverer`: stored first, then posted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Config
from bot.diagnosis import Diagnosis, summarize
from bot.diagnosis.collect import ProjectDiagnosers
from bot.diagnosis.storage import save_diagnosis
from bot.slack import render
from bot.slack.access import GroupDirectory, channel_refusal, tier_refusal
from bot.slack.delivery import Deliverer
from bot.slack.remediation import ACTION_PREFIX, DIAGNOSE_AGAIN_ACTION, RemediationDesk
from bot.slack.render_tiers import render_tier_details, render_tier_progress, render_tier_verdict
from bot.slack.requests import Refusal, Request, e2e_usage, parse_e2e, parse_staging, staging_usage
from bot.slack.runs import RunTracker, TrackedRun
from bot.store import Store
from bot.store.records import RunRecord
from probes import ServiceState, StatusReport
from suites.engine import TierEngine
from suites.events import Event, Progress, advance
from suites.report import report_to_json, stored_run_state

log = logging.getLogger(__name__)

StatusCheck = Callable[[Config], Awaitable[StatusReport]]


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
    engine: TierEngine | None = None  # runs tiers; None where tiers cannot run (then /e2e run says so)
    clock: Callable[[], datetime] = _utcnow
    progress_interval_s: float = 2.0  # Slack's chat.update is Tier 3: one edit per 2 s per run is plenty
    # Reads Cloud Run and its logs for down services; None where the bot has no cloud access configured.
    diagnoser: ProjectDiagnosers | None = None
    # Offers fixes on diagnosis replies and answers the clicks; None where the bot may not act.
    remediation: RemediationDesk | None = None

    # -- wiring -------------------------------------------------------------------------------------------------
    def build_app(self, client: AsyncWebClient, signing_secret: str, bot_user_id: str, team_id: str) -> AsyncApp:
        """Return the Bolt app; `authorize` is answered from the startup `auth.test`, so no request pays for it."""

        async def authorize(**_: Any) -> AuthorizeResult:
            return AuthorizeResult(
                enterprise_id=None, team_id=team_id, bot_user_id=bot_user_id, bot_id=bot_user_id,
                bot_token=client.token,
            )  # fmt: skip

        app = AsyncApp(
            # Bolt builds each request's client from `authorize`'s token; its own needs only where the API is.
            client=AsyncWebClient(base_url=client.base_url, timeout=client.timeout),
            signing_secret=signing_secret, authorize=authorize, process_before_response=True,
            request_verification_enabled=True,
        )  # fmt: skip
        app.command(self.config.slack.staging_command)(self.on_staging)
        app.command(self.config.slack.e2e_command)(self.on_e2e)
        if self.remediation is not None:
            app.action(re.compile("^" + re.escape(ACTION_PREFIX)))(self.remediation.on_click)
        app.action(DIAGNOSE_AGAIN_ACTION)(self.on_diagnose_again)
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
        await ack(await self._start_diagnose(str(parsed.argument), command, request))

    async def _start_diagnose(self, service: str, command: dict[str, Any], request: AsyncBoltRequest) -> str:
        if self.diagnoser is None:
            return "This bot has no Cloud Run access configured, so it cannot diagnose."
        if _is_slack_retry(request):
            return "Already on it."
        run_id = await asyncio.to_thread(
            self.store.create_run,
            kind="diagnose", target=service, requested_by=command["user_id"], origin="slack",
            channel=command["channel_id"], state="queued", request_key=f"trigger:{command.get('trigger_id')}",
        )  # fmt: skip
        self.tracker.start(TrackedRun(run_id, None, command["channel_id"]), self._run_diagnose, self._mark_started)
        return f"Diagnosing `{service}` on Cloud Run… (run #{run_id})"

    async def _run_diagnose(self, run: TrackedRun) -> None:
        record = await asyncio.to_thread(self.store.get_run, run.run_id)
        service = record.target if record and record.target else ""
        found = (await self._diagnose(run.run_id, [service]))[service]
        diagnosis = found[0]
        top = diagnosis.top
        await asyncio.to_thread(
            self.store.finish_run, run.run_id, state="finished", verdict=top.cause.value if top else "healthy",
            summary=summarize(diagnosis),
        )  # fmt: skip
        requested_by = record.requested_by if record else "someone"
        message = await self._with_offers(render.render_diagnosis_reply(None, diagnosis), found, run, requested_by)
        main = await self.deliverer.post(
            key=f"run:{run.run_id}:diagnosis", channel=run.channel, run_id=run.run_id, message=message,
            thread_ts=record.thread_ts if record else None,
        )  # fmt: skip
        await self._remember_message(run, main)

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
        await self._remember_message(run, main)
        down = [s for s in report.services if s.state is ServiceState.DOWN]
        # A failure that only echoes a down dependency gets "caused by", not a diagnosis of its own.
        diagnoses = await self._diagnose(run.run_id, [s.name for s in down if not s.caused_by])
        for service in down:
            found = diagnoses.get(service.name)
            if found is None:
                message = render.render_down_service(service)
            else:
                message = await self._with_offers(
                    render.render_diagnosis_reply(service, found[0]), found, run, requested_by
                )
            await self.deliverer.post(
                key=f"run:{run.run_id}:down:{service.name}", channel=run.channel, run_id=run.run_id,
                thread_of=main, message=message,
            )  # fmt: skip

    async def _diagnose(self, run_id: int, names: list[str]) -> dict[str, tuple[Diagnosis, int]]:
        """Diagnose the named services at once and store each diagnosis under the run (with its id)."""
        if self.diagnoser is None or not names:
            return {}
        found = await self.diagnoser.diagnose_all([self.config.services[name] for name in names])
        stored = {}
        for diagnosis in found:
            stored[diagnosis.service] = (
                diagnosis,
                await asyncio.to_thread(save_diagnosis, self.store, run_id, diagnosis),
            )
        return stored

    async def _with_offers(
        self, message: render.SlackMessage, found: tuple[Diagnosis, int], run: TrackedRun, requested_by: str
    ) -> render.SlackMessage:
        """Add the remediation buttons a diagnosis supports (stored as offers) to its reply."""
        if self.remediation is None:
            return message
        diagnosis, diagnosis_id = found
        buttons = await self.remediation.offer(
            diagnosis, diagnosis_id, run_id=run.run_id, channel=run.channel, requested_by=requested_by
        )
        if buttons is None:
            return message
        return render.SlackMessage(text=message.text, blocks=(*message.blocks, buttons), attachment=message.attachment)

    async def on_diagnose_again(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        """The "Diagnose again" button after a stale or failed action: a fresh diagnosis in the same thread."""
        await ack()
        service = str(body["actions"][0]["value"])
        if service not in self.config.services or self.diagnoser is None:
            return
        message = body.get("message") or {}
        thread_ts = message.get("thread_ts") or message.get("ts")
        channel, user = body["channel"]["id"], body["user"]["id"]
        run_id = await asyncio.to_thread(
            self.store.create_run, kind="diagnose", target=service, requested_by=user, origin="slack",
            channel=channel, thread_ts=thread_ts, state="queued",
        )  # fmt: skip
        self.tracker.start(TrackedRun(run_id, None, channel), self._run_diagnose, self._mark_started)

    async def _remember_message(self, run: TrackedRun, message_id: int) -> None:
        ts = await self.deliverer.slack_ts(message_id)
        if ts is not None:  # not delivered yet (Slack is down): the thread link waits, the run does not
            await asyncio.to_thread(self.store.set_run_message, run.run_id, channel=run.channel, message_ts=ts)

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
        elif parsed.verb == "history":
            await ack(await self._tier_history_text(str(parsed.argument)))
        elif parsed.verb == "run":
            await ack(await self._start_tiers(str(parsed.argument), command, request))
        elif parsed.verb == "cancel":
            await ack(await self._cancel(int(str(parsed.argument)), command["user_id"]))
        else:
            await ack(render.render_choices("What I can do:", e2e_usage(settings.e2e_command, self.config.tiers)))

    async def _start_tiers(self, name: str, command: dict[str, Any], request: AsyncBoltRequest) -> str:
        if self.engine is None:
            return "This bot cannot run test tiers (no tier engine is configured)."
        if _is_slack_retry(request):
            return "Already on it."
        names = sorted(self.config.tiers) if name == "all" else [name]
        user, channel = command["user_id"], command["channel_id"]
        answers = []
        for tier in names:
            busy = await self._running_run(tier)
            if busy is not None:
                where = (
                    f"<{permalink(busy.channel or channel, busy.message_ts)}|its thread>"
                    if busy.message_ts
                    else "its channel"
                )
                answers.append(f"`{tier}` is already running (run #{busy.id}): follow {where}.")
                continue
            run_id = await asyncio.to_thread(
                self.store.create_run,
                kind="tier", target=tier, requested_by=user, origin="slack", channel=channel, state="queued",
                request_key=f"trigger:{command.get('trigger_id')}:{tier}",
            )  # fmt: skip
            self.tracker.start(TrackedRun(run_id, tier, channel), self._run_tier, self._mark_started)
            answers.append(f"Running `{tier}` (run #{run_id}); progress and the verdict follow in the channel.")
        return "\n".join(answers)

    async def _running_run(self, tier: str) -> RunRecord | None:
        """Return the active run of `tier`, in this process or any replica sharing the store."""
        tracked = self.tracker.running_tier(tier)
        if tracked is not None:
            return await asyncio.to_thread(self.store.get_run, tracked.run_id)
        active = await asyncio.to_thread(
            self.store.recent_runs, kind="tier", target=tier, states=("queued", "running"), limit=1
        )
        return active[0] if active else None

    async def _run_tier(self, run: TrackedRun) -> None:
        assert self.engine is not None and run.tier is not None
        tier = self.config.tiers[run.tier]
        record = await asyncio.to_thread(self.store.get_run, run.run_id)
        requested_by = record.requested_by if record else "someone"
        history = await asyncio.to_thread(self.store.tier_history, tier.name)
        main = await self.deliverer.post(
            key=f"run:{run.run_id}:tier", channel=run.channel, run_id=run.run_id,
            message=render_tier_progress(tier.name, run.run_id, Progress(), 0.0, requested_by),
        )  # fmt: skip
        run.message_id = main
        await self._remember_message(run, main)
        live = _LiveProgress(self, run, tier.name, requested_by, main)
        try:
            report = await self.engine.run(
                tier, history=history, run_id=run.run_id, on_event=live.on_event, stop=run.cancel_requested
            )
        except BaseException as exc:
            # A person's cancel stops pytest through `stop` and ends in a verdict; a task cancelled here is the
            # bot shutting down (the drain), so the run was interrupted, not cancelled by anyone.
            why = "stopped by a bot shutdown" if isinstance(exc, asyncio.CancelledError) else repr(exc)
            await asyncio.to_thread(self.store.finish_run, run.run_id, state="interrupted", summary=why)
            raise
        finally:
            await live.close()
        await asyncio.to_thread(self.store.record_test_results, run.run_id, report.results)
        await asyncio.to_thread(
            self.store.finish_run, run.run_id, state=stored_run_state(report), verdict=report.verdict.state.value,
            summary=report.verdict.headline, details=report_to_json(report),
        )  # fmt: skip
        await self.deliverer.post(
            key=f"run:{run.run_id}:verdict", channel=run.channel, run_id=run.run_id, update_of=main,
            message=render_tier_verdict(report, requested_by),
        )  # fmt: skip
        await self.deliverer.post(
            key=f"run:{run.run_id}:details", channel=run.channel, run_id=run.run_id, thread_of=main,
            message=render_tier_details(report),
        )  # fmt: skip

    async def _cancel(self, run_id: int, user: str) -> str:
        tracked = self.tracker.get(run_id)
        if tracked is None or tracked.tier is None:
            record = await asyncio.to_thread(self.store.get_run, run_id)
            if record is None or record.kind != "tier":
                return f"There is no test run #{run_id}."
            if record.state not in ("queued", "running"):
                return f"Run #{run_id} has already ended ({record.state})."
            return f"Run #{run_id} is running on another bot replica ({record.owner}); cancel it from there."
        tracked.cancel_requested.set()
        await asyncio.to_thread(
            self.store.append_audit,
            actor=user,
            action="tier.cancel",
            subject=f"run:{run_id}",
            detail={"tier": tracked.tier},
        )
        return f"Cancelling run #{run_id} (`{tracked.tier}`): pytest is being stopped."

    async def _tier_history_text(self, tier: str) -> str:
        runs = await asyncio.to_thread(self.store.recent_runs, kind="tier", target=tier, limit=10)
        if not runs:
            return f"No runs of `{tier}` recorded yet."
        verdicts = [r.verdict for r in runs if r.state == "finished" and r.verdict]
        passed = sum(1 for v in verdicts if v == "passed")
        rate = f"{passed}/{len(verdicts)} passed" if verdicts else "no finished runs"
        lines = [f"*{tier}*: {rate} in the last {len(runs)} runs"]
        for r in runs:
            when = f"{r.created_at:%Y-%m-%d %H:%M} UTC"
            lines.append(f"• #{r.id} {when} — {r.verdict or r.state}: {render.shorten(r.summary, 200)}")
        return "\n".join(lines)

    def _tier_list(self) -> str:
        if not self.config.tiers:
            return "No test tiers are configured."
        lines = ["*Test tiers*"]
        for tier in self.config.tiers.values():
            about = tier.description or ", ".join(tier.paths)
            lines.append(f"• *{tier.name}*: {about}" + (f" — _{tier.impact}_" if tier.impact else ""))
        return "\n".join(lines)


class _LiveProgress:
    """Edit the run's channel message with the latest progress, at most once per interval (best effort).

    A ticker publishes the newest state, so the test running now shows up even when no event follows it for
    minutes; every 10 s the elapsed time is refreshed too. Edits are not stored: a lost one is harmless, and the
    verdict goes through the outbox.
    """

    def __init__(self, bot: SlackBot, run: TrackedRun, tier: str, requested_by: str, message_id: int) -> None:
        self.bot, self.run, self.tier, self.requested_by, self.message_id = bot, run, tier, requested_by, message_id
        self.progress = Progress()
        self.started = time.monotonic()
        self.changed = asyncio.Event()
        self.ticker = asyncio.create_task(self._tick(), name=f"progress:{run.run_id}")

    def on_event(self, event: Event) -> None:
        self.progress = advance(self.progress, event)
        self.changed.set()

    async def _tick(self) -> None:
        last_heartbeat = time.monotonic()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), timeout=10)
            self.changed.clear()
            await self._edit()
            if time.monotonic() - last_heartbeat > 60:  # long runs must not look dead to the next start
                last_heartbeat = time.monotonic()
                await asyncio.to_thread(self.bot.store.heartbeat, self.run.run_id)
            await asyncio.sleep(self.bot.progress_interval_s)

    async def _edit(self) -> None:
        ts = await self.bot.deliverer.slack_ts(self.message_id)
        if ts is None:
            return
        elapsed = time.monotonic() - self.started
        message = render_tier_progress(self.tier, self.run.run_id, self.progress, elapsed, self.requested_by)
        try:
            await self.bot.deliverer.client.chat_update(channel=self.run.channel, ts=ts, **message.payload())
        except Exception as exc:
            log.info("progress edit for run %s skipped: %s", self.run.run_id, exc)

    async def close(self) -> None:
        self.ticker.cancel()
        await asyncio.gather(self.ticker, return_exceptions=True)


def _is_slack_retry(request: AsyncBoltRequest) -> bool:
    """Slack re-sends a request it got no timely 200 for; a retry must never start a second run."""
    return bool(request.headers.get("x-slack-retry-num"))
