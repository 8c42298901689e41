"""A staging environment that fails the way real ones do, served from one local port.

Every service lives under `/{name}/`: `/{name}/health` for HTTP probes, `/{name}/ws` for WebSocket probes, and the
auth service issues and checks tokens under `/{name}/token` and `/{name}/verify`. Each service's behaviour can be
changed while it runs (the Cloud Run stand-in does this when a restart "fixes" a service).
The WebSocket speaks the agent protocol the staging suite checks: a `user_message` yields `agent_started`,
`agent_thinking`, `tool_executing`, `tool_completed`, `agent_completed`, in order.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass, field, replace
from typing import Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

HttpMode = Literal["healthy", "unavailable", "slow", "error"]
WsMode = Literal["healthy", "reject", "silent"]

AGENT_EVENTS = ("agent_started", "agent_thinking", "tool_executing", "tool_completed", "agent_completed")


@dataclass(frozen=True)
class SandboxService:
    """How one sandbox service behaves."""

    http: HttpMode = "healthy"
    delay_ms: float = 0.0  # added before every answer (a "slow" service)
    ws: WsMode = "healthy"
    requires: str | None = None  # while this other service is not healthy, answer 503 (a cascade)


@dataclass
class SandboxStaging:
    """The mutable state of the sandbox: what every service does right now."""

    services: dict[str, SandboxService] = field(default_factory=dict)
    issued_tokens: set[str] = field(default_factory=set)

    def set(self, name: str, **changes: object) -> None:
        """Change how a service behaves from now on."""
        self.services[name] = replace(self.services.get(name, SandboxService()), **changes)  # type: ignore[arg-type]

    def is_healthy(self, name: str) -> bool:
        service = self.services.get(name)
        if service is None or service.http not in ("healthy", "slow"):
            return False
        return service.requires is None or self.is_healthy(service.requires)

    def _failing_http(self, name: str) -> Response | None:
        service = self.services.get(name)
        if service is None:
            return JSONResponse({"error": f"no such service {name!r}"}, status_code=404)
        if service.http == "unavailable":
            return JSONResponse({"error": "Service Unavailable"}, status_code=503)
        if service.http == "error":
            return JSONResponse({"error": "Internal Server Error"}, status_code=500)
        if service.requires and not self.is_healthy(service.requires):
            return JSONResponse({"error": f"upstream {service.requires} unavailable"}, status_code=503)
        return None

    async def _delay(self, name: str) -> None:
        service = self.services.get(name)
        if service and service.delay_ms:
            await asyncio.sleep(service.delay_ms / 1000)

    # -- HTTP --------------------------------------------------------------
    async def health(self, request: Request) -> Response:
        name = request.path_params["service"]
        await self._delay(name)
        return self._failing_http(name) or JSONResponse({"status": "ok", "service": name})

    async def token(self, request: Request) -> Response:
        name = request.path_params["service"]
        await self._delay(name)
        failing = self._failing_http(name)
        if failing:
            return failing
        token = secrets.token_urlsafe(24)
        self.issued_tokens.add(token)
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": 3600})

    async def verify(self, request: Request) -> Response:
        name = request.path_params["service"]
        await self._delay(name)
        failing = self._failing_http(name)
        if failing:
            return failing
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or token not in self.issued_tokens:
            return JSONResponse({"error": "invalid token"}, status_code=401)
        return JSONResponse({"valid": True})

    # -- WebSocket ---------------------------------------------------------
    async def websocket(self, socket: WebSocket) -> None:
        name = socket.path_params["service"]
        service = self.services.get(name)
        await self._delay(name)
        if service is None or service.ws == "reject" or (service.requires and not self.is_healthy(service.requires)):
            # The upgrade is refused with a real HTTP 503, as a load balancer in front of a dead backend does.
            await socket.send_denial_response(JSONResponse({"error": "Service Unavailable"}, status_code=503))
            return
        await socket.accept()
        try:
            while True:
                text = await socket.receive_text()
                if service.ws == "silent":
                    continue
                await self._answer(socket, text)
        except WebSocketDisconnect:
            return

    async def _answer(self, socket: WebSocket, text: str) -> None:
        try:
            message = json.loads(text)
        except json.JSONDecodeError:
            await socket.send_text(json.dumps({"type": "error", "error": "expected JSON"}))
            return
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "ping":
            await socket.send_text(json.dumps({"type": "pong"}))
        elif kind == "user_message":
            for event in AGENT_EVENTS:
                await asyncio.sleep(0.01)
                await socket.send_text(json.dumps({"type": event, "message_id": message.get("id")}))
        else:
            await socket.send_text(json.dumps({"type": "error", "error": f"unknown message type {kind!r}"}))

    def app(self) -> Starlette:
        """Return the ASGI app serving every service."""
        return Starlette(
            routes=[
                Route("/{service}/health", self.health),
                Route("/{service}/token", self.token, methods=["POST"]),
                Route("/{service}/verify", self.verify),
                WebSocketRoute("/{service}/ws", self.websocket),
            ]
        )


def broken_staging() -> SandboxStaging:
    """Return the failing staging the demo tells: API and auth down, the WebSocket refusing as their echo."""
    return SandboxStaging(
        services={
            "api": SandboxService(http="unavailable"),
            "auth": SandboxService(http="unavailable"),
            "frontend": SandboxService(),
            "websocket": SandboxService(requires="api"),
            "reports": SandboxService(http="slow", delay_ms=600),
        }
    )


def healthy_staging() -> SandboxStaging:
    """Return the same staging with every service answering correctly and quickly."""
    return SandboxStaging(
        services={
            "api": SandboxService(),
            "auth": SandboxService(),
            "frontend": SandboxService(),
            "websocket": SandboxService(requires="api"),
            "reports": SandboxService(),
        }
    )


def sandbox_config_text(base_url: str, ws_url: str, *, environment: str = "sandbox") -> str:
    """Return a stagebot TOML config whose services point at a running sandbox."""
    return f"""\
[environment]
name = "{environment}"

[services.api]
kind = "http"
url = "{base_url}/api/health"
degraded_ms = 3000
timeout_s = 5
impact = "Core API for every customer-facing feature"

[services.auth]
kind = "http"
url = "{base_url}/auth/health"
degraded_ms = 2000
timeout_s = 5
impact = "Sign-in and token issuance"

[services.frontend]
kind = "http"
url = "{base_url}/frontend/health"
degraded_ms = 3000
timeout_s = 5
impact = "Web app shell"

[services.websocket]
kind = "websocket"
url = "{ws_url}/websocket/ws"
degraded_ms = 5000
timeout_s = 5
depends_on = ["api"]
send = '{{"type": "ping"}}'
expect = "pong"
impact = "Live agent events"

[services.reports]
kind = "http"
url = "{base_url}/reports/health"
degraded_ms = 300
timeout_s = 5
impact = "Usage reports (internal)"
"""
