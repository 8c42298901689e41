"""A Cloud Run Admin API v2 stand-in: the REST paths, JSON shapes, etags and long-running operations of the real one.

What it serves (every path under `/v2/projects/{p}/locations/{l}`; shared/reference/cloud-run.md):
`GET services/{s}`, `PATCH services/{s}[?updateMask=traffic]` (an Operation), `GET services/{s}/revisions` (paged),
`GET services/{s}/revisions/{r}` and `GET operations/{id}`. Errors are `{"error": {"code", "message", "status"}}`.

Faults are set at run time: `fail(403, call="get_service")`, a per-call `delays_s`, an operation that ends in error
code 9. `on_ready(service)` is called when an update's operation completes, so a restart can really heal the
sandbox staging.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

Json = dict[str, Any]
SERVICE_TYPE = "type.googleapis.com/google.cloud.run.v2.Service"
_PREFIX = "/v2/projects/{project}/locations/{location}"
# google.rpc.Code names for the HTTP statuses the stand-in answers with.
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 409: "ABORTED", 429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}  # fmt: skip
# What a real call needs, for the 403 message.
_PERMISSIONS = {
    "get_service": "run.services.get",
    "update_service": "run.services.update",
    "list_revisions": "run.revisions.list",
    "get_revision": "run.revisions.get",
    "get_operation": "run.operations.get",
}
# The int encoding of TrafficTargetAllocationType (requests are sent with enum-encoding=int).
_TRAFFIC_TYPES = {1: "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", 2: "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION"}


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def error_body(status: int, message: str) -> Json:
    return {"error": {"code": status, "message": message, "status": _STATUS_NAMES.get(status, "UNKNOWN")}}


@dataclass
class Fault:
    """An error answer: for one call name (or every call), one service (or every one), `times` times (None: always)."""

    status: int
    call: str | None = None
    service: str | None = None
    times: int | None = None
    message: str | None = None


@dataclass
class _Operation:
    name: str
    service: str  # full resource name
    polls_left: int
    error: Json | None
    apply: Callable[[], None]
    done: bool = False


@dataclass
class CloudRunStandIn:
    """The state of the stand-in: services and revisions (wire JSON), operations, faults and the calls received."""

    services: dict[str, Json] = field(default_factory=dict)  # full name -> Service
    revisions: dict[str, Json] = field(default_factory=dict)  # full name -> Revision
    polls_to_done: int = 1  # operation GETs answered `done: false` before the one that completes
    delay_s: float = 0.0  # added to every answer
    delays_s: dict[str, float] = field(default_factory=dict)  # per call name
    faults: list[Fault] = field(default_factory=list)
    failing_operations: set[str] = field(default_factory=set)  # short service names whose next update fails (code 9)
    on_ready: Callable[[str], None] | None = None  # called with the short service name when an update completes
    calls: list[tuple[str, str]] = field(default_factory=list)  # (call name, resource) in arrival order
    _operations: dict[str, _Operation] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- set-up ------------------------------------------------------------
    def add_service(self, service: Json, revisions: list[Json]) -> None:
        """Add a service (wire JSON with a full `name`) and its revisions."""
        self.services[service["name"]] = copy.deepcopy(service)
        for revision in revisions:
            self.revisions[revision["name"]] = copy.deepcopy(revision)

    def fail(
        self, status: int, *, call: str | None = None, service: str | None = None, times: int | None = None,
        message: str | None = None,
    ) -> None:  # fmt: skip
        """Answer matching calls with `status` from now on."""
        self.faults.append(Fault(status, call, service, times, message))

    def count(self, call: str) -> int:
        """Return how many `call` requests arrived."""
        return sum(1 for name, _ in self.calls if name == call)

    # -- plumbing ----------------------------------------------------------
    async def _enter(self, call: str, request: Request, resource: str) -> Response | None:
        self.calls.append((call, resource))
        delay = self.delays_s.get(call, self.delay_s)
        if delay:
            await asyncio.sleep(delay)
        service = request.path_params.get("service")
        for fault in self.faults:
            if (fault.call in (None, call)) and (fault.service in (None, service)) and fault.times != 0:
                if fault.times is not None:
                    fault.times -= 1
                return JSONResponse(
                    error_body(fault.status, fault.message or self._message(fault.status, call, resource)), fault.status
                )
        return None

    @staticmethod
    def _message(status: int, call: str, resource: str) -> str:
        if status == 403:
            permission = _PERMISSIONS.get(call, call)
            return f"Permission '{permission}' denied on resource '{resource}' (or resource may not exist)."
        if status == 404:
            return f"Resource '{resource}' was not found"
        if status == 503:
            return "The service is currently unavailable."
        return "Internal error encountered."

    @staticmethod
    def _service_name(request: Request) -> str:
        p = request.path_params
        return f"projects/{p['project']}/locations/{p['location']}/services/{p['service']}"

    def _not_found(self, resource: str) -> Response:
        return JSONResponse(error_body(404, f"Resource '{resource}' was not found"), 404)

    # -- handlers ----------------------------------------------------------
    async def get_service(self, request: Request) -> Response:
        name = self._service_name(request)
        failed = await self._enter("get_service", request, name)
        if failed:
            return failed
        if name not in self.services:
            return self._not_found(name)
        return JSONResponse(self.services[name])

    async def list_revisions(self, request: Request) -> Response:
        parent = self._service_name(request)
        failed = await self._enter("list_revisions", request, parent)
        if failed:
            return failed
        if parent not in self.services:
            return self._not_found(parent)
        found = sorted(
            (r for r in self.revisions.values() if r["service"] == parent), key=lambda r: r["createTime"], reverse=True
        )
        size = int(request.query_params.get("pageSize") or 20)
        start = int(request.query_params.get("pageToken") or 0)
        body: Json = {"revisions": found[start : start + size]}
        if start + size < len(found):
            body["nextPageToken"] = str(start + size)
        return JSONResponse(body)

    async def get_revision(self, request: Request) -> Response:
        name = f"{self._service_name(request)}/revisions/{request.path_params['revision']}"
        failed = await self._enter("get_revision", request, name)
        if failed:
            return failed
        if name not in self.revisions:
            return self._not_found(name)
        return JSONResponse(self.revisions[name])

    async def update_service(self, request: Request) -> Response:
        name = self._service_name(request)
        failed = await self._enter("update_service", request, name)
        if failed:
            return failed
        current = self.services.get(name)
        if current is None:
            return self._not_found(name)
        body: Json = await request.json()
        if body.get("etag") and body["etag"] != current["etag"]:
            message = f"Resource '{name}' has been modified: etag {body['etag']} does not match {current['etag']}."
            return JSONResponse(error_body(409, message), 409)
        mask = request.query_params.get("updateMask", "")
        paths = {p.strip() for p in mask.split(",") if p.strip()}
        if paths and not paths <= {"traffic"}:
            return JSONResponse(error_body(400, f"updateMask {mask!r}: only 'traffic' is supported here"), 400)
        new_template = None if paths else body.get("template")
        if new_template is not None:
            clash = self._revision_clash(name, new_template)
            if clash:
                return JSONResponse(error_body(409, clash), 409)
        traffic = [self._traffic_from_request(t) for t in body["traffic"]] if "traffic" in body else None
        # The etag and generation move at once, so a second update with the old etag is refused while this runs.
        current["generation"] = int(current.get("generation", 1)) + 1
        current["etag"] = f'"{secrets.token_hex(8)}"'
        current["reconciling"] = True
        short = name.rsplit("/", 1)[-1]
        error = None
        if short in self.failing_operations:
            self.failing_operations.discard(short)
            error = {
                "code": 9,
                "message": f"Revision of service '{short}' could not be created: the update was rejected.",
            }
        p = request.path_params
        op_name = f"projects/{p['project']}/locations/{p['location']}/operations/op-{next(self._ids):04d}"
        apply = lambda: self._apply(name, new_template, traffic, failed=error is not None)  # noqa: E731
        operation = _Operation(op_name, name, self.polls_to_done, error, apply)
        self._operations[op_name] = operation
        if operation.polls_left <= 0:
            self._complete(operation)
        return JSONResponse(self._operation_json(operation))

    async def get_operation(self, request: Request) -> Response:
        p = request.path_params
        name = f"projects/{p['project']}/locations/{p['location']}/operations/{p['operation']}"
        failed = await self._enter("get_operation", request, name)
        if failed:
            return failed
        operation = self._operations.get(name)
        if operation is None:
            return self._not_found(name)
        if not operation.done:
            operation.polls_left -= 1
            if operation.polls_left < 0:
                self._complete(operation)
        return JSONResponse(self._operation_json(operation))

    # -- the effects of an update ------------------------------------------
    def _revision_clash(self, service: str, template: Json) -> str | None:
        wanted = template.get("revision")
        if not wanted:
            return None
        existing = self.revisions.get(f"{service}/revisions/{wanted}")
        if existing is not None and existing.get("containers") != template.get("containers"):
            return f"Revision named '{wanted}' with different configuration already exists."
        return None

    @staticmethod
    def _traffic_from_request(target: Json) -> Json:
        kind = target.get("type", 1)
        out: Json = {
            "type": _TRAFFIC_TYPES.get(kind, kind) if isinstance(kind, int) else kind,
            "percent": int(target.get("percent", 0)),
        }
        if target.get("revision"):
            out["revision"] = target["revision"]
        return out

    def _complete(self, operation: _Operation) -> None:
        operation.done = True
        operation.apply()
        if operation.error is None and self.on_ready is not None:
            self.on_ready(operation.service.rsplit("/", 1)[-1])

    def _apply(self, name: str, template: Json | None, traffic: list[Json] | None, *, failed: bool) -> None:
        service = self.services[name]
        service["reconciling"] = False
        if failed:
            return
        now = rfc3339(datetime.now(UTC))
        if template is not None:
            short = name.rsplit("/", 1)[-1]
            revision = template.get("revision") or f"{short}-{service['generation']:05d}-{secrets.token_hex(2)[:3]}"
            full = f"{name}/revisions/{revision}"
            service["template"] = _template_from_request(template)
            self.revisions[full] = {
                "name": full,
                "service": name,
                "generation": str(service["generation"]),
                "createTime": now,
                "containers": copy.deepcopy(service["template"].get("containers", [])),
                "scaling": copy.deepcopy(service["template"].get("scaling", {})),
                "conditions": [
                    {"type": "Ready", "state": "CONDITION_SUCCEEDED", "lastTransitionTime": now},
                    {"type": "ContainerHealthy", "state": "CONDITION_SUCCEEDED", "lastTransitionTime": now},
                ],
            }
            service["latestCreatedRevision"] = full
            service["latestReadyRevision"] = full
            service["terminalCondition"] = {"type": "Ready", "state": "CONDITION_SUCCEEDED", "lastTransitionTime": now}
        if traffic is not None:
            service["traffic"] = traffic
        service["trafficStatuses"] = [
            {
                "type": t["type"],
                "revision": t.get("revision") or service["latestReadyRevision"].rsplit("/", 1)[-1],
                "percent": t["percent"],
            }
            for t in service.get("traffic", [])
        ]
        service["observedGeneration"] = service["generation"]

    def _operation_json(self, operation: _Operation) -> Json:
        service = self.services[operation.service]
        body: Json = {
            "name": operation.name,
            "done": operation.done,
            "metadata": {"@type": SERVICE_TYPE, **_response_fields(service)},
        }
        if operation.done:
            if operation.error is not None:
                body["error"] = operation.error
            else:
                body["response"] = {"@type": SERVICE_TYPE, **_response_fields(service)}
        return body

    def app(self) -> Starlette:
        """Return the ASGI app serving the API."""
        return Starlette(
            routes=[
                Route(_PREFIX + "/services/{service}", self.get_service, methods=["GET"]),
                Route(_PREFIX + "/services/{service}", self.update_service, methods=["PATCH"]),
                Route(_PREFIX + "/services/{service}/revisions", self.list_revisions, methods=["GET"]),
                Route(_PREFIX + "/services/{service}/revisions/{revision}", self.get_revision, methods=["GET"]),
                Route(_PREFIX + "/operations/{operation}", self.get_operation, methods=["GET"]),
            ]
        )


# Fields of a request's template the stand-in keeps (the rest is output-only or irrelevant to the story).
_TEMPLATE_FIELDS = ("labels", "annotations", "containers", "scaling", "serviceAccount", "revision")


def _template_from_request(template: Json) -> Json:
    kept = {k: copy.deepcopy(v) for k, v in template.items() if k in _TEMPLATE_FIELDS}
    kept.pop("revision", None)
    return kept


def _response_fields(service: Json) -> Json:
    # Operation parsing is strict (an unknown field is a ParseError), so only Service fields go in.
    return copy.deepcopy(service)
