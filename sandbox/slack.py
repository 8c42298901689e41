"""A Slack workspace stand-in: the Web API methods stagebot calls, Socket Mode, and `response_url`s.

It records every call (method, arguments, time), keeps the channel as Slack would show it (messages, edits, thread
replies, ephemeral answers, uploaded files), and can be told to fail: the next N calls of a method answer 429 with
`Retry-After`, or 500, or the connection is dropped. Pointed at with `AsyncWebClient(base_url=f"{url}/api/")`.

Socket Mode: `apps.connections.open` hands out `ws://.../socket-mode`; the stand-in sends `hello`, pushes envelopes
(`push_envelope`) and records the acks, and can send `disconnect` to make the client reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

BOT_USER_ID = "U0STAGEBOT"
TEAM_ID = "T0SANDBOX"


@dataclass
class ApiCall:
    """One Web API call as the stand-in received it."""

    method: str
    args: dict[str, Any]
    at: float
    status: int  # what the stand-in answered (200, 429, 500)


@dataclass
class SlackMessage:
    """A message as the channel shows it now (after any edits)."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    edits: int = 0
    user: str = BOT_USER_ID
    metadata: dict[str, Any] | None = None


@dataclass
class EphemeralMessage:
    channel: str
    user: str
    text: str
    blocks: list[dict[str, Any]]
    via: str  # "chat.postEphemeral" or "response_url"


@dataclass
class UploadedFile:
    file_id: str
    filename: str
    title: str
    content: bytes
    channel: str | None = None
    thread_ts: str | None = None


@dataclass
class _Fault:
    status: int  # 429 or 5xx
    remaining: int
    retry_after_s: int = 1
    applied: bool = False  # the call takes effect, then the answer is lost (Slack posted; the bot never hears)


@dataclass
class SlackWorkspace:
    """The stand-in's state; tests and the demo read it and inject faults into it."""

    usergroups: dict[str, list[str]] = field(default_factory=dict)
    calls: list[ApiCall] = field(default_factory=list)
    messages: list[SlackMessage] = field(default_factory=list)
    ephemeral: list[EphemeralMessage] = field(default_factory=list)
    files: dict[str, UploadedFile] = field(default_factory=dict)
    socket_acks: dict[str, dict[str, Any]] = field(default_factory=dict)
    base_url: str = ""  # set once served, so handed-out URLs point back here
    _faults: dict[str, list[_Fault]] = field(default_factory=dict)
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _sockets: list[WebSocket] = field(default_factory=list)
    sockets_opened: int = 0  # Socket Mode connections ever accepted (a reconnect adds one)
    _changed: asyncio.Event | None = None

    # -- faults ------------------------------------------------------------
    def fail_next(
        self, method: str, *, status: int = 500, times: int = 1, retry_after_s: int = 1, applied: bool = False
    ) -> None:
        """Make the next `times` calls of `method` answer `status` (429 carries `Retry-After`).

        With `applied`, the call still takes effect before the error answer: what a timeout after a successful
        post looks like to the caller.
        """
        self._faults.setdefault(method, []).append(_Fault(status, times, retry_after_s, applied))

    def _take_fault(self, method: str) -> _Fault | None:
        for fault in self._faults.get(method, []):
            if fault.remaining > 0:
                fault.remaining -= 1
                return fault
        return None

    # -- reading the channel -------------------------------------------------
    def calls_of(self, method: str, *, succeeded: bool = True) -> list[ApiCall]:
        return [c for c in self.calls if c.method == method and (not succeeded or c.status == 200)]

    def channel_messages(self, channel: str) -> list[SlackMessage]:
        """Top-level messages of a channel, oldest first."""
        return [m for m in self.messages if m.channel == channel and m.thread_ts is None]

    def thread(self, channel: str, ts: str) -> list[SlackMessage]:
        """Replies in the thread under message `ts`, oldest first."""
        return [m for m in self.messages if m.channel == channel and m.thread_ts == ts]

    def find(self, channel: str, ts: str) -> SlackMessage | None:
        return next((m for m in self.messages if m.channel == channel and m.ts == ts), None)

    async def wait_for(self, predicate: Callable[[], object], timeout_s: float = 10.0) -> None:
        """Wait until `predicate()` is true; raise TimeoutError at the deadline.

        It is re-checked on every change to the workspace, and every 50 ms for conditions outside it (a file, the
        store). Call it from the loop that serves the stand-in (`serve_in_loop`).
        """
        async with asyncio.timeout(timeout_s):
            while not predicate():
                if self._changed is None:
                    self._changed = asyncio.Event()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.05)

    def _touch(self) -> None:
        # A fresh event per change: every waiter wakes, re-checks, and waits on the next one.
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    # -- the Web API -------------------------------------------------------
    async def web_api(self, request: Request) -> Response:
        method = request.path_params["method"]
        args = await _read_args(request)
        fault = self._take_fault(method)
        status = fault.status if fault else 200
        self.calls.append(ApiCall(method=method, args=args, at=time.monotonic(), status=status))
        self._touch()
        handler = getattr(self, "_api_" + method.replace(".", "_"), None)
        if fault is not None and fault.applied and handler is not None:
            handler(args)
        if fault is not None:
            if fault.status == 429:
                return JSONResponse(
                    {"ok": False, "error": "ratelimited"}, status_code=429,
                    headers={"Retry-After": str(fault.retry_after_s)},
                )  # fmt: skip
            return PlainTextResponse("upstream connect error", status_code=fault.status)
        if handler is None:
            return JSONResponse({"ok": False, "error": "unknown_method"})
        answer: dict[str, Any] = handler(args)
        self._touch()
        return JSONResponse(answer)

    def _api_auth_test(self, args: Mapping[str, Any]) -> dict[str, Any]:
        return {"ok": True, "user_id": BOT_USER_ID, "bot_id": "B0STAGEBOT", "team_id": TEAM_ID, "user": "stagebot"}

    def _api_chat_postMessage(self, args: Mapping[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel", ""))
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        message = SlackMessage(
            channel=channel, ts=self._next_ts(), text=str(args.get("text") or ""),
            blocks=_blocks(args.get("blocks")), thread_ts=args.get("thread_ts") or None,
            metadata=_metadata(args.get("metadata")),
        )  # fmt: skip
        self.messages.append(message)
        return {"ok": True, "channel": channel, "ts": message.ts, "message": {"text": message.text}}

    def _api_conversations_history(self, args: Mapping[str, Any]) -> dict[str, Any]:
        oldest = float(args.get("oldest") or 0)
        found = [m for m in self.channel_messages(str(args.get("channel", ""))) if float(m.ts) >= oldest]
        return {"ok": True, "messages": [_as_api(m, args) for m in reversed(found)], "has_more": False}

    def _api_conversations_replies(self, args: Mapping[str, Any]) -> dict[str, Any]:
        channel, ts = str(args.get("channel", "")), str(args.get("ts", ""))
        parent = self.find(channel, ts)
        if parent is None:
            return {"ok": False, "error": "thread_not_found"}
        return {"ok": True, "messages": [_as_api(m, args) for m in [parent, *self.thread(channel, ts)]]}

    def _api_chat_update(self, args: Mapping[str, Any]) -> dict[str, Any]:
        message = self.find(str(args.get("channel", "")), str(args.get("ts", "")))
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        message.text = str(args.get("text") or message.text)
        if "blocks" in args:
            message.blocks = _blocks(args.get("blocks"))
        message.edits += 1
        return {"ok": True, "channel": message.channel, "ts": message.ts}

    def _api_chat_postEphemeral(self, args: Mapping[str, Any]) -> dict[str, Any]:
        self.ephemeral.append(
            EphemeralMessage(
                channel=str(args.get("channel", "")),
                user=str(args.get("user", "")),
                text=str(args.get("text") or ""),
                blocks=_blocks(args.get("blocks")),
                via="chat.postEphemeral",
            )
        )
        return {"ok": True, "message_ts": self._next_ts()}

    def _api_usergroups_users_list(self, args: Mapping[str, Any]) -> dict[str, Any]:
        group = str(args.get("usergroup", ""))
        if group not in self.usergroups:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(self.usergroups[group])}

    def _api_files_getUploadURLExternal(self, args: Mapping[str, Any]) -> dict[str, Any]:
        file_id = f"F{next(self._ids):08d}"
        self.files[file_id] = UploadedFile(
            file_id=file_id, filename=str(args.get("filename", "")), title="", content=b""
        )
        return {"ok": True, "upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}

    def _api_files_completeUploadExternal(self, args: Mapping[str, Any]) -> dict[str, Any]:
        described = json.loads(args.get("files") or "[]")
        done = []
        for item in described:
            uploaded = self.files.get(item.get("id", ""))
            if uploaded is None:
                return {"ok": False, "error": "file_not_found"}
            uploaded.title = item.get("title") or uploaded.filename
            uploaded.channel = args.get("channel_id") or None
            uploaded.thread_ts = args.get("thread_ts") or None
            done.append({"id": uploaded.file_id, "title": uploaded.title})
        return {"ok": True, "files": done}

    def _api_apps_connections_open(self, args: Mapping[str, Any]) -> dict[str, Any]:
        ws_base = self.base_url.replace("http://", "ws://", 1)
        return {"ok": True, "url": f"{ws_base}/socket-mode?ticket={next(self._ids)}"}

    async def upload(self, request: Request) -> Response:
        uploaded = self.files.get(request.path_params["file_id"])
        if uploaded is None:
            return PlainTextResponse("no such upload", status_code=404)
        form_type = request.headers.get("content-type", "")
        if form_type.startswith("multipart/form-data"):
            form = await request.form()
            part = next(iter(form.values()))
            uploaded.content = await part.read() if hasattr(part, "read") else str(part).encode()
        else:
            uploaded.content = await request.body()
        self._touch()
        return PlainTextResponse("OK - " + str(len(uploaded.content)))

    # -- response_url --------------------------------------------------------
    async def response_url(self, request: Request) -> Response:
        payload = json.loads(await request.body() or b"{}")
        channel, user = request.path_params["channel"], request.path_params["user"]
        if payload.get("response_type") == "in_channel":
            self.messages.append(
                SlackMessage(channel=channel, ts=self._next_ts(), text=payload.get("text", ""),
                             blocks=_blocks(payload.get("blocks")))
            )  # fmt: skip
        else:
            self.ephemeral.append(
                EphemeralMessage(channel=channel, user=user, text=payload.get("text", ""),
                                 blocks=_blocks(payload.get("blocks")), via="response_url")
            )  # fmt: skip
        self._touch()
        return PlainTextResponse("ok")

    def response_url_for(self, channel: str, user: str) -> str:
        return f"{self.base_url}/response/{channel}/{user}/{next(self._ids)}"

    # -- Socket Mode -----------------------------------------------------------
    async def socket_mode(self, socket: WebSocket) -> None:
        await socket.accept()
        self._sockets.append(socket)
        self.sockets_opened += 1
        await socket.send_text(json.dumps({"type": "hello", "num_connections": len(self._sockets)}))
        self._touch()
        try:
            while True:
                ack = json.loads(await socket.receive_text())
                if "envelope_id" in ack:
                    self.socket_acks[ack["envelope_id"]] = ack
                    self._touch()
        except WebSocketDisconnect:
            pass
        finally:
            if socket in self._sockets:
                self._sockets.remove(socket)
            self._touch()

    @property
    def socket_connections(self) -> int:
        return len(self._sockets)

    async def push_envelope(self, kind: str, payload: Mapping[str, Any]) -> str:
        """Send one envelope (`slash_commands`, `interactive`, `events_api`) to the newest connection."""
        if not self._sockets:
            raise RuntimeError("no Socket Mode connection is open")
        envelope_id = f"env-{next(self._ids)}"
        await self._sockets[-1].send_text(
            json.dumps({"envelope_id": envelope_id, "type": kind, "payload": dict(payload),
                        "accepts_response_payload": kind != "events_api"})
        )  # fmt: skip
        return envelope_id

    async def disconnect_sockets(self, reason: str = "refresh_requested") -> None:
        """Ask every Socket Mode client to reconnect, as Slack does before it rotates a connection."""
        for socket in list(self._sockets):
            await socket.send_text(json.dumps({"type": "disconnect", "reason": reason}))

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/{method}", self.web_api, methods=["GET", "POST"]),
                Route("/upload/{file_id}", self.upload, methods=["POST"]),
                Route("/response/{channel}/{user}/{n}", self.response_url, methods=["POST"]),
                WebSocketRoute("/socket-mode", self.socket_mode),
            ]
        )


async def _read_args(request: Request) -> dict[str, Any]:
    """Merge query, form and JSON arguments: slack-sdk sends chat.* as JSON and files.* as form or query."""
    args: dict[str, Any] = dict(request.query_params)
    body = await request.body()
    content_type = request.headers.get("content-type", "")
    if body and content_type.startswith("application/json"):
        loaded = json.loads(body)
        if isinstance(loaded, dict):
            args.update(loaded)
    elif body:
        args.update(dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True)))
    return args


def _metadata(value: object) -> dict[str, Any] | None:
    if isinstance(value, str):
        value = json.loads(value) if value else None
    return value if isinstance(value, dict) else None


def _as_api(message: SlackMessage, args: Mapping[str, Any]) -> dict[str, Any]:
    """Return a message as conversations.history / .replies show it (metadata only when asked for)."""
    shown: dict[str, Any] = {"type": "message", "ts": message.ts, "text": message.text, "user": message.user}
    if message.thread_ts:
        shown["thread_ts"] = message.thread_ts
    if message.metadata and str(args.get("include_all_metadata", "")).lower() in ("1", "true"):
        shown["metadata"] = message.metadata
    return shown


def _blocks(value: object) -> list[dict[str, Any]]:
    if isinstance(value, str):
        value = json.loads(value) if value else []
    return [b for b in value if isinstance(b, dict)] if isinstance(value, list) else []
