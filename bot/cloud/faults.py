"""Turn what the google clients raise into one `CloudError` that says what went wrong in words on-call can act on."""

from __future__ import annotations

import re
from enum import StrEnum

import requests
from google.api_core import exceptions as gexc

_REQUEST_PREFIX = re.compile(r"^(?:GET|POST|PATCH|PUT|DELETE) \S+: ")


class FaultKind(StrEnum):
    PERMISSION_DENIED = "permission_denied"
    NOT_FOUND = "not_found"
    TIMEOUT = "timeout"
    UNAVAILABLE = "unavailable"  # 5xx, connection refused
    CONFLICT = "conflict"  # stale etag, revision name clash
    FAILED = "failed"  # an operation that ended in an error, or any other API error


class CloudError(Exception):
    """A Cloud Run or Cloud Logging call that did not give an answer the bot can use."""

    def __init__(self, kind: FaultKind, message: str, *, permission: str = "", resource: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.permission = permission
        self.resource = resource


def to_cloud_error(exc: BaseException, *, call: str, permission: str, resource: str) -> CloudError:
    """Return the `CloudError` for an exception raised by a google client while doing `call` on `resource`."""
    detail = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    # REST errors read "PATCH http://host/v2/...?$alt=json: <message>": keep the API's message.
    detail = _REQUEST_PREFIX.sub("", str(detail))
    # A REST 403 arrives as `Forbidden`; `PermissionDenied` is only its subclass (shared/reference/cloud-run.md).
    if isinstance(exc, gexc.Forbidden | gexc.Unauthorized):
        return CloudError(
            FaultKind.PERMISSION_DENIED,
            f"the bot's service account lacks {permission} on {resource} ({detail})",
            permission=permission,
            resource=resource,
        )
    if isinstance(exc, gexc.NotFound):
        return CloudError(FaultKind.NOT_FOUND, f"{resource} was not found ({detail})", resource=resource)
    if isinstance(exc, gexc.Conflict):
        return CloudError(FaultKind.CONFLICT, f"{call} on {resource} was refused: {detail}", resource=resource)
    if isinstance(exc, gexc.DeadlineExceeded | gexc.RetryError | TimeoutError | requests.Timeout):
        return CloudError(FaultKind.TIMEOUT, f"{call} on {resource} timed out", resource=resource)
    if isinstance(exc, gexc.ServerError | gexc.TooManyRequests | ConnectionError | OSError):
        return CloudError(FaultKind.UNAVAILABLE, f"{call} on {resource} failed: {detail}", resource=resource)
    return CloudError(FaultKind.FAILED, f"{call} on {resource} failed: {detail}", resource=resource)
