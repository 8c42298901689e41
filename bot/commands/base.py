"""What every command gets: the environment, the working directory and the output streams, handed in."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TextIO

from bot.config import Config, load_config, resolve_config_path
from bot.errors import UsageError


def parse_since(text: str) -> timedelta:
    """Return the window of a `--since` option (30m, 24h, 7d, 2w); bad input is a usage error naming the option."""
    from bot.store.history import parse_duration  # pure, but under bot.store: import it only when a command needs it

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"--since: {exc}") from None


@dataclass(frozen=True)
class CommandContext:
    """The outside world as a command may see it; tests build one with their own values."""

    environ: Mapping[str, str]
    cwd: Path
    stdout: TextIO
    stderr: TextIO

    def load_config(self, cli_path: str | None) -> Config:
        """Load the config named by `--config`, `$STAGEBOT_CONFIG` or `./stagebot.toml`."""
        return load_config(resolve_config_path(cli_path, self.environ, self.cwd), self.environ)

    @property
    def is_terminal(self) -> bool:
        return self.stdout.isatty()

    def out(self, text: str = "") -> None:
        print(text, file=self.stdout, flush=True)


@dataclass(frozen=True)
class Command:
    """What a subcommand's module provides: its arguments and what it does."""

    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, CommandContext], int]
