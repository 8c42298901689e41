"""`stagebot serve`: the Slack bot over HTTP (uvicorn), or over Socket Mode with `--socket`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator

import uvicorn
from slack_bolt.adapter.socket_mode.websockets import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

from bot.app import assemble_bot, build_web_client, read_slack_secrets, slack_api_url
from bot.commands.base import Command, CommandContext
from bot.errors import UsageError
from bot.logs import configure_logging
from bot.slack.server import BotLifecycle, build_asgi_app, database_check
from bot.store import open_store

log = logging.getLogger(__name__)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=None, help="port (default: $PORT, else 3000)")
    parser.add_argument("--socket", action="store_true", help="use Socket Mode instead of HTTP (needs SLACK_APP_TOKEN)")


def resolve_port(cli_port: int | None, environ: dict[str, str] | None) -> int:
    """Return `--port`, else `$PORT`, else 3000."""
    if cli_port is not None:
        return cli_port
    raw = (environ or {}).get("PORT")
    if raw:
        if not raw.isdigit() or not 0 < int(raw) < 65536:
            raise UsageError(f"PORT must be a port number, got {raw!r}")
        return int(raw)
    return 3000


async def _serve(args: argparse.Namespace, context: CommandContext) -> int:
    config = context.load_config(args.config)
    secrets = read_slack_secrets(context.environ, socket_mode=args.socket)
    port = resolve_port(args.port, dict(context.environ))
    # From here on every logger (ours, uvicorn's, Bolt's) writes JSON lines or text to stdout, secrets masked.
    known = {secrets.bot_token, secrets.signing_secret, secrets.app_token or ""}
    configure_logging(context.stdout, environ=context.environ, secrets=config.secrets | known)
    store = await asyncio.to_thread(open_store, None, context.environ, config.store)
    client = build_web_client(secrets.bot_token, slack_api_url(context.environ))
    running = await assemble_bot(config, store, client, secrets.signing_secret, environ=context.environ)
    try:
        if args.socket:
            await _serve_socket_mode(running.app, secrets.app_token or "", running.lifecycle)
        else:
            asgi = build_asgi_app(running.app, running.lifecycle, database_check(store.engine), secrets.signing_secret)
            server = _GracefulServer(
                uvicorn.Config(
                    asgi, host=args.host, port=port, log_level="info", access_log=False, lifespan="on", log_config=None
                )
            )
            log.info("stagebot serving Slack on http://%s:%d/slack/events", args.host, port)
            await server.serve()
    finally:
        store.close()
    return 0


async def _serve_socket_mode(app: AsyncApp, app_token: str, lifecycle: BotLifecycle) -> None:
    handler = AsyncSocketModeHandler(app, app_token)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await lifecycle.start()
    await handler.connect_async()  # type: ignore[no-untyped-call]  # slack-bolt leaves it unannotated
    try:
        await stop.wait()
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]
        await lifecycle.stop()


class _GracefulServer(uvicorn.Server):
    """uvicorn, minus one habit: after a graceful SIGTERM/SIGINT shutdown it re-raises the signal, so the process
    would die by it (exit -15) before the store is closed. The shutdown (and the bot's drain) is already done, so
    `stagebot serve` exits 0 instead.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _run(args: argparse.Namespace, context: CommandContext) -> int:
    return asyncio.run(_serve(args, context))


COMMAND = Command(
    add_arguments=_add_arguments,
    run=_run,
)
