"""The rules of remediation, pure: which actions a diagnosis supports, who may approve, why a click lost.

The state machine of an offer (stored, see bot/store/tables.py):

    pending --approve (one conditional write)--> approved --> succeeded | failed | stale | dry_run
    pending --deny--> denied          pending --(expires_at passes)--> expired

Nothing here does IO: the approver's group membership and the clock are handed in.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.config import RemediationSettings, ServiceConfig
from bot.diagnosis import Diagnosis
from bot.store.records import OfferRecord


class ActionKind(StrEnum):
    RESTART = "restart"  # a new revision of the same template
    ROLLBACK = "rollback"  # 100 % of traffic to an earlier ready revision
    REDEPLOY = "redeploy"  # the template's image set back to the last healthy revision's


@dataclass(frozen=True)
class ProposedAction:
    kind: ActionKind
    target_revision: str | None = None
    target_image: str | None = None

    def describe(self, service: str) -> str:
        if self.kind is ActionKind.ROLLBACK:
            return f"roll {service} back to revision {self.target_revision}"
        if self.kind is ActionKind.REDEPLOY:
            return f"redeploy {service} with image {self.target_image}"
        return f"restart {service} (a new revision of the current template)"


def propose_actions(service: ServiceConfig, diagnosis: Diagnosis) -> list[ProposedAction]:
    """Return the actions that make sense for a diagnosed service; none unless it is mapped and `remediable`."""
    view = diagnosis.cloud_run
    if not service.remediable or service.cloud_run is None or view is None or not view.etag:
        return []
    actions = [ProposedAction(ActionKind.RESTART)]
    healthy = view.last_healthy_revision
    all_traffic_on_healthy = any(t.revision == healthy and t.percent == 100 for t in view.traffic)
    if healthy and healthy != view.failing_revision and not all_traffic_on_healthy:
        actions.append(ProposedAction(ActionKind.ROLLBACK, target_revision=healthy))
    image_change = next((c for c in view.changes if c.field.endswith("image") and c.before), None)
    if image_change is not None:
        actions.append(ProposedAction(ActionKind.REDEPLOY, target_revision=healthy, target_image=image_change.before))
    return actions


def approvers_for(service: ServiceConfig, settings: RemediationSettings) -> tuple[str, ...]:
    """Return who may approve actions on a service: its own list, else `[remediation] approvers`."""
    return service.approvers if service.approvers is not None else settings.approvers


def approver_groups(approvers: Collection[str]) -> list[str]:
    """Return the Slack user-group IDs among approvers (they start with S; user IDs with U or W)."""
    return [a for a in approvers if a.startswith("S")]


def click_refusal(
    *,
    clicker: str,
    clicker_groups: Collection[str],
    approvers: Collection[str],
    requested_by: str,
    two_person: bool,
    service: str,
) -> str | None:
    """Return why this person may not approve an action on `service`, or None when they may."""
    if clicker not in approvers and not any(group in approvers for group in clicker_groups):
        if not approvers:
            return f"Nobody may approve actions on {service}: `[remediation] approvers` is empty."
        return f"You are not an approver for {service}; ask one of them: {', '.join(_mention(a) for a in approvers)}."
    if two_person and clicker == requested_by:
        return "Two-person rule: you asked for this diagnosis, so someone else must approve the fix."
    return None


def lost_click_explanation(offer: OfferRecord, now: datetime) -> str:
    """Return why a click did not win the offer: decided before (by whom) or expired."""
    if offer.state in ("approved", "succeeded", "failed", "stale", "dry_run"):
        at = f" at {offer.decided_at:%H:%M} UTC" if offer.decided_at else ""
        return f"Already approved by <@{offer.decided_by}>{at}; it runs once."
    if offer.state == "denied":
        return f"Already denied by <@{offer.decided_by}>."
    if offer.state == "expired" or offer.expires_at <= now:
        return (
            f"This offer expired at {offer.expires_at:%H:%M} UTC. Ask for a fresh diagnosis: "
            f"`/staging diagnose {offer.service}`."
        )
    return "This offer is no longer open."


def over_rate_limit(actions_in_last_hour: int, max_per_hour: int) -> bool:
    """Return whether another action would exceed `max_actions_per_hour` (no restart loops)."""
    return actions_in_last_hour >= max_per_hour


def _mention(approver: str) -> str:
    return f"<!subteam^{approver}>" if approver.startswith("S") else f"<@{approver}>"
