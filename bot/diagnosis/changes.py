"""Which revision is failing, which was the last healthy one, and what changed between them: pure."""

from __future__ import annotations

from collections.abc import Sequence

from bot.cloud.models import ContainerSpec, RevisionInfo, ServiceInfo
from bot.diagnosis.models import Change


def failing_revision(service: ServiceInfo, revisions: Sequence[RevisionInfo]) -> str | None:
    """Return the revision Cloud Run could not make ready (None when the API calls everything ready)."""
    latest = next((r for r in revisions if r.name == service.latest_created), None)
    if service.latest_created and (
        service.latest_created != service.latest_ready
        or not service.is_ready
        or (latest is not None and not latest.is_ready)
    ):
        return service.latest_created
    return None


def serving_revision(service: ServiceInfo) -> str | None:
    """Return the revision with the largest share of traffic (where a ready service's requests fail)."""
    statuses = [t for t in service.traffic_statuses if t.revision] or [t for t in service.traffic if t.revision]
    if statuses:
        return max(statuses, key=lambda t: t.percent).revision
    return service.latest_ready or service.latest_created


def last_healthy_revision(revisions: Sequence[RevisionInfo], failing: str | None) -> RevisionInfo | None:
    """Return the newest ready revision created before `failing` (`revisions` newest first)."""
    names = [r.name for r in revisions]
    start = names.index(failing) + 1 if failing in names else 0
    return next((r for r in revisions[start:] if r.is_ready), None)


def _by_name(containers: Sequence[ContainerSpec]) -> dict[str, ContainerSpec]:
    # Sidecars keep their names; the ingress container's name can change, so pair the first ones by position.
    return {("" if i == 0 else c.name): c for i, c in enumerate(containers)}


def revision_changes(before: RevisionInfo, after: RevisionInfo) -> tuple[Change, ...]:
    """Return what differs from `before` to `after`: image, env names, limits, ports, startup probe, scaling."""
    changes: list[Change] = []
    old, new = _by_name(before.containers), _by_name(after.containers)
    for key in sorted(old.keys() | new.keys()):
        prefix = f"containers[{key}]." if key else ""
        a, b = old.get(key), new.get(key)
        if a is None or b is None:
            changes.append(Change(f"{prefix or 'container'}", a.name if a else None, b.name if b else None))
            continue
        if a.image != b.image:
            changes.append(Change(f"{prefix}image", a.image, b.image))
        changes += [Change("env", None, name) for name in b.env_names if name not in a.env_names]
        changes += [Change("env", name, None) for name in a.env_names if name not in b.env_names]
        for limit in sorted(a.limits.keys() | b.limits.keys()):
            if a.limits.get(limit) != b.limits.get(limit):
                changes.append(Change(f"{prefix}limits.{limit}", a.limits.get(limit), b.limits.get(limit)))
        if a.ports != b.ports:
            changes.append(Change(f"{prefix}ports", _ports(a.ports), _ports(b.ports)))
        if a.has_startup_probe != b.has_startup_probe:
            changes.append(
                Change(
                    f"{prefix}startup_probe",
                    "set" if a.has_startup_probe else None,
                    "set" if b.has_startup_probe else None,
                )
            )
    for field in ("min_instances", "max_instances"):
        was, now = getattr(before.scaling, field), getattr(after.scaling, field)
        if was != now:
            changes.append(Change(f"scaling.{field}", str(was), str(now)))
    return tuple(changes)


def _ports(ports: Sequence[int]) -> str | None:
    return ", ".join(str(port) for port in ports) or None
