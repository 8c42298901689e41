"""Which revision failed, the last healthy one, and what changed between them: pure."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.cloud.models import (
    Condition,
    ConditionState,
    ContainerSpec,
    RevisionInfo,
    Scaling,
    ServiceInfo,
    TrafficTarget,
)
from bot.diagnosis import Change, failing_revision, last_healthy_revision, revision_changes, serving_revision

READY = Condition("Ready", ConditionState.SUCCEEDED)
FAILED = Condition("Ready", ConditionState.FAILED, "HEALTH_CHECK_CONTAINER_ERROR")


def revision(name: str, ready: bool = True, **container: object) -> RevisionInfo:
    spec = ContainerSpec(name="app", image=str(container.pop("image", "app:1")), **container)  # type: ignore[arg-type]
    return RevisionInfo(name, (READY if ready else FAILED,), (spec,), created=datetime(2026, 1, 1, tzinfo=UTC))


def svc(created: str, ready: str, is_ready: bool = True, traffic: tuple[TrafficTarget, ...] = ()) -> ServiceInfo:
    return ServiceInfo("s", "e", 1, READY if is_ready else FAILED, latest_created=created, latest_ready=ready,
                       traffic_statuses=traffic)  # fmt: skip


def test_the_failing_revision() -> None:
    revisions = [revision("s-3", ready=False), revision("s-2"), revision("s-1")]
    assert failing_revision(svc("s-3", "s-2", is_ready=False), revisions) == "s-3"
    assert failing_revision(svc("s-2", "s-2"), revisions[1:]) is None
    assert last_healthy_revision(revisions, "s-3") == revisions[1]
    assert last_healthy_revision([revision("s-2", ready=False), revision("s-1", ready=False)], "s-2") is None


def test_the_serving_revision_is_the_largest_share() -> None:
    split = (TrafficTarget(10, "s-1"), TrafficTarget(90, "s-2"))
    assert serving_revision(svc("s-2", "s-2", traffic=split)) == "s-2"
    assert serving_revision(svc("s-2", "s-1")) == "s-1"


def test_changes_name_env_names_never_values() -> None:
    before = revision("a", image="app:1", env_names=("A", "B"), limits={"memory": "1Gi", "cpu": "1"}, ports=(8080,))
    after = RevisionInfo(
        "b",
        (FAILED,),
        (ContainerSpec("app", "app:2", ("B", "C"), {"memory": "512Mi", "cpu": "1"}, (3000,), True),),
        Scaling(0, 2),
    )
    changes = revision_changes(before, after)
    assert changes == (
        Change("image", "app:1", "app:2"),
        Change("env", None, "C"),
        Change("env", "A", None),
        Change("limits.memory", "1Gi", "512Mi"),
        Change("ports", "8080", "3000"),
        Change("startup_probe", None, "set"),
        Change("scaling.max_instances", "0", "2"),
    )
    assert [c.summary for c in changes[:3]] == ["image: app:1 -> app:2", "env C added", "env A removed"]
    assert revision_changes(before, before) == ()
