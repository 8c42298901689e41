"""What a person typed after `/staging` or `/e2e`, parsed into a request or a refusal: pure, no IO.

A tier or service name from a user is looked up in the config, never passed on as typed.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass


@dataclass(frozen=True)
class Request:
    """A valid request: the verb and its one argument (a service, a tier or a run id), if any."""

    verb: str
    argument: str | None = None


@dataclass(frozen=True)
class Refusal:
    """Why the text was not understood, and what would have worked."""

    problem: str
    usage: tuple[str, ...]


def staging_usage(command: str) -> tuple[str, ...]:
    return (
        f"{command} status — probe every service",
        f"{command} history [service] — uptime and latency over the last 24 h",
        f"{command} diagnose <service> — Cloud Run state and logs for one service",
        f"{command} help",
    )


def e2e_usage(command: str, tiers: Collection[str]) -> tuple[str, ...]:
    known = ", ".join(sorted(tiers)) or "none configured"
    return (
        f"{command} run <tier> — run a test tier (tiers: {known}, or all)",
        f"{command} list — the tiers and what they cover",
        f"{command} history <tier> — pass rate and recent verdicts",
        f"{command} cancel <run id> — stop a running tier",
        f"{command} help",
    )


def parse_staging(text: str, command: str, services: Collection[str]) -> Request | Refusal:
    """Parse `/staging ...`."""
    words = text.split()
    usage = staging_usage(command)
    if not words or words[0] == "help":
        return Request("help") if len(words) <= 1 else Refusal("`help` takes nothing after it.", usage)
    verb, rest = words[0].lower(), words[1:]
    if verb == "status":
        return (
            Request("status")
            if not rest
            else Refusal(f"`status` takes nothing after it (got `{' '.join(rest)}`).", usage)
        )
    if verb in ("history", "diagnose"):
        if len(rest) > 1 or (verb == "diagnose" and not rest):
            return Refusal(f"`{verb}` takes {'one' if verb == 'diagnose' else 'at most one'} service name.", usage)
        if rest and rest[0] not in services:
            return Refusal(f"No service named `{rest[0]}`. Known: {', '.join(sorted(services))}.", usage)
        return Request(verb, rest[0] if rest else None)
    return Refusal(f"`{verb}` is not a {command} command.", usage)


def parse_e2e(text: str, command: str, tiers: Collection[str]) -> Request | Refusal:
    """Parse `/e2e ...`."""
    words = text.split()
    usage = e2e_usage(command, tiers)
    if not words or words[0] == "help":
        return Request("help") if len(words) <= 1 else Refusal("`help` takes nothing after it.", usage)
    verb, rest = words[0].lower(), words[1:]
    if verb == "list":
        return Request("list") if not rest else Refusal("`list` takes nothing after it.", usage)
    if verb in ("run", "history"):
        if len(rest) != 1:
            return Refusal(f"`{verb}` takes exactly one tier name.", usage)
        tier = rest[0]
        if tier not in tiers and not (verb == "run" and tier == "all"):
            return Refusal(f"No tier named `{tier}`.", usage)
        return Request(verb, tier)
    if verb == "cancel":
        if len(rest) != 1 or not rest[0].lstrip("#").isdigit():
            return Refusal("`cancel` takes the run id shown in the run's message, e.g. `cancel 42`.", usage)
        return Request("cancel", rest[0].lstrip("#"))
    return Refusal(f"`{verb}` is not a {command} command.", usage)
