"""Name the cause of a failing Cloud Run revision from its conditions and log lines: pure, and driven by a table.

Each `Rule` lists the regexes (over log lines and condition messages) and the condition reason codes that show a
cause, the fix to suggest (a template over the regexes' named groups and the `Context`), and which other causes it
explains: when out-of-memory kills the container, the port failure that follows is its echo, so the port finding is
folded into the memory finding. Adding a rule is one more `Rule(...)` in `RULES`.

`crash_on_start` needs order as well as text: the traceback, import error or missing variable must come before the
startup failure; a traceback long after a successful start is not why the revision never started.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bot.cloud.models import Condition, LogEntry
from bot.diagnosis.models import Cause, Confidence, Finding

Fix = str | Callable[[Mapping[str, str]], str]
MAX_EVIDENCE = 6
_SEVERITY_RANK = {s: i for i, s in enumerate(("DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL"))}


@dataclass(frozen=True)
class Pattern:
    """A regex showing a cause; its own `fix` (if any) wins over the rule's, using its named groups."""

    regex: re.Pattern[str]
    fix: Fix | None = None


def p(regex: str, fix: Fix | None = None) -> Pattern:
    return Pattern(re.compile(regex, re.MULTILINE), fix)


@dataclass(frozen=True)
class Rule:
    cause: Cause
    patterns: tuple[Pattern, ...]
    fix: Fix
    reasons: tuple[str, ...] = ()  # condition reason codes that show the cause on their own
    confidence: Confidence = Confidence.HIGH
    explains: tuple[Cause, ...] = ()  # causes that are only this one's echo
    support: tuple[Pattern, ...] = ()  # lines that add evidence (and fix groups) once the rule fired
    before_startup_failure: bool = False  # the match must precede a startup failure (crash_on_start)


@dataclass(frozen=True)
class Context:
    """What a fix may name besides the matched text."""

    service: str = ""
    revision: str = ""
    last_healthy: str = ""
    max_instances: str = ""
    project: str = ""
    region: str = ""


@dataclass(frozen=True)
class Signals:
    """What the rules look at: the failing revision's (and service's) conditions, and its log lines, oldest first."""

    conditions: tuple[Condition, ...] = ()
    logs: tuple[LogEntry, ...] = ()
    not_ready: bool = False  # the revision (or service) is not ready: trouble even when no line says why


class _Defaults(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "?"


def _format(fix: Fix, groups: Mapping[str, str]) -> str:
    return fix(groups) if callable(fix) else fix.format_map(_Defaults(groups))


def _port_fix(g: Mapping[str, str]) -> str:
    said = f"; the app says it listens on {g['app_port']}" if g.get("app_port") else ""
    return (
        f"The container never listened on $PORT ({g.get('port') or '8080'}){said}. Make the app bind 0.0.0.0:$PORT, "
        "or set the service's container port to the one the app uses "
        f"(`gcloud run services update {g.get('service') or 'SERVICE'} --port N`)."
    )


def _memory_fix(g: Mapping[str, str]) -> str:
    used = f" above {g['used']} MiB (now {g['limit']} MiB)" if g.get("used") else ""
    return (
        f"Raise the memory limit{used}: `gcloud run services update {g.get('service') or 'SERVICE'} --memory 1Gi`, "
        "or find what grew since the last healthy revision."
    )


# A startup that failed: what a crash has to come before to count as crash_on_start.
_PORT_FAILURE = (
    r"failed to start and listen on the port defined (?:provided )?by the PORT=(?P<port>\d+) environment variable",
    r"Failed to start and then listen on the port defined by the PORT environment variable",
)
_STARTUP_FAILURE = re.compile(
    "|".join(
        (*_PORT_FAILURE, r"STARTUP \w+ probe failed", r"failed the configured startup probe", r"Container called exit")
    )
)

RULES: tuple[Rule, ...] = (
    Rule(
        Cause.SECRET_ACCESS_DENIED,
        (
            p(
                r"Permission denied on secret: (?P<secret>projects/[^\s]+?)(?: for Revision service account "
                r"(?P<account>[^\s]+?))?\.?(?:\s|$)"
            ),
            p(r"secretmanager\.versions\.access"),
        ),
        "Grant the revision's service account ({account}) roles/secretmanager.secretAccessor on {secret}, then "
        "deploy again.",
        reasons=("SECRETS_ACCESS_CHECK_FAILED",),
    ),
    Rule(
        Cause.IMAGE_NOT_FOUND,
        (p(r"Image '(?P<image>[^']+)' not found"), p(r"manifest (?:for \S+ )?unknown"), p(r"Failed to pull image")),
        "Push {image} (or fix the tag) and deploy again; `gcloud artifacts docker images list` shows what exists.",
        reasons=("CONTAINER_MISSING", "CONTAINER_IMAGE_UNAUTHORIZED", "CONTAINER_IMAGE_AUTHORIZATION_CHECK_FAILED"),
    ),
    Rule(
        Cause.OUT_OF_MEMORY,
        (
            p(r"Memory limit of (?P<limit>\d+) ?MiB exceeded with (?P<used>\d+) ?MiB used"),
            p(r"JavaScript heap out of memory"),
            p(r"\bMemoryError\b"),
            p(r"\bOOMKilled\b|Out of memory: Killed process"),
        ),
        _memory_fix,
        explains=(Cause.PORT_MISMATCH, Cause.STARTUP_PROBE_FAILED, Cause.CRASH_ON_START),
    ),
    Rule(
        Cause.DEPENDENCY_UNREACHABLE,
        (
            p(r'connection to server at "?(?P<host>[^",]+)"?,? port (?P<port>\d+) failed'),
            p(r"(?i)Error \d+ connecting to (?P<host>[\w.-]+):(?P<port>\d+)"),
            p(r"ECONNREFUSED (?P<host>[\w.-]+):(?P<port>\d+)"),
            p(r"getaddrinfo (?:ENOTFOUND|EAI_AGAIN) (?P<host>[\w.-]+)"),
            p(r"(?i)could not connect to (?:server|database|redis)"),
            p(r"(?i)Can't connect to MySQL server on '?(?P<host>[\w.-]+)"),
            p(r"(?i)(?:serverless )?VPC (?:access )?connector\S* (?:\S+ )?(?:not found|does not exist|is not ready)"),
        ),
        "The revision cannot reach {host}:{port}: check that the database/Redis is up, the VPC connector or Direct "
        "VPC egress and the firewall, and the address in the service's configuration.",
        reasons=("VPC_NETWORK_NOT_FOUND",),
        explains=(Cause.CRASH_ON_START, Cause.PORT_MISMATCH, Cause.STARTUP_PROBE_FAILED),
    ),
    Rule(
        Cause.CRASH_ON_START,
        (
            p(r"^Traceback \(most recent call last\)"),
            p(
                r"KeyError: '(?P<env>[A-Z][A-Z0-9_]*)'",
                "The app exits at start because {env} is not set: add it back (`gcloud run services update {service} "
                "--update-env-vars {env}=...` or a secret), or roll back to {last_healthy}.",
            ),
            p(
                r"(?i)(?:environment variable|env var)\s+['\"]?(?P<env>[A-Z][A-Z0-9_]*)['\"]?\s+(?:is not set|is "
                r"missing|is required|not found)",
                "The app exits at start because {env} is not set: add it (`gcloud run services update {service} "
                "--update-env-vars {env}=...` or a secret), or roll back to {last_healthy}.",
            ),
            p(
                r"(?i)missing required environment variable:?\s+['\"]?(?P<env>[A-Z][A-Z0-9_]*)",
                "The app exits at start because {env} is not set: add it, or roll back to {last_healthy}.",
            ),
            p(
                r"\b(?:ModuleNotFoundError|ImportError): (?P<detail>.+)",
                "The image cannot import what it needs ({detail}): fix the build's dependencies and redeploy, or roll "
                "back to {last_healthy}.",
            ),
            p(
                r"Error: Cannot find module '(?P<detail>[^']+)'",
                "The image cannot find {detail}: fix the build and redeploy, or roll back to {last_healthy}.",
            ),
            p(r"^panic: |Exception in thread \"main\"|\bSyntaxError: "),
        ),
        "The app crashes while starting: fix the error above, or roll back to {last_healthy}.",
        explains=(Cause.PORT_MISMATCH, Cause.STARTUP_PROBE_FAILED),
        before_startup_failure=True,
    ),
    Rule(
        Cause.PORT_MISMATCH,
        tuple(p(regex) for regex in _PORT_FAILURE),
        _port_fix,
        explains=(Cause.STARTUP_PROBE_FAILED,),
        support=(p(r"(?i)(?:listening|running|serving) on (?:https?://)?[\w.\[\]-]*:(?P<app_port>\d+)"),),
    ),
    Rule(
        Cause.STARTUP_PROBE_FAILED,
        (
            p(
                r"STARTUP (?P<kind>TCP|HTTP|GRPC) probe failed (?P<count>\d+) times? consecutively for container "
                r'"(?P<container>[^"]+)" on (?:port (?P<port>\d+)|path "(?P<path>[^"]+)")'
            ),
            p(r"failed the configured startup probe"),
        ),
        "The startup probe gave up before the app was ready: make it answer sooner, or give the probe more time "
        "(initialDelaySeconds, failureThreshold x periodSeconds).",
    ),
    Rule(
        Cause.QUOTA_OR_SCALING,
        (
            p(r"The request was aborted because there was no available instance"),
            p(r"(?i)\bquota exceeded\b|\bRESOURCE_EXHAUSTED\b"),
            p(r"(?i)max(?:imum)? (?:number of )?instances? (?:limit )?(?:reached|exceeded)"),
            p(r"\b429 Too Many Requests\b"),
        ),
        "Requests find no free instance: raise max instances (now {max_instances}) or concurrency, or check the "
        "region's quota.",
        reasons=("MIN_INSTANCES_NOT_PROVISIONED", "ACTIVE_REVISION_LIMIT_REACHED"),
        confidence=Confidence.MEDIUM,
    ),
)

# What a bare reason code means, for `revision_not_ready` when no line says more.
REASON_HINTS = {
    "PROGRESS_DEADLINE_EXCEEDED": "the revision did not become ready before the deployment deadline",
    "HEALTH_CHECK_CONTAINER_ERROR": "the container failed its health check",
    "CONTAINER_PERMISSION_DENIED": "the runtime service account may not use the container",
    "ENCRYPTION_KEY_PERMISSION_DENIED": "the runtime service account may not use the CMEK key",
    "ENCRYPTION_KEY_CHECK_FAILED": "the CMEK key check failed",
    "INTERNAL": "Cloud Run reported an internal error",
}


# Reasons that only say "it failed": they name no cause, so they do not make a `revision_not_ready` finding.
GENERIC_REASONS = frozenset({"REVISION_FAILED", "UNKNOWN"})


@dataclass
class _Hit:
    rule: Rule
    evidence: list[str] = field(default_factory=list)
    groups: dict[str, str] = field(default_factory=dict)
    fix: Fix | None = None


@dataclass(frozen=True)
class _Line:
    text: str
    at: datetime | None  # None: a condition message (as recent as the revision's state)
    severity: str = "ERROR"


def _lines(signals: Signals) -> list[_Line]:
    lines = [_Line(e.text, e.timestamp, e.severity) for e in signals.logs if e.text]
    lines += [_Line(c.message, None) for c in signals.conditions if c.message]
    return lines


def _latest_startup_failure(lines: Sequence[_Line]) -> tuple[bool, datetime | None]:
    """Return (seen, when): `when` None means a condition says so (later than any log line)."""
    seen, latest = False, None
    for line in lines:
        if _STARTUP_FAILURE.search(line.text):
            if line.at is None:
                return True, None
            seen, latest = True, line.at if latest is None or line.at > latest else latest
    return seen, latest


def _add(evidence: list[str], text: str) -> None:
    if len(evidence) < MAX_EVIDENCE and not any(text in e for e in evidence):
        evidence.append(text)


def _evaluate(rule: Rule, lines: Sequence[_Line], reasons: Iterable[str]) -> _Hit | None:
    hit = _Hit(rule)
    if rule.before_startup_failure:
        failed, when = _latest_startup_failure(lines)
        if not failed:
            return None
        lines = [line for line in lines if line.at is not None and (when is None or line.at <= when)]
    matched = False
    for line in lines:
        for pattern in rule.patterns:
            match = pattern.regex.search(line.text)
            if match:
                matched = True
                _add(hit.evidence, line.text)
                hit.groups.update({k: v for k, v in match.groupdict().items() if v and k not in hit.groups})
                if pattern.fix is not None and hit.fix is None:
                    hit.fix = pattern.fix
                break
    reason_hit = [r for r in reasons if r in rule.reasons]
    if not matched and not reason_hit:
        return None
    for reason in reason_hit:
        _add(hit.evidence, f"reason: {reason}")
    for line in lines:
        for pattern in rule.support:
            match = pattern.regex.search(line.text)
            if match:
                _add(hit.evidence, line.text)
                hit.groups.update({k: v for k, v in match.groupdict().items() if v and k not in hit.groups})
    return hit


def _context_groups(context: Context) -> dict[str, str]:
    return {k: v for k, v in vars(context).items() if v}


def find_causes(signals: Signals, context: Context = Context()) -> tuple[Finding, ...]:
    """Return the findings for a revision's signals, most likely first (empty when nothing looks wrong)."""
    lines = _lines(signals)
    reasons = [c.reason for c in signals.conditions if c.reason and c.is_failed and c.reason not in GENERIC_REASONS]
    hits = [hit for rule in RULES if (hit := _evaluate(rule, lines, reasons)) is not None]
    explained = {cause for hit in hits for cause in hit.rule.explains}
    kept = [hit for hit in hits if hit.rule.cause not in explained]
    for hit in kept:  # an echo's lines are evidence for its cause
        for echo in hits:
            if echo.rule.cause in hit.rule.explains:
                for line in echo.evidence:
                    _add(hit.evidence, line)
    if kept:
        findings = [
            Finding(
                cause=hit.rule.cause,
                confidence=hit.rule.confidence,
                evidence=tuple(hit.evidence),
                fix=_format(hit.fix or hit.rule.fix, {**_context_groups(context), **hit.groups}),
            )
            for hit in kept
        ]
        order = list(Confidence)
        return tuple(sorted(findings, key=lambda f: order.index(f.confidence)))
    return _fallback(signals, lines, reasons, context)


def _severity(line: _Line) -> int:
    return _SEVERITY_RANK.get(line.severity, _SEVERITY_RANK["ERROR"])


def _fallback(
    signals: Signals, lines: Sequence[_Line], reasons: Sequence[str], context: Context
) -> tuple[Finding, ...]:
    """Return `revision_not_ready` (a reason and nothing more), `unknown` (trouble no rule knows), or nothing."""
    failed = [c for c in signals.conditions if c.is_failed]
    rollback = context.last_healthy or "the last ready revision"
    if reasons:
        hint = REASON_HINTS.get(reasons[0], "Cloud Run gave no more detail")
        evidence = tuple(dict.fromkeys([f"reason: {reasons[0]}", *(c.message for c in failed if c.message)]))
        fix = f"{reasons[0]}: {hint}. Look at the revision in the console, or roll back to {rollback}."
        return (Finding(Cause.REVISION_NOT_READY, Confidence.MEDIUM, evidence, fix),)
    logged = [line for line in lines if line.at is not None]
    warnings = [line for line in logged if _severity(line) >= _SEVERITY_RANK["WARNING"]]
    has_errors = any(_severity(line) >= _SEVERITY_RANK["ERROR"] for line in logged)
    if not (signals.not_ready or failed or has_errors):
        return ()
    excerpt = [line.text for line in (warnings or logged)][-MAX_EVIDENCE:]
    excerpt += [c.message for c in failed if c.message][: MAX_EVIDENCE - len(excerpt)]
    fix = f"No known pattern matched: read the log excerpt, and compare with {rollback} (see changes)."
    return (Finding(Cause.UNKNOWN, Confidence.LOW, tuple(excerpt), fix),)
