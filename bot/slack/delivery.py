"""Deliver stored messages to Slack, so a Slack outage delays messages but loses none.

Every message is written to the store's outbox first (`post`), then delivered. A reply names its parent outbox
message and waits until the parent has a Slack `ts`; an edit (`chat.update`) likewise. Failures are retried later:
429 after its `Retry-After`, 5xx and network errors with exponential backoff, and whatever is left when the process
stops is claimed by the next one (`run_forever`). A message is marked delivered exactly once, so it is not posted
twice by two workers; and when an attempt may have posted it without the bot learning so (a crash, a timeout, a
5xx), the next attempt first looks for the message's key in the channel's metadata and posts only if it is absent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.render import SlackMessage
from bot.store import Store
from bot.store.records import OutboxRecord

log = logging.getLogger(__name__)

_WAIT_FOR_PARENT = timedelta(milliseconds=300)
_MAX_BACKOFF = timedelta(minutes=5)
# Every message carries its outbox key as Slack message metadata, so a retry can tell whether it was posted already.
METADATA_TYPE = "stagebot_message"
# Errors that a retry will not cure: keep the message (it is evidence) but stop hammering Slack with it.
_PERMANENT_RETRY = timedelta(hours=6)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def retry_delay(attempts: int, retry_after_s: float | None) -> timedelta:
    """Return how long to wait before the next attempt: Slack's `Retry-After`, else 1, 2, 4 ... s, capped."""
    if retry_after_s is not None:
        return timedelta(seconds=max(retry_after_s, 0.0))
    return min(timedelta(seconds=2 ** max(attempts - 1, 0)), _MAX_BACKOFF)


class Deliverer:
    """Store-then-post for every message the bot sends."""

    def __init__(
        self,
        store: Store,
        client: AsyncWebClient,
        *,
        clock: Callable[[], datetime] = _utcnow,
        redact: Callable[[str], str] = lambda text: text,
    ) -> None:
        self.store = store
        self.client = client
        self.clock = clock
        self.redact = redact
        self._wake = asyncio.Event()

    # -- queueing ---------------------------------------------------------------------------------------------
    async def post(
        self,
        *,
        key: str,
        channel: str,
        message: SlackMessage,
        run_id: int | None = None,
        thread_of: int | None = None,
        update_of: int | None = None,
        thread_ts: str | None = None,
        update_ts: str | None = None,
        deliver_now: bool = True,
    ) -> int:
        """Store a message (a post, a thread reply or an edit) and try to deliver it now; return its outbox id.

        A reply or an edit names its parent by outbox id (`thread_of`, `update_of`) or, for a message the bot did
        not queue itself (a click's message), by Slack ts (`thread_ts`, `update_ts`). The same `key` again is the
        same message: it is stored and posted once.
        """
        payload: dict[str, Any] = {
            "text": self.redact(message.text),
            "blocks": _redact_blocks(list(message.blocks), self.redact),
        }
        if thread_of is not None:
            payload["thread_of"] = thread_of
        if update_of is not None:
            payload["update_of"] = update_of
        if thread_ts is not None:
            payload["thread_ts"] = thread_ts
        if update_ts is not None:
            payload["update_ts"] = update_ts
        method = "chat.update" if update_of is not None or update_ts is not None else "chat.postMessage"
        message_id = await asyncio.to_thread(
            self.store.enqueue_message,
            idempotency_key=key, channel=channel, method=method, payload=payload, run_id=run_id,
        )  # fmt: skip
        if message.attachment is not None:
            parent: dict[str, Any] = (
                {"thread_ts": thread_ts or update_ts}
                if thread_ts or update_ts
                else {"thread_of": thread_of if thread_of is not None else (update_of or message_id)}
            )
            file_payload = {
                **parent,
                "filename": message.attachment.filename,
                "title": message.attachment.title,
                "content": self.redact(message.attachment.content),
            }
            await asyncio.to_thread(
                self.store.enqueue_message,
                idempotency_key=f"{key}:file", channel=channel, method="files.upload", payload=file_payload,
                run_id=run_id,
            )  # fmt: skip
        if deliver_now:
            await self.deliver_due()
        else:
            self._wake.set()
        return message_id

    async def slack_ts(self, message_id: int) -> str | None:
        """Return the Slack `ts` of a delivered message (None until it is delivered)."""
        record = await asyncio.to_thread(self.store.get_message, message_id)
        return None if record is None else record.slack_ts

    # -- delivering -------------------------------------------------------------------------------------------
    async def deliver_due(self) -> int:
        """Deliver every message that is due now, oldest first; return how many were delivered."""
        delivered = 0
        while True:
            claimed = await asyncio.to_thread(self.store.claim_messages, now=self.clock(), limit=20)
            if not claimed:
                return delivered
            progress = 0
            for record in claimed:
                if await self._deliver(record):
                    progress += 1
            delivered += progress
            if progress == 0:
                return delivered

    async def run_forever(self, stop: asyncio.Event, interval_s: float = 2.0) -> None:
        """Deliver due messages until `stop` is set: retries, and what a previous process left undelivered."""
        while not stop.is_set():
            try:
                await self.deliver_due()
            except Exception:  # the loop must outlive a database hiccup; the next round retries
                log.exception("delivery round failed")
            self._wake.clear()
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            await asyncio.wait(waiters, timeout=interval_s, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()

    async def _deliver(self, record: OutboxRecord) -> bool:
        payload = dict(record.payload)
        parent_id = payload.pop("update_of", None) or payload.pop("thread_of", None)
        parent_ts = payload.pop("update_ts", None) or payload.pop("thread_ts", None)
        if parent_id is not None:
            parent_ts = await self.slack_ts(int(parent_id))
            if parent_ts is None:
                await self._retry(record, "waiting for the message it belongs to", self.clock() + _WAIT_FOR_PARENT)
                return False
        if record.method == "chat.postMessage" and _outcome_unknown(record):
            try:
                posted = await self._find_posted(record, parent_ts)
            except (SlackApiError, OSError, TimeoutError) as exc:
                # Posting blind could post twice; waiting loses nothing: look again later.
                error = f"could not check whether it was posted: {exc}"
                await self._retry(record, error, self.clock() + retry_delay(record.attempts, None))
                return False
            if posted is not None:
                return await asyncio.to_thread(self.store.mark_delivered, record.id, slack_ts=posted)
        try:
            ts = await self._call(record, payload, parent_ts)
        except SlackApiError as exc:
            status = exc.response.status_code
            data = exc.response.data  # a 5xx from a proxy is often plain text, not Slack's JSON
            error = str(data.get("error") if isinstance(data, dict) else None or f"HTTP {status}")
            if status == 429 or status >= 500:
                retry_after = _retry_after(exc.response.headers) if status == 429 else None
                await self._retry(record, error, self.clock() + retry_delay(record.attempts, retry_after))
            else:
                log.error("Slack refused message %s (%s): %s", record.id, record.method, error)
                await self._retry(record, f"refused by Slack: {error}", self.clock() + _PERMANENT_RETRY)
            return False
        except (OSError, TimeoutError) as exc:
            await self._retry(record, f"network: {exc!r}", self.clock() + retry_delay(record.attempts, None))
            return False
        return await asyncio.to_thread(self.store.mark_delivered, record.id, slack_ts=ts)

    async def _find_posted(self, record: OutboxRecord, parent_ts: str | None) -> str | None:
        """Return the ts of this message if an earlier attempt did post it (found by its metadata key)."""
        if parent_ts is not None:
            found = await self.client.conversations_replies(
                channel=record.channel, ts=parent_ts, include_all_metadata=True, limit=200
            )
        else:
            since = record.created_at.timestamp() - 60
            found = await self.client.conversations_history(
                channel=record.channel, oldest=f"{since:.6f}", include_all_metadata=True, limit=200
            )
        for message in found.get("messages") or []:
            metadata = message.get("metadata") or {}
            if (
                metadata.get("event_type") == METADATA_TYPE
                and metadata.get("event_payload", {}).get("key") == record.idempotency_key
            ):
                return str(message["ts"])
        return None

    async def _call(self, record: OutboxRecord, payload: dict[str, Any], parent_ts: str | None) -> str | None:
        if record.method == "chat.update":
            if parent_ts is None:
                raise ValueError(f"outbox message {record.id} edits a message that has no ts")
            await self.client.chat_update(channel=record.channel, ts=parent_ts, **payload)
            return parent_ts
        if record.method == "files.upload":
            await self.client.files_upload_v2(
                channel=record.channel, thread_ts=parent_ts, filename=payload["filename"],
                title=payload["title"], content=payload["content"],
            )  # fmt: skip
            return None
        response = await self.client.chat_postMessage(
            channel=record.channel, thread_ts=parent_ts, metadata=_metadata(record), **payload
        )
        return str(response["ts"])

    async def _retry(self, record: OutboxRecord, error: str, at: datetime) -> None:
        await asyncio.to_thread(self.store.mark_failed, record.id, error=error, retry_at=at)


def _metadata(record: OutboxRecord) -> dict[str, Any]:
    """Return the message metadata that lets a later attempt recognise this message as already posted."""
    return {"event_type": METADATA_TYPE, "event_payload": {"key": record.idempotency_key}}


def _outcome_unknown(record: OutboxRecord) -> bool:
    """Return whether an earlier attempt may have posted this message.

    Any earlier attempt may have: a 5xx or a timeout can follow a post that went through, and a crash between
    Slack's answer and the store's write leaves no trace at all. Retries happen only while Slack misbehaves, so one
    lookup per retry is cheap.
    """
    return record.attempts > 1


def _retry_after(headers: Any) -> float | None:
    raw = headers.get("Retry-After") or headers.get("retry-after") if headers else None
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


def _redact_blocks(blocks: list[Any], redact: Callable[[str], str]) -> list[Any]:
    """Redact every string inside the blocks (texts, values, confirm dialogs)."""

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return redact(value)
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        return value

    return [walk(block) for block in blocks]
