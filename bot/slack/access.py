"""Who may do what, from `[slack]`: the decision is pure; group membership is looked up at the edge."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection

from bot.config import Config, SlackSettings

log = logging.getLogger(__name__)


def channel_refusal(settings: SlackSettings, channel: str) -> str | None:
    """Return why this channel may not use the bot, or None when it may."""
    if settings.allowed_channels and channel not in settings.allowed_channels:
        return "stagebot is not enabled in this channel. Ask in one of the team's staging channels."
    return None


def tier_refusal(settings: SlackSettings, user: str, user_groups: Collection[str]) -> str | None:
    """Return why this user may not run tiers, or None when they may (no lists configured: everyone may)."""
    if not settings.allowed_users and not settings.allowed_groups:
        return None
    if user in settings.allowed_users or any(group in user_groups for group in settings.allowed_groups):
        return None
    return "You are not allowed to run test tiers here: ask someone in the allowed users or groups of `[slack]`."


GroupMembers = Callable[[str], Awaitable[Collection[str]]]


class GroupDirectory:
    """Which of the configured user groups a user is in, from `usergroups.users.list`.

    The bot keeps the cache warm from the background (`refresh`, every `refresh_s`), so the ack path reads it
    without calling Slack (a Web API call there could blow Slack's 3 s budget). Only a cold cache, right after
    start, is fetched on demand, bounded by `fetch_timeout_s`; a group that cannot be read counts as no members.
    """

    def __init__(
        self,
        members_of: GroupMembers,
        ttl_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        fetch_timeout_s: float = 1.5,
    ) -> None:
        self._members_of = members_of
        self._ttl_s = ttl_s
        self._clock = clock
        self._fetch_timeout_s = fetch_timeout_s
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}

    async def refresh(self, groups: Collection[str]) -> None:
        """Read the members of every group now (the background keeps the cache warm with this)."""
        for group in groups:
            try:
                members = frozenset(await self._members_of(group))
            except Exception as exc:  # keep what we had: a Slack hiccup must not lock approvers out
                log.warning("could not read user group %s: %s", group, exc)
                continue
            self._cache[group] = (self._clock(), members)

    async def groups_of(self, user: str, groups: Collection[str]) -> set[str]:
        found: set[str] = set()
        for group in groups:
            cached = self._cache.get(group)
            if cached is None or self._clock() - cached[0] > self._ttl_s:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.refresh([group]), self._fetch_timeout_s)
                cached = self._cache.get(group)
            if cached is not None and user in cached[1]:
                found.add(group)
        return found


def groups_to_watch(config: Config) -> set[str]:
    """Return every user group a decision may need: tier runners and approvers (user-group IDs start with S)."""
    approvers = set(config.remediation.approvers)
    for service in config.services.values():
        approvers |= set(service.approvers or ())
    return set(config.slack.allowed_groups) | {a for a in approvers if a.startswith("S")}
