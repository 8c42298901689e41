"""Remediation from the diagnosis thread: one approved click restarts a service exactly once; every refusal refuses.

The real bot under uvicorn, the Slack stand-in (clicks arrive as signed `block_actions`), the Cloud Run and Logging
stand-ins telling the demo story, and the sandbox staging that a completed restart really heals.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sandbox.cloud_scenarios import CloudSandbox, cloud_run_config_text, demo_cloud, serve_cloud_in_loop
from sandbox.servers import RunningServer
from sandbox.slack import SlackMessage, SlackWorkspace
from sandbox.staging import SandboxStaging
from tests.slack.conftest import CHANNEL, ONCALL, BotHarness, start_bot
from tests.slack.test_staging_command import block_text, reply_service

LEAD = "U0LEAD"  # an approver by name
PEER = "U0PEER"  # an approver through the S0SRE user group
STRANGER = "U0STRANGER"


def remediable(text: str) -> str:
    for name in ("api", "auth"):
        text = text.replace(f"[services.{name}]\n", f"[services.{name}]\nremediable = true\n", 1)
    return text


@contextlib.asynccontextmanager
async def bot_with_cloud(
    tmp_path: Path,
    workspace: SlackWorkspace,
    staging_server: tuple[SandboxStaging, RunningServer],
    remediation: str = "",
    database: str | None = None,
    sre: list[str] | None = None,
) -> AsyncIterator[tuple[BotHarness, CloudSandbox]]:
    sandbox, _server = staging_server
    workspace.usergroups["S0SRE"] = sre or [PEER]
    cloud = demo_cloud(now=datetime.now(UTC), staging=sandbox)
    config = cloud_run_config_text(["api", "auth", "frontend", "websocket"]) + (
        f'\n[remediation]\napprovers = ["{LEAD}", "S0SRE"]\n{remediation}'
    )
    async with (
        serve_cloud_in_loop(cloud) as endpoints,
        start_bot(tmp_path, workspace, staging_server, config, database=database, environ=endpoints.environ(),
                  edit_config=remediable) as bot,
    ):  # fmt: skip
        yield bot, cloud


async def diagnosis_thread(bot: BotHarness) -> dict[str, SlackMessage]:
    """Ask for a status and return the thread replies by service, once the diagnoses are in."""
    await bot.status()
    ws = bot.workspace
    await ws.wait_for(
        lambda: bool(ws.channel_messages(CHANNEL)) and len(ws.thread(CHANNEL, ws.channel_messages(CHANNEL)[0].ts)) == 3,
        20,
    )
    [main] = ws.channel_messages(CHANNEL)
    return {reply_service(m): m for m in ws.thread(CHANNEL, main.ts)}


def button(message: SlackMessage, action_id: str) -> dict[str, Any]:
    for block in message.blocks:
        for element in block.get("elements", []):
            if element.get("action_id") == action_id:
                return dict(element)
    raise AssertionError(f"no {action_id} button in {block_text(message.blocks)}")


async def click(bot: BotHarness, message: SlackMessage, action_id: str, user: str) -> None:
    answer = await bot.slack.click(
        action_id=action_id, value=button(message, action_id)["value"], user=user, channel=CHANNEL,
        message_ts=message.ts, thread_ts=message.thread_ts, blocks=message.blocks,
    )  # fmt: skip
    assert answer.status_code == 200


def told(ws: SlackWorkspace, user: str) -> list[str]:
    return [e.text for e in ws.ephemeral if e.user == user]


def audit_actions(bot: BotHarness, service: str) -> list[str]:
    return [e.action for e in reversed(bot.store.audit_entries(subject=f"service:{service}"))]


@pytest.fixture
async def remediation_bot(
    tmp_path: Path, workspace: SlackWorkspace, staging_server: tuple[SandboxStaging, RunningServer]
) -> AsyncIterator[tuple[BotHarness, CloudSandbox]]:
    async with bot_with_cloud(tmp_path, workspace, staging_server) as pair:
        yield pair


async def test_an_approvers_click_restarts_once_and_the_thread_shows_the_recovery(
    remediation_bot: tuple[BotHarness, CloudSandbox],
) -> None:
    bot, cloud = remediation_bot
    ws = bot.workspace
    replies = await diagnosis_thread(bot)
    auth = copy.deepcopy(replies["auth"])  # as a second approver still sees it, buttons and all
    restart = button(auth, "remediate:restart")
    assert restart["confirm"]["title"]["text"] == "Restart auth?"  # Slack asks before it sends the click
    assert "port_mismatch" in block_text(auth.blocks)
    assert "remediate:restart" not in str(replies["websocket"].blocks)  # the echo is offered nothing

    await click(bot, auth, "remediate:restart", LEAD)
    await ws.wait_for(lambda: any("is up again" in m.text for m in ws.thread(CHANNEL, auth.thread_ts or "")), 30)
    assert cloud.run.count("update_service") == 1
    assert bot.staging.is_healthy("auth")
    thread = [m.text for m in ws.thread(CHANNEL, auth.thread_ts or "")]
    assert any("approved: restart auth" in t for t in thread)
    assert any("is ready; probing auth" in t for t in thread)
    # The diagnosis reply now says who approved it, and its buttons are gone.
    edited = replies["auth"]
    assert edited is not None and "Approved by <@U0LEAD>" in block_text(edited.blocks)
    assert "remediate:restart" not in str(edited.blocks)

    # A second click on the same offer does nothing but say why.
    await click(bot, auth, "remediate:restart", PEER)
    await ws.wait_for(lambda: bool(told(ws, PEER)), 10)
    assert "Already approved by <@U0LEAD>" in told(ws, PEER)[0]
    assert cloud.run.count("update_service") == 1
    # The audit log tells the whole story, in order.
    story = audit_actions(bot, "auth")
    assert story[:7] == [
        "remediation.offered", "remediation.offered", "remediation.click", "remediation.approved",
        "cloud_run.update_service", "cloud_run.update_service.done", "remediation.succeeded",
    ]  # fmt: skip
    assert story[-2:] == ["remediation.click", "remediation.lost"]
    [action_run] = bot.store.recent_runs(kind="action")
    assert action_run.verdict == "succeeded" and action_run.requested_by == LEAD


async def test_refusals_do_nothing_and_say_why(remediation_bot: tuple[BotHarness, CloudSandbox]) -> None:
    bot, cloud = remediation_bot
    ws = bot.workspace
    replies = {name: copy.deepcopy(message) for name, message in (await diagnosis_thread(bot)).items()}
    await click(bot, replies["api"], "remediate:restart", STRANGER)
    await ws.wait_for(lambda: bool(told(ws, STRANGER)), 10)
    assert "You are not an approver for api" in told(ws, STRANGER)[0]
    # Deny closes the offers; a later click finds them decided.
    await click(bot, replies["api"], "remediate:deny", PEER)
    await ws.wait_for(
        lambda: "Denied by <@U0PEER>" in block_text((ws.find(CHANNEL, replies["api"].ts) or replies["api"]).blocks), 10
    )
    await click(bot, replies["api"], "remediate:restart", LEAD)
    await ws.wait_for(lambda: bool(told(ws, LEAD)), 10)
    assert "Already denied by <@U0PEER>" in told(ws, LEAD)[0]
    assert cloud.run.count("update_service") == 0
    assert "remediation.refused" in audit_actions(bot, "api") and "remediation.denied" in audit_actions(bot, "api")


@pytest.mark.parametrize(
    ("remediation", "clicker", "expected"),
    [
        ("expiry_minutes = 0.001\n", LEAD, "This offer expired"),  # 60 ms: gone before anyone clicks
        # ONCALL asked for the status and is an approver (through S0SRE here): someone else must approve.
        ("two_person = true\n", ONCALL, "Two-person rule"),
        ("max_actions_per_hour = 0\n", LEAD, "no restart loops"),
    ],
)
async def test_expiry_two_person_and_rate_limit(
    tmp_path: Path, workspace: SlackWorkspace, staging_server: tuple[SandboxStaging, RunningServer],
    remediation: str, clicker: str, expected: str,
) -> None:  # fmt: skip
    async with bot_with_cloud(tmp_path, workspace, staging_server, remediation, sre=[PEER, ONCALL]) as (bot, cloud):
        replies = await diagnosis_thread(bot)
        offer = bot.store.get_offer(int(button(replies["auth"], "remediate:restart")["value"]))
        assert offer is not None
        if "expiry" in remediation:  # wait until the offer's own expiry has passed
            await bot.workspace.wait_for(lambda: datetime.now(UTC) > offer.expires_at, 5)
        await click(bot, replies["auth"], "remediate:restart", clicker)
        await bot.workspace.wait_for(lambda: bool(told(bot.workspace, clicker)), 10)
        assert expected in told(bot.workspace, clicker)[0]
        assert cloud.run.count("update_service") == 0


async def test_a_stale_etag_changes_nothing_and_offers_a_fresh_diagnosis(
    remediation_bot: tuple[BotHarness, CloudSandbox],
) -> None:
    bot, cloud = remediation_bot
    ws = bot.workspace
    replies = {name: copy.deepcopy(message) for name, message in (await diagnosis_thread(bot)).items()}
    # Someone deploys auth by hand after the diagnosis: its etag moves on.
    for service in cloud.run.services.values():
        if service["name"].endswith("/auth"):
            service["etag"] = '"deployed-by-hand"'
    await click(bot, replies["auth"], "remediate:restart", LEAD)
    thread_ts = replies["auth"].thread_ts or ""
    await ws.wait_for(lambda: any("changed since the diagnosis" in m.text for m in ws.thread(CHANNEL, thread_ts)), 20)
    stale = next(m for m in ws.thread(CHANNEL, thread_ts) if "changed since the diagnosis" in m.text)
    assert not bot.staging.is_healthy("auth")
    assert bot.store.get_offer(int(button(replies["auth"], "remediate:restart")["value"])).state == "stale"  # type: ignore[union-attr]
    # "Diagnose again" posts a fresh diagnosis, with fresh offers, in the same thread.
    await click(bot, stale, "diagnose:again", LEAD)
    await ws.wait_for(
        lambda: sum("port_mismatch" in block_text(m.blocks) for m in ws.thread(CHANNEL, thread_ts)) == 2, 20
    )


async def test_a_failed_update_operation_is_reported(remediation_bot: tuple[BotHarness, CloudSandbox]) -> None:
    bot, cloud = remediation_bot
    cloud.run.failing_operations.add("auth")
    replies = await diagnosis_thread(bot)
    await click(bot, replies["auth"], "remediate:restart", LEAD)
    thread_ts = replies["auth"].thread_ts or ""
    await bot.workspace.wait_for(
        lambda: any("Cloud Run refused the update" in m.text for m in bot.workspace.thread(CHANNEL, thread_ts)), 20
    )
    assert "remediation.failed" in audit_actions(bot, "auth")
    assert not bot.staging.is_healthy("auth")


async def test_dry_run_does_everything_but_the_write(
    tmp_path: Path, workspace: SlackWorkspace, staging_server: tuple[SandboxStaging, RunningServer]
) -> None:
    async with bot_with_cloud(tmp_path, workspace, staging_server, "dry_run = true\n") as (bot, cloud):
        replies = await diagnosis_thread(bot)
        await click(bot, replies["auth"], "remediate:restart", LEAD)
        thread_ts = replies["auth"].thread_ts or ""
        await bot.workspace.wait_for(
            lambda: any("Dry run" in m.text for m in bot.workspace.thread(CHANNEL, thread_ts)), 20
        )
        assert cloud.run.count("update_service") == 0
        assert "cloud_run.update_service.dry_run" in audit_actions(bot, "auth")


async def test_an_offer_survives_a_bot_restart(
    tmp_path: Path, workspace: SlackWorkspace, staging_server: tuple[SandboxStaging, RunningServer]
) -> None:
    database = f"sqlite:///{tmp_path}/shared.sqlite3"
    async with bot_with_cloud(tmp_path, workspace, staging_server, database=database) as (bot, _cloud):
        replies = await diagnosis_thread(bot)
    workspace.ephemeral.clear()
    async with bot_with_cloud(tmp_path, workspace, staging_server, database=database) as (bot, cloud):
        await click(bot, replies["auth"], "remediate:restart", LEAD)
        thread_ts = replies["auth"].thread_ts or ""
        await bot.workspace.wait_for(
            lambda: any("is up again" in m.text for m in bot.workspace.thread(CHANNEL, thread_ts)), 30
        )
        assert cloud.run.count("update_service") == 1
