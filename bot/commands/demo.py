"""`stagebot demo`: the product on a laptop, no Slack and no cloud account.

Starts the sandbox's failing staging on 127.0.0.1, writes a real config for it, probes it, and checks that what
bot saw tells the sandbox's story: API and auth down, the WebSocket down as the API's echo, the frontend up,
reports slow.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from bot.commands.base import Command, CommandContext
from bot.config import load_config
from bot.status import check_status, render_status_table
from probes import ServiceState, StatusReport
from sandbox.servers import serve_in_loop
from sandbox.staging import broken_staging, sandbox_config_text

# What the demo's staging must look like to the bot: (state, caused_by) per service.
EXPECTED_STORY = {
    "api": (ServiceState.DOWN, None),
    "auth": (ServiceState.DOWN, None),
    "frontend": (ServiceState.UP, None),
    "websocket": (ServiceState.DOWN, "api"),
    "reports": (ServiceState.DEGRADED, None),
}


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(config=None)
    parser.description = (
        "Run the whole story against a local sandbox. With --config PATH the generated sandbox config is written "
        "there (and kept) instead of a temporary folder."
    )


def story_mismatches(report: StatusReport) -> list[str]:
    """Return how the report differs from the demo's story (empty when it tells it)."""
    seen = {s.name: (s.state, s.caused_by) for s in report.services}
    problems = []
    for name, (state, cause) in EXPECTED_STORY.items():
        got = seen.get(name)
        if got != (state, cause):
            problems.append(f"{name}: expected {state.value}{f' caused by {cause}' if cause else ''}, saw {got}")
    return problems


async def _play(context: CommandContext, config_path: Path) -> int:
    staging = broken_staging()
    async with serve_in_loop(staging.app()) as server:
        config_path.write_text(sandbox_config_text(server.base_url, server.ws_url), encoding="utf-8")
        config = load_config(config_path, context.environ)
        context.out(f"Sandbox staging on {server.base_url} (config: {config_path})")
        context.out("")
        context.out("$ stagebot status")
        report = await check_status(config)
        context.out(render_status_table(report, colour=context.is_terminal))
    problems = story_mismatches(report)
    context.out("")
    if problems:
        context.out("The demo did not go as scripted:")
        for problem in problems:
            context.out(f"  - {problem}")
        return 1
    context.out(
        "Demo complete: the bot saw every failure the sandbox staged, and named the WebSocket as the API's echo."
    )
    return 0


def _run(args: argparse.Namespace, context: CommandContext) -> int:
    if args.config:
        path = Path(args.config)
        path.parent.mkdir(parents=True, exist_ok=True)
        return asyncio.run(_play(context, path))
    with tempfile.TemporaryDirectory(prefix="stagebot-demo-") as folder:
        return asyncio.run(_play(context, Path(folder) / "stagebot.toml"))


COMMAND = Command(
    add_arguments=_add_arguments,
    run=_run,
)
