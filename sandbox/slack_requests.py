"""Requests as Slack sends them to a bot: signed slash commands and button clicks.

The signature is Slack's: `v0=` + hex HMAC-SHA256(signing secret, `v0:{timestamp}:{raw body}`)
(https://api.slack.com/authentication/verifying-requests-from-slack). The demo and the tests drive the real bot
through these, so what reaches it is byte for byte what Slack would send.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import httpx

from sandbox.slack import TEAM_ID, SlackWorkspace

_trigger = itertools.count(1)


def sign(signing_secret: str, timestamp: str, body: bytes) -> str:
    """Return the `X-Slack-Signature` value for a body sent at `timestamp`."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(signing_secret: str, body: bytes, *, timestamp: float | None = None) -> dict[str, str]:
    stamp = str(int(time.time() if timestamp is None else timestamp))
    return {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": stamp,
        "x-slack-signature": sign(signing_secret, stamp, body),
    }


def command_payload(
    command: str, text: str, *, user: str, channel: str, response_url: str, user_name: str = ""
) -> dict[str, str]:
    """Return the form fields of a slash command invocation."""
    return {
        "token": "legacy-verification-token-unused",
        "team_id": TEAM_ID,
        "team_domain": "sandbox",
        "channel_id": channel,
        "channel_name": channel.lower(),
        "user_id": user,
        "user_name": user_name or user.lower(),
        "command": command,
        "text": text,
        "api_app_id": "A0STAGEBOT",
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": f"{next(_trigger)}.{int(time.time())}.sandbox",
    }


def block_actions_payload(
    *, action_id: str, value: str, user: str, channel: str, message_ts: str, response_url: str,
    block_id: str = "actions", thread_ts: str | None = None, blocks: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Return the JSON payload of a button click (`block_actions`), as Slack posts it in `payload=`."""
    message: dict[str, Any] = {"ts": message_ts, "type": "message"}
    if thread_ts:
        message["thread_ts"] = thread_ts
    if blocks is not None:
        message["blocks"] = blocks  # Slack sends the clicked message's blocks with the click
    return {
        "type": "block_actions",
        "team": {"id": TEAM_ID, "domain": "sandbox"},
        "user": {"id": user, "username": user.lower(), "team_id": TEAM_ID},
        "api_app_id": "A0STAGEBOT",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": False},
        "trigger_id": f"{next(_trigger)}.{int(time.time())}.sandbox",
        "channel": {"id": channel, "name": channel.lower()},
        "message": message,
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id,
                "value": value,
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }


class SlackSender:
    """Send signed requests to a bot's `/slack/events`, as Slack would; answers come back as httpx responses."""

    def __init__(
        self, client: httpx.AsyncClient, events_url: str, signing_secret: str, workspace: SlackWorkspace
    ) -> None:
        self.client = client
        self.events_url = events_url
        self.signing_secret = signing_secret
        self.workspace = workspace

    async def post(
        self, body: bytes, *, headers: Mapping[str, str] | None = None, timestamp: float | None = None
    ) -> httpx.Response:
        signed = signed_headers(self.signing_secret, body, timestamp=timestamp)
        return await self.client.post(self.events_url, content=body, headers={**signed, **(headers or {})})

    async def command(
        self, command: str, text: str, *, user: str, channel: str, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """Invoke a slash command; its `response_url` points at the workspace stand-in."""
        fields = command_payload(
            command, text, user=user, channel=channel, response_url=self.workspace.response_url_for(channel, user)
        )
        return await self.post(urlencode(fields).encode(), headers=headers)

    async def click(
        self, *, action_id: str, value: str, user: str, channel: str, message_ts: str, thread_ts: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
    ) -> httpx.Response:  # fmt: skip
        """Click a button on a message."""
        payload = block_actions_payload(
            action_id=action_id, value=value, user=user, channel=channel, message_ts=message_ts,
            response_url=self.workspace.response_url_for(channel, user), thread_ts=thread_ts, blocks=blocks,
        )  # fmt: skip
        return await self.post(urlencode({"payload": json.dumps(payload)}).encode())
