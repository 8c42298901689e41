"""Turn the many ways a connection fails into one short, readable reason."""

from __future__ import annotations

import errno
import socket
import ssl


class ProbeFailure(Exception):
    """A failure whose message is already the reason on-call should read."""


def describe_failure(exc: BaseException, timeout_s: float) -> str:
    """Return a one-line reason for a failed attempt, the same wording for every probe kind."""
    if isinstance(exc, ProbeFailure):
        return str(exc)
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout_s:g}s"
    for cause in _chain(exc):
        if isinstance(cause, socket.gaierror):
            return f"name does not resolve ({cause.strerror or cause})"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ConnectionResetError):
            return "connection reset by peer"
        if isinstance(cause, ssl.SSLError):
            return f"TLS error: {cause.reason or cause}"
        if isinstance(cause, OSError) and cause.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return "host unreachable"
        if isinstance(cause, TimeoutError):
            return f"no answer within {timeout_s:g}s"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _chain(exc: BaseException) -> list[BaseException]:
    """Return the exception and its causes, outermost first (libraries wrap socket errors several deep)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen
