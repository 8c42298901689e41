"""`stagebot demo`: the whole product on a laptop, no Slack and no cloud account.

Starts, on 127.0.0.1: a failing staging (the API down on a memory limit, auth down on a port mismatch, the WebSocket
refusing as the API's echo, the frontend up, reports slow), Cloud Run and Cloud Logging stand-ins that tell that
story, and a Slack workspace stand-in. Then it starts the real bot in HTTP mode against them, with a SQLite store,
and plays a conversation through correctly signed requests, rendering the channel as a person reads it:

  1. on-call asks `/staging status`: the table, then a diagnosis per down service in the thread;
  2. an approver clicks Restart on auth, then on the API: each comes back, exactly once, audited;
  3. `/staging status` again: green;
  4. `/e2e run p1`: the staging suite passes; `/e2e run tokens`: green but every test skipped, so untrusted.

Exit 0 when every step showed what it should; 1 (naming the step) when one did not.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from slack_sdk.web.async_client import AsyncWebClient

import sandbox
import suites
from bot.app import assemble_bot
from bot.commands.base import Command, CommandContext
from bot.config import load_config
from bot.slack.server import build_asgi_app, database_check
from bot.store import open_store
from sandbox.cloud_scenarios import cloud_run_config_text, demo_cloud, serve_cloud_in_loop
from sandbox.servers import serve_in_loop
from sandbox.slack import BOT_USER_ID, SlackMessage, SlackWorkspace
from sandbox.slack_requests import SlackSender
from sandbox.staging import broken_staging, sandbox_config_text
from sandbox.transcript import Style, render_blocks, render_message, render_thread

CHANNEL = "C0STAGING"
ONCALL = "U0ANA"
APPROVER = "U0LEE"
NAMES = {ONCALL: "ana (on-call)", APPROVER: "lee (approver)", BOT_USER_ID: "stagebot"}
# Demo-only credentials: the stand-ins accept anything; these never leave 127.0.0.1.
SIGNING_SECRET = "demo-signing-secret-not-a-real-one"
BOT_TOKEN = "xoxb-demo-0000-notarealtoken"
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(config=None)
    parser.description = (
        "Play the whole story against a local sandbox. With --config PATH the generated config (and the demo's "
        "SQLite store beside it) is kept there instead of in a temporary folder."
    )
    parser.add_argument("--keep", action="store_true", help="leave everything running afterwards and print the URLs")


def demo_config_text(staging_url: str, staging_ws: str) -> str:
    """Return the demo's config: the sandbox services on Cloud Run, approvals, and the two tiers."""
    text = sandbox_config_text(staging_url, staging_ws, environment="staging (sandbox)")
    for name in ("api", "auth"):
        text = text.replace(f"[services.{name}]\n", f"[services.{name}]\nremediable = true\n", 1)
    staging_suite = Path(suites.__file__).parent / "staging"
    token_suite = Path(sandbox.__file__).parent / "demo_suite"
    return (
        text
        + cloud_run_config_text(["api", "auth", "frontend", "websocket"])
        + f"""
[remediation]
approvers = ["{APPROVER}"]
two_person = true
max_actions_per_hour = 3

[tiers.p1]
description = "Critical paths: every health endpoint, sign-in, the agent conversation"
paths = ["."]
root = "{staging_suite}"
timeout_s = 120
depends_on = ["api", "auth", "websocket"]
impact = "$120K MRR at risk"

[tiers.tokens]
description = "Token flows (need STAGING_TEST_JWT_TOKEN)"
paths = ["."]
root = "{token_suite}"
timeout_s = 60
depends_on = ["auth"]
"""
    )


@dataclass
class Story:
    """What the demo checked, step by step."""

    problems: list[str] = field(default_factory=list)

    def expect(self, step: str, condition: bool, what: str) -> None:
        if not condition:
            self.problems.append(f"{step}: {what}")


class DemoPlayer:
    """Play the conversation against the running bot and render it."""

    def __init__(self, context: CommandContext, workspace: SlackWorkspace, slack: SlackSender) -> None:
        self.context = context
        self.workspace = workspace
        self.slack = slack
        self.style = Style(colour=context.is_terminal)
        self.story = Story()

    def say(self, text: str = "") -> None:
        self.context.out(text)

    def step(self, title: str) -> None:
        self.say()
        self.say(self.style.bold(f"━━ {title} " + "━" * max(0, 100 - len(title))))

    async def command(self, user: str, command: str, text: str) -> str:
        self.say(self.style.dim(f"{NAMES[user]} types:") + f" {command} {text}")
        answer = await self.slack.command(command, text, user=user, channel=CHANNEL)
        ack = answer.text if answer.status_code == 200 else f"HTTP {answer.status_code}"
        self.say(self.style.dim(f"  (only visible to {NAMES[user].split()[0]}) {ack}"))
        return ack

    async def wait(self, predicate: Callable[[], bool], step: str, what: str, timeout_s: float = 60) -> bool:
        try:
            await self.workspace.wait_for(predicate, timeout_s)
        except TimeoutError:
            self.story.expect(step, False, f"{what} (not seen within {timeout_s:g}s)")
            return False
        return True

    def messages(self) -> list[SlackMessage]:
        return self.workspace.channel_messages(CHANNEL)

    def thread(self, message: SlackMessage) -> list[SlackMessage]:
        return self.workspace.thread(CHANNEL, message.ts)

    def show(self, message: SlackMessage, replies: list[SlackMessage] | None = None) -> None:
        self.say()
        lines = (
            render_thread(message, replies, style=self.style, names=NAMES)
            if replies
            else render_message(message, style=self.style, names=NAMES)
        )
        for line in lines:
            self.say(line)

    def reply_about(self, parent: SlackMessage, service: str) -> SlackMessage | None:
        return next((m for m in self.thread(parent) if f"*{service}*" in _all_text(m)), None)

    async def click(self, message: SlackMessage, action_id: str, user: str) -> None:
        element = next(e for b in message.blocks for e in b.get("elements", []) if e.get("action_id") == action_id)
        confirm = element.get("confirm", {})
        self.say()
        self.say(self.style.dim(f"{NAMES[user]} clicks") + f" [ {element['text']['text']} ]")
        if confirm:
            self.say(
                self.style.dim(f"  Slack asks: {confirm['title']['text']} {confirm['text']['text']}")
                + "  [ Yes, do it ]"
            )
        await self.slack.click(
            action_id=action_id, value=element["value"], user=user, channel=CHANNEL, message_ts=message.ts,
            thread_ts=message.thread_ts, blocks=[dict(b) for b in message.blocks],
        )  # fmt: skip


async def _play_story(player: DemoPlayer, staging_healthy: Callable[[str], bool], updates: Callable[[], int]) -> None:
    story = player.story
    # 1. The status table and the diagnosis thread.
    player.step("1. On-call asks what is wrong")
    await player.command(ONCALL, "/staging", "status")
    if not await player.wait(lambda: bool(player.messages()) and len(player.thread(player.messages()[0])) >= 3,
                             "status", "the status message and three thread replies"):  # fmt: skip
        return
    status = player.messages()[0]
    player.show(status, player.thread(status))
    auth, api, websocket = (player.reply_about(status, name) for name in ("auth", "api", "websocket"))
    story.expect("status", "3 down" in status.text, f"three services down, saw {status.text!r}")
    auth_text, api_text = _all_text(auth) if auth else "", _all_text(api) if api else ""
    websocket_text = _all_text(websocket) if websocket else ""
    port_evidence = "port_mismatch" in auth_text and "PORT=8080" in auth_text
    memory_evidence = "out_of_memory" in api_text and "Memory limit of 512 MiB exceeded" in api_text
    story.expect("diagnosis", port_evidence, "auth's reply names the port mismatch with the log line")
    story.expect("diagnosis", memory_evidence, "the API's reply names the memory limit with the log line")
    story.expect("diagnosis", "caused by *api*" in websocket_text, "the WebSocket's reply says it is the API's echo")
    if auth is None or api is None:
        return

    # 2. The approver restarts auth, then the API.
    for service, reply in (("auth", auth), ("api", api)):
        player.step(f"2. An approver restarts {service} from the thread")
        before = len(player.thread(status))
        await player.click(reply, "remediate:restart", APPROVER)
        back = f"{service} is up again"

        def recovered(back: str = back) -> bool:
            return any(back in m.text for m in player.thread(status))

        if not await player.wait(recovered, "restart", f"{service} comes back after the restart"):
            return
        for message in player.thread(status)[before:]:
            player.show(message)
        edited = player.workspace.find(CHANNEL, reply.ts)
        if edited is not None:
            player.say()
            player.say(player.style.dim(f"   ({service}'s diagnosis reply now ends:)"))
            for line in render_blocks(edited.blocks[-1:], style=player.style, names=NAMES):
                player.say("     " + line)
        story.expect("restart", staging_healthy(service), f"{service} is healthy after its restart")
    story.expect("restart", updates() == 2, f"exactly one Cloud Run update per approved click, saw {updates()}")

    # 3. Green again.
    player.step("3. On-call checks again")
    await player.command(ONCALL, "/staging", "status")
    if await player.wait(lambda: len(player.messages()) >= 2, "status again", "a second status message"):
        again = player.messages()[1]
        player.show(again)
        story.expect("status again", "0 down" in again.text, f"nothing down after the fixes, saw {again.text!r}")

    # 4. Test tiers with honest verdicts.
    for number, (tier, verdict) in enumerate((("p1", "passed"), ("tokens", "UNTRUSTED")), start=4):
        player.step(f"{number}. A team runs the {tier} tier")
        count = len(player.messages())
        await player.command(ONCALL, "/e2e", f"run {tier}")

        def ended(count: int = count) -> bool:
            messages = player.messages()
            return (
                len(messages) > count and "running" not in messages[count].text and bool(player.thread(messages[count]))
            )

        if not await player.wait(ended, f"e2e {tier}", f"{tier}'s verdict and details", 180):
            continue
        message = player.messages()[count]
        player.show(message, player.thread(message))
        story.expect(f"e2e {tier}", verdict in message.text, f"{tier} ends {verdict}, saw {message.text!r}")
    tokens = player.messages()[-1] if player.messages() else None
    story.expect("e2e tokens", tokens is not None and "`skipped`" in _all_text(tokens),
                 "the untrusted verdict names the skipped tests")  # fmt: skip


def _all_text(message: SlackMessage) -> str:
    parts: list[str] = [message.text]

    def walk(value: Any) -> None:
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)

    walk(message.blocks)
    return "\n".join(parts)


async def _play(context: CommandContext, config_path: Path, keep: bool) -> int:
    folder = config_path.parent
    # Everything below talks to 127.0.0.1 only; slack-sdk would route even that through a proxy (it ignores NO_PROXY).
    for variable in _PROXY_VARIABLES:
        os.environ.pop(variable, None)
    staging = broken_staging()
    cloud = demo_cloud(now=datetime.now(UTC), staging=staging)
    workspace = SlackWorkspace()
    async with (
        serve_in_loop(staging.app()) as staging_server,
        serve_cloud_in_loop(cloud) as endpoints,
        serve_in_loop(workspace.app()) as slack_server,
    ):
        workspace.base_url = slack_server.base_url
        config_path.write_text(demo_config_text(staging_server.base_url, staging_server.ws_url), encoding="utf-8")
        config = load_config(config_path, context.environ)
        database = f"sqlite:///{folder / 'demo.sqlite3'}"
        store = await asyncio.to_thread(open_store, database, {}, config.store)
        base = staging_server.base_url
        bot_environ = {
            **{k: v for k, v in context.environ.items() if k not in _PROXY_VARIABLES},
            **endpoints.environ(),
            # The staging suite's targets: not secrets, so not in the tier's `env` (whose values are redacted).
            "STAGING_HEALTH_URLS": f"api={base}/api/health,auth={base}/auth/health,frontend={base}/frontend/health",
            "STAGING_AUTH_URL": f"{base}/auth",
            "STAGING_WS_URL": f"{staging_server.ws_url}/websocket/ws",
            "STAGING_TIMEOUT_S": "10",
        }
        bot_environ.pop("STAGING_TEST_JWT_TOKEN", None)  # the tokens tier's story: the token is missing
        client = AsyncWebClient(token=BOT_TOKEN, base_url=f"{slack_server.base_url}/api/")
        running = await assemble_bot(config, store, client, SIGNING_SECRET, environ=bot_environ, poll_interval_s=0.3)
        asgi = build_asgi_app(running.app, running.lifecycle, database_check(store.engine), SIGNING_SECRET)
        try:
            async with serve_in_loop(asgi, lifespan=True) as bot_server, httpx.AsyncClient(timeout=30) as http:
                slack = SlackSender(http, f"{bot_server.base_url}/slack/events", SIGNING_SECRET, workspace)
                player = DemoPlayer(context, workspace, slack)
                player.say(
                    player.style.bold("stagebot demo") + f": a failing staging on {base}, Cloud Run and Slack "
                    f"stand-ins, the real bot on {bot_server.base_url} (store: {folder / 'demo.sqlite3'})"
                )
                await _play_story(player, staging.is_healthy, lambda: cloud.run.count("update_service"))
                _show_audit(player, store.audit_entries(subject="service:auth", limit=20))
                code = _verdict(player)
                if keep:
                    await _keep_running(player, {
                        "bot (Slack events)": f"{bot_server.base_url}/slack/events",
                        "bot health": f"{bot_server.base_url}/healthz",
                        "Slack Web API stand-in": f"{slack_server.base_url}/api/",
                        "sandbox staging": f"{base}/{{service}}/health",
                        "Cloud Run stand-in": endpoints.run_url,
                        "Cloud Logging stand-in": endpoints.logging_url,
                    }, config_path)  # fmt: skip
                return code
        finally:
            store.close()


def _show_audit(player: DemoPlayer, newest_first: list[Any]) -> None:
    player.step("The audit log for auth (stagebot audit --service auth)")
    for entry in reversed(newest_first):
        player.say(f"  {entry.at:%H:%M:%S}  {NAMES.get(entry.actor, entry.actor):<15} {entry.action}")


def _verdict(player: DemoPlayer) -> int:
    player.say()
    if player.story.problems:
        player.say(player.style.bold("The demo did not go as scripted:"))
        for problem in player.story.problems:
            player.say(f"  - {problem}")
        return 1
    player.say(
        player.style.bold("Demo complete: ") + "every failure diagnosed with its evidence, two approved restarts "
        "(one Cloud Run update each), green again, one honest pass and one untrusted green."
    )
    return 0


async def _keep_running(player: DemoPlayer, urls: dict[str, str], config_path: Path) -> None:
    player.say()
    player.say(player.style.bold("Everything keeps running (Ctrl-C to stop):"))
    for label, url in urls.items():
        player.say(f"  {label:<24} {url}")
    player.say(f"  {'config':<24} {config_path}")
    player.say(f"  {'signing secret':<24} {SIGNING_SECRET} (sign requests with sandbox/slack_requests.py)")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def _run(args: argparse.Namespace, context: CommandContext) -> int:
    if args.config:
        config_path = Path(args.config)
        config_path.parent.mkdir(parents=True, exist_ok=True)
        return asyncio.run(_play(context, config_path, args.keep))
    with tempfile.TemporaryDirectory(prefix="stagebot-demo-") as temporary, contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(_play(context, Path(temporary) / "stagebot.toml", args.keep))
    return 130


COMMAND = Command(add_arguments=_add_arguments, run=_run)
