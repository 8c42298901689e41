"""Carry out an approved action on Cloud Run, once, and watch the service come back.

The update sends the etag stored with the offer: if the service changed since the diagnosis, Cloud Run answers 409
and nothing is done (`stale`). After an accepted update the executor waits for the new revision to be ready and
for the service's own probe to turn green, or reports a failure at `recovery_timeout_s`. Every call and outcome
goes to the audit log.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.cloud.faults import CloudError, FaultKind
from bot.cloud.models import ServiceChange, TrafficTarget
from bot.cloud.run import CloudRun
from bot.config import Config
from bot.remediation.policy import ActionKind
from bot.store import Store
from bot.store.records import OfferRecord
from probes import ServiceState, StatusReport

Progress = Callable[[str], Awaitable[None]]
StatusCheck = Callable[..., Awaitable[StatusReport]]


@dataclass(frozen=True)
class ActionOutcome:
    outcome: str  # succeeded | failed | stale | dry_run
    summary: str  # one line for the thread
    detail: dict[str, Any] = field(default_factory=dict)


def change_for(offer: OfferRecord, token: str) -> ServiceChange:
    """Return the Cloud Run change an offer stands for (pure)."""
    kind = ActionKind(offer.action)
    if kind is ActionKind.ROLLBACK:
        return ServiceChange(traffic=(TrafficTarget(percent=100, revision=offer.target_revision),))
    if kind is ActionKind.REDEPLOY:
        return ServiceChange(image=offer.target_image)
    return ServiceChange(restart_token=token)


class RemediationExecutor:
    """Execute approved offers through the Cloud Run adapter."""

    def __init__(
        self,
        config: Config,
        store: Store,
        cloud_run_for: Callable[[str], CloudRun],
        check_status: StatusCheck,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        poll_interval_s: float = 2.0,
    ) -> None:
        self.config = config
        self.store = store
        self.cloud_run_for = cloud_run_for
        self.check_status = check_status
        self.clock = clock
        self.poll_interval_s = poll_interval_s

    async def execute(self, offer: OfferRecord, actor: str, progress: Progress) -> ActionOutcome:
        """Apply the offer's action, then wait for the recovery; never raise for a Cloud Run fault."""
        service = self.config.services[offer.service]
        ref = service.cloud_run
        if ref is None:  # offers are only made for mapped services; a config change since may have removed it
            return await self._end(offer, actor, ActionOutcome("failed", f"{offer.service} has no Cloud Run mapping"))
        change = change_for(offer, token=f"{self.clock():%Y%m%d-%H%M%S}-{offer.id}")
        request = {"offer_id": offer.id, "action": offer.action, "etag": offer.etag, "service": ref.resource_name,
                   "target_revision": offer.target_revision, "target_image": offer.target_image}  # fmt: skip
        if self.config.remediation.dry_run:
            await self._audit(actor, "cloud_run.update_service.dry_run", offer, request)
            return await self._end(
                offer, actor, ActionOutcome("dry_run", f"Dry run: would {offer.action} {offer.service}; nothing sent.")
            )
        await self._audit(actor, "cloud_run.update_service", offer, request)
        run = self.cloud_run_for(ref.project)
        try:
            updated = await run.update_service(ref, change, etag=offer.etag or "")
        except CloudError as exc:
            if exc.kind is FaultKind.CONFLICT:
                outcome = ActionOutcome(
                    "stale", f"{offer.service} changed since the diagnosis (its etag moved on): nothing was done.",
                    {"error": exc.message},
                )  # fmt: skip
            else:
                outcome = ActionOutcome(
                    "failed", f"Cloud Run refused the update: {exc.message}", {"error": exc.message}
                )
            return await self._end(offer, actor, outcome)
        revision = updated.latest_created
        await self._audit(actor, "cloud_run.update_service.done", offer, {"revision": revision, "etag": updated.etag})
        if change.touches_template:
            await progress(
                f":hourglass_flowing_sand: Update accepted: new revision `{revision}`; waiting for it to be ready…"
            )
        else:
            await progress(
                f":hourglass_flowing_sand: Traffic moved to `{offer.target_revision}`; probing {offer.service}…"
            )
        return await self._end(offer, actor, await self._watch_recovery(offer, run, revision, change, progress))

    async def _watch_recovery(
        self, offer: OfferRecord, run: CloudRun, revision: str | None, change: ServiceChange, progress: Progress
    ) -> ActionOutcome:
        service = self.config.services[offer.service]
        assert service.cloud_run is not None
        deadline = time.monotonic() + self.config.remediation.recovery_timeout_s
        announced_ready = False
        last_error = ""
        while True:
            ready = True
            if change.touches_template:
                info = await _quietly(run.get_service(service.cloud_run))
                ready = info is not None and info.is_ready and info.latest_ready == revision
                if ready and not announced_ready:
                    announced_ready = True
                    await progress(f":white_check_mark: Revision `{revision}` is ready; probing {offer.service}…")
            if ready:
                report = await self.check_status(self.config, only={offer.service})
                status = report.services[0]
                if status.state is not ServiceState.DOWN:
                    latency = f"{status.latency_ms:,.0f} ms" if status.latency_ms is not None else "-"
                    return ActionOutcome(
                        "succeeded", f":large_green_circle: {offer.service} is {status.state.value} again "
                        f"({status.status_code or 'ok'}, {latency}) on revision `{revision or offer.target_revision}`.",
                        {"revision": revision, "state": status.state.value},
                    )  # fmt: skip
                last_error = status.error or "down"
            if time.monotonic() >= deadline:
                waited = self.config.remediation.recovery_timeout_s
                why = f"the probe still says: {last_error}" if ready else f"revision `{revision}` is not ready"
                return ActionOutcome(
                    "failed", f"{offer.service} is not healthy {waited:g}s after the {offer.action}: {why}.",
                    {"revision": revision, "error": last_error},
                )  # fmt: skip
            await asyncio.sleep(self.poll_interval_s)

    async def _end(self, offer: OfferRecord, actor: str, outcome: ActionOutcome) -> ActionOutcome:
        await asyncio.to_thread(
            self.store.finish_offer,
            offer.id,
            outcome=outcome.outcome,
            detail={"summary": outcome.summary, **outcome.detail},
        )
        await self._audit(
            actor, f"remediation.{outcome.outcome}", offer, {"summary": outcome.summary, **outcome.detail}
        )
        return outcome

    async def _audit(self, actor: str, action: str, offer: OfferRecord, detail: dict[str, Any]) -> None:
        await asyncio.to_thread(
            self.store.append_audit, actor=actor, action=action, subject=f"service:{offer.service}",
            detail={"offer_id": offer.id, **detail},
        )  # fmt: skip


async def _quietly(call: Awaitable[Any]) -> Any:
    """Await a read; a fault while polling is one missed look, not the end of the watch."""
    try:
        return await call
    except CloudError:
        return None
