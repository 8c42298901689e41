"""The bot's HTTP face: `POST /slack/events` (Bolt's Starlette adapter) and `GET /healthz`.

The lifespan starts the delivery loop (it also posts what a previous process left undelivered) and, on shutdown
(SIGTERM), drains the running work before the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import sqlalchemy as sa
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.slack.access import groups_to_watch
from bot.slack.bot import SlackBot

log = logging.getLogger(__name__)


class BotLifecycle:
    """Background loops that live as long as the bot: delivery, and the drain at the end.

    The drain waits 8 s by default: Cloud Run kills a container 10 s after SIGTERM, and what is left after the drain
    must still be marked interrupted and the due messages delivered.
    """

    def __init__(self, bot: SlackBot, *, drain_timeout_s: float = 8.0, delivery_interval_s: float = 2.0) -> None:
        self.bot = bot
        self.drain_timeout_s = drain_timeout_s
        self.delivery_interval_s = delivery_interval_s
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks.append(
            asyncio.create_task(self.bot.deliverer.run_forever(self._stop, self.delivery_interval_s), name="delivery")
        )
        self._tasks.append(asyncio.create_task(self._keep_groups_warm(), name="user-groups"))

    async def _keep_groups_warm(self, every_s: float = 60.0) -> None:
        """Re-read the user groups decisions need, so the ack path never has to ask Slack."""
        groups = groups_to_watch(self.bot.config)
        while groups and not self._stop.is_set():
            await self.bot.groups.refresh(groups)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), every_s)

    async def stop(self) -> None:
        """Let running work finish (or cancel it and mark it interrupted), deliver what is due, stop the loops."""
        cancelled = await self.bot.tracker.drain(self.drain_timeout_s)
        for run_id in cancelled:
            await asyncio.to_thread(
                self.bot.store.finish_run, run_id, state="interrupted", summary="stopped by a bot shutdown"
            )
        try:
            await self.bot.deliverer.deliver_due()
        except Exception:
            log.exception("final delivery failed; the next start delivers the rest")
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.bot.diagnoser is not None:
            self.bot.diagnoser.close()


class ReplayGuard:
    """Refuse a correctly signed request seen before: Bolt accepts an exact replay within its 5-minute window.

    Slack's own retries carry `X-Slack-Retry-Num` and are let through (the bot answers them without new work).
    The memory is per process; with several replicas a replay could reach another one, where the run's
    request key still stops a second run.
    """

    def __init__(self, signing_secret: str, window_s: float = 300.0, clock: Callable[[], float] = time.time) -> None:
        self._verifier = SignatureVerifier(signing_secret)
        self._window_s = window_s
        self._clock = clock
        self._seen: dict[str, float] = {}

    def is_replay(self, headers: Mapping[str, str], body: bytes) -> bool:
        signature = headers.get("x-slack-signature", "")
        timestamp = headers.get("x-slack-request-timestamp", "")
        if headers.get("x-slack-retry-num") or not timestamp.isdigit() or not signature:
            return False  # a retry, or an unsigned request that Bolt refuses itself
        if not self._verifier.is_valid(body, timestamp, signature):
            return False
        now = self._clock()
        # Entries are kept in arrival order, so the expired ones are at the front: forgetting them costs what
        # expired, not a pass over every request of the last 5 minutes (100k+ at a few hundred a second).
        while self._seen:
            oldest = next(iter(self._seen))
            if now - self._seen[oldest] <= self._window_s:
                break
            del self._seen[oldest]
        if signature in self._seen:
            return True
        self._seen[signature] = now
        return False


def build_asgi_app(
    app: AsyncApp, lifecycle: BotLifecycle, database_ok: Callable[[], bool], signing_secret: str
) -> Starlette:
    """Return the ASGI app serving Slack's requests and the health check."""
    handler = AsyncSlackRequestHandler(app)
    replays = ReplayGuard(signing_secret)

    async def events(request: Request) -> Response:
        if replays.is_replay(request.headers, await request.body()):
            return JSONResponse({"error": "replayed request"}, status_code=401)
        response: Response = await handler.handle(request)
        return response

    async def healthz(request: Request) -> Response:
        ok = await asyncio.to_thread(database_ok)
        body: dict[str, Any] = {"status": "ok" if ok else "degraded", "database": "ok" if ok else "unreachable"}
        return JSONResponse(body, status_code=200 if ok else 503)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await lifecycle.start()
        try:
            yield
        finally:
            await lifecycle.stop()

    return Starlette(
        routes=[Route("/slack/events", events, methods=["POST"]), Route("/healthz", healthz, methods=["GET"])],
        lifespan=lifespan,
    )


def database_check(engine: sa.Engine) -> Callable[[], bool]:
    """Return a health check that runs `SELECT 1` on the store's database."""

    def check() -> bool:
        try:
            with engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
            return True
        except Exception:
            return False

    return check
