"""Who may do what, from `[slack]`: the decision is pure; group membership is looked up at the edge."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection

from bot.config import SlackSettings


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
    """Which of the configured user groups a user is in, from `usergroups.users.list`, cached for a minute."""

    def __init__(self, members_of: GroupMembers, ttl_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self._members_of = members_of
        self._ttl_s = ttl_s
        self._clock = clock
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}

    async def groups_of(self, user: str, groups: Collection[str]) -> set[str]:
        found: set[str] = set()
        for group in groups:
            cached = self._cache.get(group)
            if cached is None or self._clock() - cached[0] > self._ttl_s:
                members = frozenset(await self._members_of(group))
                self._cache[group] = (self._clock(), members)
                cached = self._cache[group]
            if user in cached[1]:
                found.add(group)
        return found
