"""Remediation in Slack: offer buttons on a diagnosis reply, and what happens when someone clicks one.

The click is the approval (after Slack's confirm dialog). It is acknowledged at once; the decision runs in the
background: the approver rule, the hourly limit, then the store's one conditional write, which exactly one of any
number of concurrent clicks wins (across replicas too). Only the winner executes. Everyone else is told why,
ephemerally. Every click, decision and outcome is audited.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_bolt.async_app import AsyncAck
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Config, ServiceConfig
from bot.diagnosis import Diagnosis
from bot.remediation.executor import RemediationExecutor
from bot.remediation.policy import (
    ProposedAction,
    approver_groups,
    approvers_for,
    click_refusal,
    lost_click_explanation,
    over_rate_limit,
    propose_actions,
)
from bot.slack.access import GroupDirectory
from bot.slack.delivery import Deliverer
from bot.slack.render import Block, Button, SlackMessage, actions, context, section
from bot.slack.runs import RunTracker
from bot.store import Store
from bot.store.records import OfferRecord

log = logging.getLogger(__name__)

ACTION_PREFIX = "remediate:"
DENY_ACTION = "remediate:deny"
DIAGNOSE_AGAIN_ACTION = "diagnose:again"


def offer_buttons(service: ServiceConfig, offers: Sequence[tuple[int, ProposedAction]]) -> Block:
    """Return the buttons for stored offers: one per action, each behind Slack's confirm dialog, and Deny."""
    assert service.cloud_run is not None
    where = f"{service.cloud_run.project}/{service.cloud_run.region}"
    buttons = [
        Button(
            action_id=f"{ACTION_PREFIX}{action.kind.value}",
            text={
                "restart": "Restart",
                "rollback": f"Roll back to {action.target_revision}",
                "redeploy": "Redeploy last good image",
            }[action.kind.value],
            value=str(offer_id),
            style="primary" if index == 0 else None,
            confirm=(
                f"{action.kind.value.capitalize()} {service.name}?",
                f"This will {action.describe(service.name)} on Cloud Run ({where}). It runs once, and is audited.",
            ),
        )
        for index, (offer_id, action) in enumerate(offers)
    ]
    buttons.append(
        Button(action_id=DENY_ACTION, text="Deny", value=",".join(str(i) for i, _ in offers), style="danger")
    )
    return actions(buttons, block_id=f"remediation:{service.name}")


def close_offer_blocks(blocks: Sequence[Block], note: str) -> list[Block]:
    """Return a message's blocks with its remediation buttons replaced by a note on what was decided."""
    kept = [b for b in blocks if not str(b.get("block_id", "")).startswith("remediation:")]
    return [*kept, context(note)]


@dataclass
class RemediationDesk:
    """Offers fixes for diagnosed services and answers the clicks on them."""

    config: Config
    store: Store
    deliverer: Deliverer
    groups: GroupDirectory
    executor: RemediationExecutor
    tracker: RunTracker
    client: AsyncWebClient
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    # -- offering ---------------------------------------------------------------------------------------------------
    async def offer(
        self, diagnosis: Diagnosis, diagnosis_id: int, *, run_id: int, channel: str, requested_by: str
    ) -> Block | None:
        """Store an offer per sensible action and return their buttons (None when nothing may be offered)."""
        service = self.config.services[diagnosis.service]
        proposed = propose_actions(service, diagnosis)
        if not proposed or diagnosis.cloud_run is None:
            return None
        expires_at = self.clock() + timedelta(minutes=self.config.remediation.expiry_minutes)
        offers = []
        for action in proposed:
            offer_id = await asyncio.to_thread(
                self.store.create_offer,
                service=service.name, action=action.kind.value, requested_by=requested_by, expires_at=expires_at,
                etag=diagnosis.cloud_run.etag, target_revision=action.target_revision, target_image=action.target_image,
                run_id=run_id, diagnosis_id=diagnosis_id, channel=channel,
            )  # fmt: skip
            await asyncio.to_thread(
                self.store.append_audit, actor="stagebot", action="remediation.offered",
                subject=f"service:{service.name}",
                detail={"offer_id": offer_id, "action": action.kind.value, "etag": diagnosis.cloud_run.etag,
                        "target_revision": action.target_revision, "target_image": action.target_image,
                        "requested_by": requested_by, "expires_at": expires_at.isoformat()},
            )  # fmt: skip
            offers.append((offer_id, action))
        return offer_buttons(service, offers)

    # -- clicks -----------------------------------------------------------------------------------------------------
    async def on_click(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        """Bolt listener for the offer buttons: acknowledge now, decide and act in the background."""
        await ack()
        self.tracker.spawn(self._handle_click(body), name="remediation-click")

    async def _handle_click(self, body: dict[str, Any]) -> None:
        action = body["actions"][0]
        clicker = body["user"]["id"]
        channel = body["channel"]["id"]
        message = body.get("message") or {}
        where = _Where(channel, message.get("ts") or body["container"]["message_ts"], message.get("thread_ts"),
                       list(message.get("blocks") or []))  # fmt: skip
        if action["action_id"] == DENY_ACTION:
            await self._deny([int(v) for v in str(action["value"]).split(",") if v.isdigit()], clicker, where)
            return
        offer = await asyncio.to_thread(self.store.get_offer, int(action["value"]))
        if offer is None:
            await self._tell(where, clicker, "This offer is unknown to the bot (it was cleaned up): diagnose again.")
            return
        await self._audit(clicker, "remediation.click", offer, {"action": offer.action})
        refusal = await self._refusal(offer, clicker)
        if refusal is None:
            done = await asyncio.to_thread(
                self.store.approved_actions_since, offer.service, self.clock() - timedelta(hours=1)
            )
            if over_rate_limit(done, self.config.remediation.max_actions_per_hour):
                limit = self.config.remediation.max_actions_per_hour
                refusal = (
                    f"{offer.service} already had {done} action(s) in the last hour (limit {limit}): "
                    "no restart loops. Look at it by hand."
                )
        if refusal is not None:
            await self._audit(clicker, "remediation.refused", offer, {"why": refusal})
            await self._tell(where, clicker, refusal)
            return
        decision = await asyncio.to_thread(
            self.store.decide_offer, offer.id, decision="approved", decided_by=clicker, now=self.clock()
        )
        if not decision.won:
            why = lost_click_explanation(decision.offer, self.clock())
            await self._audit(clicker, "remediation.lost", offer, {"why": why, "state": decision.offer.state})
            await self._tell(where, clicker, why)
            return
        await self._audit(clicker, "remediation.approved", offer, {"action": offer.action})
        await self._execute(decision.offer, clicker, where)

    async def _deny(self, offer_ids: list[int], clicker: str, where: _Where) -> None:
        denied: list[OfferRecord] = []
        for offer_id in offer_ids:
            offer = await asyncio.to_thread(self.store.get_offer, offer_id)
            if offer is None:
                continue
            refusal = await self._refusal(offer, clicker, denying=True)
            if refusal is not None:
                await self._audit(clicker, "remediation.refused", offer, {"why": refusal, "deny": True})
                await self._tell(where, clicker, refusal)
                return
            decision = await asyncio.to_thread(
                self.store.decide_offer, offer_id, decision="denied", decided_by=clicker, now=self.clock()
            )
            if decision.won:
                denied.append(decision.offer)
                await self._audit(clicker, "remediation.denied", offer, {})
        if not denied:
            await self._tell(where, clicker, "Nothing to deny: these offers were already decided or expired.")
            return
        await self._close(where, f":no_entry: Denied by <@{clicker}>.", key=f"offers:{offer_ids}:denied")

    async def _execute(self, offer: OfferRecord, clicker: str, where: _Where) -> None:
        await self._close(
            where, f":white_check_mark: Approved by <@{clicker}>: {offer.action}.", key=f"offer:{offer.id}:approved"
        )
        run_id = await asyncio.to_thread(
            self.store.create_run, kind="action", target=offer.service, requested_by=clicker, origin="slack",
            channel=where.channel, thread_ts=where.thread_ts,
        )  # fmt: skip
        step = 0

        async def progress(text: str) -> None:
            nonlocal step
            step += 1
            await self._reply(where, f"offer:{offer.id}:step:{step}", text)

        await progress(f":gear: <@{clicker}> approved: {offer.action} {offer.service} (action run #{run_id}).")
        try:
            outcome = await self.executor.execute(offer, clicker, progress)
        except BaseException as exc:
            await asyncio.to_thread(self.store.finish_run, run_id, state="interrupted", summary=repr(exc))
            raise
        await asyncio.to_thread(
            self.store.finish_run, run_id, state="finished", verdict=outcome.outcome, summary=outcome.summary,
            details=outcome.detail,
        )  # fmt: skip
        extra: list[Block] = []
        if outcome.outcome in ("stale", "failed"):
            extra.append(actions([Button(DIAGNOSE_AGAIN_ACTION, "Diagnose again", offer.service, style="primary")],
                                 block_id=f"again:{offer.service}"))  # fmt: skip
        await self._reply(where, f"offer:{offer.id}:outcome", outcome.summary, extra)

    async def _refusal(self, offer: OfferRecord, clicker: str, *, denying: bool = False) -> str | None:
        service = self.config.services.get(offer.service)
        if service is None:
            return f"{offer.service} is no longer in the bot's config."
        if not service.remediable or service.cloud_run is None:
            return f"{offer.service} may not be touched by the bot (`remediable = false` or no Cloud Run mapping)."
        approvers = approvers_for(service, self.config.remediation)
        groups = await self.groups.groups_of(clicker, approver_groups(approvers))
        return click_refusal(
            clicker=clicker, clicker_groups=groups, approvers=approvers, requested_by=offer.requested_by,
            # Denying closes an offer; the two-person rule guards doing, not declining.
            two_person=self.config.remediation.two_person and not denying, service=offer.service,
        )  # fmt: skip

    # -- talking back -----------------------------------------------------------------------------------------------
    async def _tell(self, where: _Where, user: str, text: str) -> None:
        """Answer only the person who clicked (ephemeral: not stored, nobody else needs it)."""
        try:
            await self.client.chat_postEphemeral(channel=where.channel, user=user, text=text, thread_ts=where.thread_ts)
        except Exception as exc:
            log.warning("could not tell %s: %s (%s)", user, text, exc)

    async def _reply(self, where: _Where, key: str, text: str, extra: Sequence[Block] = ()) -> None:
        message = SlackMessage(text=text, blocks=(section(text), *extra))
        await self.deliverer.post(
            key=key, channel=where.channel, message=message, thread_ts=where.thread_ts or where.ts
        )

    async def _close(self, where: _Where, note: str, *, key: str) -> None:
        blocks = close_offer_blocks(where.blocks, note) if where.blocks else [context(note)]
        message = SlackMessage(text=note, blocks=tuple(blocks))
        await self.deliverer.post(key=key, channel=where.channel, message=message, update_ts=where.ts)

    async def _audit(self, actor: str, action: str, offer: OfferRecord, detail: dict[str, Any]) -> None:
        await asyncio.to_thread(
            self.store.append_audit, actor=actor, action=action, subject=f"service:{offer.service}",
            detail={"offer_id": offer.id, **detail},
        )  # fmt: skip


@dataclass(frozen=True)
class _Where:
    """The message a click came from: its channel, its ts, the thread it is in, and its blocks."""

    channel: str
    ts: str
    thread_ts: str | None
    blocks: list[Block]
