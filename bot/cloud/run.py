"""`CloudRun`: read a service and its revisions, and update it, through the real `google-cloud-run` REST clients.

The library has no async REST transport (shared/reference/cloud-run.md), so every call runs the sync client on an
executor. The caller sizes that executor: twenty services diagnosed at once are sixty calls in flight, and the
default executor (min(32, cpus + 4) threads) would queue them.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from datetime import datetime
from typing import Any, TypeVar

from google.api_core.future import polling
from google.cloud import run_v2
from google.protobuf import field_mask_pb2

from bot.cloud.faults import CloudError, to_cloud_error
from bot.cloud.models import (
    Condition,
    ConditionState,
    ContainerSpec,
    RevisionInfo,
    Scaling,
    ServiceChange,
    ServiceInfo,
    TrafficTarget,
)
from bot.config import CloudRunRef

T = TypeVar("T")

RESTART_LABEL = "stagebot-restart"

# IAM permission each call needs: named in the finding when the bot's service account lacks it.
PERMISSIONS = {
    "get_service": "run.services.get",
    "list_revisions": "run.revisions.list",
    "get_revision": "run.revisions.get",
    "update_service": "run.services.update",
}


class CloudRun:
    """Cloud Run v2 services and revisions, as plain values."""

    def __init__(
        self,
        services: run_v2.ServicesClient,
        revisions: run_v2.RevisionsClient,
        *,
        executor: Executor | None = None,
        timeout_s: float = 10.0,
        poll_interval_s: float = 1.0,
        operation_timeout_s: float = 300.0,
    ) -> None:
        self._services = services
        self._revisions = revisions
        self._executor = executor
        self._timeout_s = timeout_s
        self._operation_timeout_s = operation_timeout_s
        self._polling = polling.DEFAULT_POLLING.with_delay(
            initial=poll_interval_s, maximum=max(poll_interval_s, poll_interval_s * 8), multiplier=1.5
        )

    async def get_service(self, ref: CloudRunRef) -> ServiceInfo:
        """Return the service's state, conditions, traffic and etag."""
        # retry=None: the default retries a 503 for ~10 s, longer than a diagnosis should wait for one answer.
        call = functools.partial(
            self._services.get_service, name=ref.resource_name, retry=None, timeout=self._timeout_s
        )
        return to_service_info(await self._run("get_service", ref.resource_name, call))

    async def list_revisions(self, ref: CloudRunRef, *, limit: int = 20) -> tuple[RevisionInfo, ...]:
        """Return the service's newest `limit` revisions, newest first."""

        def fetch() -> list[run_v2.Revision]:
            pager = self._revisions.list_revisions(
                request=run_v2.ListRevisionsRequest(parent=ref.resource_name, page_size=min(limit, 100)),
                retry=None,
                timeout=self._timeout_s,
            )
            found: list[run_v2.Revision] = []
            for revision in pager:
                found.append(revision)
                if len(found) >= limit:
                    break
            return found

        revisions = [to_revision_info(r) for r in await self._run("list_revisions", ref.resource_name, fetch)]
        return tuple(sorted(revisions, key=lambda r: r.created.timestamp() if r.created else 0.0, reverse=True))

    async def get_revision(self, ref: CloudRunRef, revision: str) -> RevisionInfo:
        """Return one revision by its short name."""
        name = f"{ref.resource_name}/revisions/{revision}"
        call = functools.partial(self._revisions.get_revision, name=name, retry=None, timeout=self._timeout_s)
        return to_revision_info(await self._run("get_revision", name, call))

    async def update_service(self, ref: CloudRunRef, change: ServiceChange, *, etag: str) -> ServiceInfo:
        """Apply `change` if the service still has `etag`, wait for the operation and return the updated service.

        A stale etag raises `CloudError(CONFLICT)` and changes nothing: the service moved on since it was read.
        """
        return to_service_info(
            await self._run("update_service", ref.resource_name, functools.partial(self._update, ref, change, etag))
        )

    def _update(self, ref: CloudRunRef, change: ServiceChange, etag: str) -> run_v2.Service:
        if change.touches_template:
            service = self._services.get_service(name=ref.resource_name, retry=None, timeout=self._timeout_s)
            # Echoing the current revision name with a changed template is answered 409 "with different
            # configuration already exists": a cleared name lets Cloud Run name the new revision.
            service.template.revision = ""
            if change.restart_token is not None:
                service.template.labels[RESTART_LABEL] = change.restart_token
            if change.image is not None:
                service.template.containers[0].image = change.image
            mask = None
        else:
            service = run_v2.Service(name=ref.resource_name)
            mask = field_mask_pb2.FieldMask(paths=["traffic"])
        if change.traffic is not None:
            service.traffic = [to_sdk_traffic(t) for t in change.traffic]
        service.etag = etag
        operation = self._services.update_service(
            request=run_v2.UpdateServiceRequest(service=service, update_mask=mask),
            retry=None,
            timeout=self._timeout_s,
        )
        updated: run_v2.Service = operation.result(  # type: ignore[no-untyped-call]
            timeout=self._operation_timeout_s, polling=self._polling
        )
        return updated

    async def _run(self, call: str, resource: str, fn: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn)
        except CloudError:
            raise
        except Exception as exc:
            raise to_cloud_error(exc, call=call, permission=PERMISSIONS[call], resource=resource) from exc


# -- translation: SDK objects -> our values --------------------------------------------------------------------


def _short(name: str) -> str:
    return name.rsplit("/", 1)[-1] if name else name


def _optional(name: str) -> str | None:
    return _short(name) or None


def _datetime(value: Any) -> datetime | None:
    # proto-plus turns Timestamp fields into DatetimeWithNanoseconds; an unset one is the epoch.
    if value is None or not isinstance(value, datetime) or value.timestamp() == 0:
        return None
    return datetime.fromtimestamp(value.timestamp(), tz=value.tzinfo)


def to_condition(condition: run_v2.Condition) -> Condition:
    """Return our `Condition` for an SDK one, with whichever reason field is set."""
    reason: str | None = None
    for field_name, undefined in (
        ("reason", "COMMON_REASON_UNDEFINED"),
        ("revision_reason", "REVISION_REASON_UNDEFINED"),
        ("execution_reason", "EXECUTION_REASON_UNDEFINED"),
    ):
        if field_name in condition:
            value = getattr(condition, field_name)
            name = getattr(value, "name", str(value))
            if name != undefined:
                reason = name
                break
    state_name = getattr(condition.state, "name", "STATE_UNSPECIFIED")
    return Condition(
        type=condition.type_,
        state=ConditionState(state_name)
        if state_name in ConditionState._value2member_map_
        else ConditionState.UNSPECIFIED,
        reason=reason,
        message=condition.message,
        last_transition=_datetime(condition.last_transition_time),
    )


def to_container_spec(container: run_v2.Container) -> ContainerSpec:
    """Return a container's image, env names (never values), limits, ports and whether it has a startup probe."""
    return ContainerSpec(
        name=container.name,
        image=container.image,
        env_names=tuple(e.name for e in container.env),
        limits=dict(container.resources.limits),
        ports=tuple(p.container_port for p in container.ports),
        has_startup_probe="startup_probe" in container,
    )


def _traffic(targets: Iterable[Any]) -> tuple[TrafficTarget, ...]:
    latest = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST
    return tuple(
        TrafficTarget(percent=t.percent, revision=_optional(t.revision), is_latest=t.type_ == latest) for t in targets
    )


def to_sdk_traffic(target: TrafficTarget) -> run_v2.TrafficTarget:
    """Return the SDK traffic target for ours (the way back, for a rollback)."""
    if target.is_latest or target.revision is None:
        return run_v2.TrafficTarget(
            type_=run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST, percent=target.percent
        )
    return run_v2.TrafficTarget(
        type_=run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION,
        revision=target.revision,
        percent=target.percent,
    )


def to_service_info(service: run_v2.Service) -> ServiceInfo:
    """Return our `ServiceInfo` for an SDK `Service`."""
    return ServiceInfo(
        name=service.name,
        etag=service.etag,
        generation=service.generation,
        ready=to_condition(service.terminal_condition) if "terminal_condition" in service else None,
        conditions=tuple(to_condition(c) for c in service.conditions),
        latest_created=_optional(service.latest_created_revision),
        latest_ready=_optional(service.latest_ready_revision),
        traffic=_traffic(service.traffic),
        traffic_statuses=_traffic(service.traffic_statuses),
        containers=tuple(to_container_spec(c) for c in service.template.containers),
        uri=service.uri,
        reconciling=service.reconciling,
    )


def to_revision_info(revision: run_v2.Revision) -> RevisionInfo:
    """Return our `RevisionInfo` for an SDK `Revision`."""
    return RevisionInfo(
        name=_short(revision.name),
        conditions=tuple(to_condition(c) for c in revision.conditions),
        containers=tuple(to_container_spec(c) for c in revision.containers),
        scaling=Scaling(
            min_instances=revision.scaling.min_instance_count, max_instances=revision.scaling.max_instance_count
        ),
        created=_datetime(revision.create_time),
    )
