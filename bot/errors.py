"""Errors a user can cause, each mapped to a documented exit code.

The CLI catches these at one place and prints a single line: a user never sees a traceback for bad input.
"""

from __future__ import annotations

# Exit codes shared by every command (README "Exit codes").
EXIT_OK = 0
EXIT_PROBLEM = 1  # status: something degraded/down; e2e: the tier failed
EXIT_USAGE = 2  # bad command line, config, database URL, missing secret


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit 2."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """A configuration file that cannot be used, naming the file and the key."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        self.source = source
        self.key = key
        self.problem = problem
        where = f"{source}: {key}" if key else source
        super().__init__(f"config error in {where}: {problem}")
