"""Who may do what: the pure rules, and the user-group cache that keeps Slack calls off the ack path."""

from __future__ import annotations

import asyncio

from bot.config import SlackSettings
from bot.slack.access import GroupDirectory, channel_refusal, tier_refusal


def test_channel_and_tier_rules() -> None:
    open_to_all = SlackSettings()
    assert channel_refusal(open_to_all, "C1") is None and tier_refusal(open_to_all, "U1", set()) is None
    locked = SlackSettings(allowed_channels=("C1",), allowed_users=("U1",), allowed_groups=("S1",))
    assert channel_refusal(locked, "C1") is None
    assert "not enabled in this channel" in (channel_refusal(locked, "C2") or "")
    assert tier_refusal(locked, "U1", set()) is None
    assert tier_refusal(locked, "U2", {"S1"}) is None
    assert "not allowed to run test tiers" in (tier_refusal(locked, "U2", {"S9"}) or "")


class Directory:
    """A user-group directory answering like usergroups.users.list: handed in, as the bot hands in the real one."""

    def __init__(self) -> None:
        self.members = {"S1": ["U1"], "S2": ["U2"]}
        self.calls: list[str] = []
        self.delay_s = 0.0
        self.broken = False

    async def members_of(self, group: str) -> list[str]:
        self.calls.append(group)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.broken:
            raise ConnectionError("slack is down")
        return self.members[group]


async def test_a_warm_cache_answers_without_asking_slack() -> None:
    directory = Directory()
    groups = GroupDirectory(directory.members_of)
    await groups.refresh(["S1", "S2"])
    assert directory.calls == ["S1", "S2"]
    assert await groups.groups_of("U1", ["S1", "S2"]) == {"S1"}
    assert await groups.groups_of("U2", ["S1", "S2"]) == {"S2"}
    assert directory.calls == ["S1", "S2"]  # no call on the ack path


async def test_a_cold_cache_and_a_slow_slack_are_bounded() -> None:
    directory = Directory()
    directory.delay_s = 5
    groups = GroupDirectory(directory.members_of, fetch_timeout_s=0.05)
    started = asyncio.get_running_loop().time()
    assert await groups.groups_of("U1", ["S1"]) == set()  # unknown in time: not a member, and no crash
    assert asyncio.get_running_loop().time() - started < 1


async def test_a_failed_refresh_keeps_what_was_known() -> None:
    directory = Directory()
    groups = GroupDirectory(directory.members_of, ttl_s=0)
    await groups.refresh(["S1"])
    directory.broken = True
    await groups.refresh(["S1"])
    assert await groups.groups_of("U1", ["S1"]) == {"S1"}
