"""A Cloud Logging stand-in: `POST /v2/entries:list` with enough of the query language for Cloud Run diagnosis.

The filter understands comparisons (`=`, `!=`, `>`, `>=`, `<`, `<=`, `:`) on dotted fields (`resource.labels.X`,
`logName`, `severity`, `timestamp`, `textPayload`, `jsonPayload.message`), `AND` (or juxtaposition), `OR`, `NOT`
and parentheses. As in the real language, OR binds tighter than AND. Severities compare by rank, timestamps as times.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.cloud_run import error_body

Json = dict[str, Any]
Predicate = Callable[[Json], bool]

SEVERITIES = ("DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT", "EMERGENCY")
_TOKEN = re.compile(
    r'\s*(?:(?P<paren>[()])|(?P<string>"(?:[^"\\]|\\.)*")|(?P<op>>=|<=|!=|=|>|<|:)|(?P<word>[^\s()"=<>!:]+))'
)


class FilterError(ValueError):
    """A filter the stand-in cannot parse (the real API answers 400 INVALID_ARGUMENT)."""


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None:
            raise FilterError(f"unexpected character at {position}: {text[position : position + 10]!r}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "string":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        out.append((kind, value))
        position = match.end()
    return out


def _field(entry: Json, path: str) -> Any:
    value: Any = entry
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _compare(actual: Any, op: str, wanted: str, path: str) -> bool:
    if actual is None:
        return op == "!="
    left: Any
    right: Any
    if path == "severity":
        rank = SEVERITIES.index(str(actual)) if str(actual) in SEVERITIES else 0
        other = SEVERITIES.index(wanted.upper()) if wanted.upper() in SEVERITIES else 0
        left, right = rank, other
    elif path in ("timestamp", "receiveTimestamp"):
        left, right = _parse_time(str(actual)), _parse_time(wanted)
    else:
        left, right = str(actual), wanted
    if op == ":":
        return str(wanted).lower() in str(actual).lower()
    outcomes: dict[str, bool] = {
        "=": left == right, "!=": left != right, ">": left > right, ">=": left >= right, "<": left < right,
        "<=": left <= right,
    }  # fmt: skip
    return outcomes[op]


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.at = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise FilterError("unexpected end of filter")
        self.at += 1
        return token

    def parse(self) -> Predicate:
        if not self.tokens:
            return lambda entry: True
        predicate = self.conjunction()
        if self.peek() is not None:
            raise FilterError(f"unexpected {self.peek()}")
        return predicate

    def conjunction(self) -> Predicate:
        parts = [self.disjunction()]
        while (token := self.peek()) is not None and token != ("paren", ")"):
            if token == ("word", "AND"):
                self.take()
            parts.append(self.disjunction())
        return lambda entry: all(p(entry) for p in parts)

    def disjunction(self) -> Predicate:
        parts = [self.unary()]
        while self.peek() == ("word", "OR"):
            self.take()
            parts.append(self.unary())
        return lambda entry: any(p(entry) for p in parts)

    def unary(self) -> Predicate:
        kind, value = self.take()
        if (kind, value) == ("word", "NOT") or (kind == "word" and value == "-"):
            inner = self.unary()
            return lambda entry: not inner(entry)
        if (kind, value) == ("paren", "("):
            inner = self.conjunction()
            if self.take() != ("paren", ")"):
                raise FilterError("expected )")
            return inner
        if kind != "word":
            raise FilterError(f"expected a field name, got {value!r}")
        path = value
        op_kind, op = self.take()
        if op_kind != "op":
            raise FilterError(f"expected a comparison after {path!r}, got {op!r}")
        value_kind, wanted = self.take()
        if value_kind not in ("string", "word"):
            raise FilterError(f"expected a value after {path}{op}")
        return lambda entry: _compare(_field(entry, path), op, wanted, path)


def parse_filter(text: str) -> Predicate:
    """Return a predicate over wire-format entries for a Logging filter."""
    return _Parser(text).parse()


@dataclass
class CloudLoggingStandIn:
    """Entries (wire JSON), the requests received, and faults to answer with."""

    entries: list[Json] = field(default_factory=list)
    delay_s: float = 0.0
    failures: list[tuple[int, int | None]] = field(default_factory=list)  # (status, times or None: always)
    requests: list[Json] = field(default_factory=list)  # every entries:list body, in arrival order

    def add(self, entries: list[Json]) -> None:
        self.entries.extend(entries)

    def fail(self, status: int, *, times: int | None = None) -> None:
        """Answer `entries:list` with `status` from now on (`times` times, or always)."""
        self.failures.append((status, times))

    async def list_entries(self, request: Request) -> Response:
        body: Json = await request.json()
        self.requests.append(body)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        for i, (status, times) in enumerate(self.failures):
            if times != 0:
                self.failures[i] = (status, None if times is None else times - 1)
                message = "Permission 'logging.logEntries.list' denied" if status == 403 else "Logging is unavailable."
                return JSONResponse(error_body(status, message), status)
        try:
            predicate = parse_filter(body.get("filter", ""))
        except FilterError as exc:
            return JSONResponse(error_body(400, f"Invalid filter: {exc}"), 400)
        projects = {name for name in body.get("resourceNames", [])}
        found = [e for e in self.entries if e["logName"].split("/logs/", 1)[0] in projects and predicate(e)]
        descending = body.get("orderBy", "timestamp asc").strip().lower().endswith("desc")
        found.sort(key=lambda e: _parse_time(e["timestamp"]), reverse=descending)
        size = int(body.get("pageSize") or 50)
        start = int(body.get("pageToken") or 0)
        answer: Json = {"entries": found[start : start + size]}
        if start + size < len(found):
            answer["nextPageToken"] = str(start + size)
        return JSONResponse(answer)

    def app(self) -> Starlette:
        """Return the ASGI app serving the API."""
        return Starlette(routes=[Route("/v2/entries:list", self.list_entries, methods=["POST"])])
