"""The `stagebot` command line: one parser, one module per command under `bot/commands/`.

Every command takes `--config PATH`. Errors a user can cause become one line on stderr and exit 2;
nothing a user types ends in a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from bot.commands import COMMANDS
from bot.commands.base import CommandContext
from bot.errors import EXIT_USAGE, UsageError


class _OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line naming the problem, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """Return the parser; only the command named in `argv` has its module loaded and its arguments added."""
    common = _OneLineParser(add_help=False)
    common.add_argument(
        "--config", metavar="PATH", help="config file (default: $STAGEBOT_CONFIG, else ./stagebot.toml)"
    )
    parser = _OneLineParser(
        prog="stagebot",
        description="Keep a staging environment honest: probes, diagnosis, honest test verdicts, approved fixes.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_OneLineParser)
    subparsers.required = True
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    for entry in COMMANDS:
        sub = subparsers.add_parser(entry.name, help=entry.help, description=entry.help, parents=[common])
        if entry.name == chosen:
            command = entry.load()
            command.add_arguments(sub)
            sub.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `stagebot` command and return its exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(arguments)
    args = parser.parse_args(arguments)
    context = CommandContext(environ=dict(os.environ), cwd=Path.cwd(), stdout=sys.stdout, stderr=sys.stderr)
    try:
        code: int = args.run(args, context)
    except UsageError as exc:
        print(f"stagebot {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"stagebot {args.command}: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
