"""The real run_v2 REST clients against the Cloud Run stand-in: translation, paging, updates, operations, faults."""

from __future__ import annotations

import asyncio
import copy

import pytest
from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.cloud import run_v2

from bot.cloud import CloudApis, CloudError, ConditionState, FaultKind, ServiceChange, TrafficTarget, build_cloud_apis
from bot.cloud.run import RESTART_LABEL
from sandbox.cloud_scenarios import PROJECT, CloudEndpoints, CloudSandbox
from sandbox.staging import SandboxStaging
from tests.cloud.conftest import ref


async def test_get_service_translates_state_traffic_and_template(apis: CloudApis) -> None:
    service = await apis.run.get_service(ref("auth"))
    assert service.name == f"projects/{PROJECT}/locations/europe-west1/services/auth"
    assert service.ready is not None and service.ready.state is ConditionState.FAILED
    assert service.ready.reason == "REVISION_FAILED"
    assert "PORT=8080" in service.ready.message
    assert (service.latest_created, service.latest_ready) == ("auth-00012-vop", "auth-00011-fuw")
    assert service.traffic[0].is_latest and service.traffic[0].percent == 100
    assert [(t.revision, t.percent) for t in service.traffic_statuses] == [("auth-00011-fuw", 100)]
    assert service.etag and service.generation == 12  # revision auth-00012-vop is generation 12, as on Cloud Run
    container = service.containers[0]
    assert container.env_names == ("LOG_LEVEL", "DATABASE_URL", "LISTEN_PORT")
    assert container.limits["memory"] == "512Mi" and container.ports == (8080,)
    assert not service.is_ready


async def test_revisions_newest_first_with_their_conditions(apis: CloudApis) -> None:
    revisions = await apis.run.list_revisions(ref("auth"))
    assert [r.name for r in revisions] == ["auth-00012-vop", "auth-00011-fuw"]
    failing, healthy = revisions
    assert failing.ready is not None and failing.ready.reason == "HEALTH_CHECK_CONTAINER_ERROR"
    assert not failing.is_ready and healthy.is_ready
    assert failing.scaling.max_instances == 20
    one = await apis.run.get_revision(ref("auth"), "auth-00011-fuw")
    assert one == healthy


async def test_list_revisions_follows_pages(apis: CloudApis, cloud: CloudSandbox) -> None:
    service = cloud.run.services[ref("api").resource_name]
    template = next(r for r in cloud.run.revisions.values() if r["service"] == service["name"])
    for i in range(1, 46):
        extra = copy.deepcopy(template)
        extra["name"] = f"{service['name']}/revisions/api-old-{i:03d}"
        extra["createTime"] = f"2026-01-01T00:{i:02d}:00Z"
        cloud.run.revisions[extra["name"]] = extra
    revisions = await apis.run.list_revisions(ref("api"), limit=40)
    assert len(revisions) == 40
    assert revisions[0].name == "api-00007-kax"
    all_of_them = await apis.run.list_revisions(ref("api"), limit=100)
    assert len(all_of_them) == 47
    assert cloud.run.count("list_revisions") == 2  # one page each: the page size follows the limit


def test_the_stand_in_pages_as_the_api_does(endpoints: CloudEndpoints) -> None:
    client = run_v2.RevisionsClient(
        transport="rest", credentials=AnonymousCredentials(), client_options={"api_endpoint": endpoints.run_url}
    )
    parent = ref("auth").resource_name
    pages = list(client.list_revisions(request=run_v2.ListRevisionsRequest(parent=parent, page_size=1)).pages)
    assert [len(p.revisions) for p in pages] == [1, 1]


async def test_restart_creates_a_new_ready_revision_and_heals_the_staging(
    apis: CloudApis, cloud: CloudSandbox, staging: SandboxStaging
) -> None:
    cloud.run.polls_to_done = 2
    before = await apis.run.get_service(ref("auth"))
    assert not staging.is_healthy("auth")
    after = await apis.run.update_service(ref("auth"), ServiceChange(restart_token="r-1"), etag=before.etag)
    assert after.is_ready and after.latest_ready == after.latest_created
    assert after.latest_created not in (before.latest_created, before.latest_ready)
    assert after.etag != before.etag
    assert cloud.run.count("get_operation") == 3  # two "not done yet", then done
    stored = cloud.run.services[ref("auth").resource_name]
    assert stored["template"]["labels"][RESTART_LABEL] == "r-1"
    assert staging.is_healthy("auth")  # on_ready reached the sandbox staging


def test_echoing_an_existing_revision_name_with_another_template_is_409(endpoints: CloudEndpoints) -> None:
    # Why the adapter clears template.revision: the real API refuses this (shared/reference/cloud-run.md).
    client = run_v2.ServicesClient(
        transport="rest", credentials=AnonymousCredentials(), client_options={"api_endpoint": endpoints.run_url}
    )
    service = client.get_service(name=ref("auth").resource_name, retry=None)
    service.template.revision = "auth-00011-fuw"
    service.template.containers[0].image = "elsewhere/auth:9"
    with pytest.raises(gexc.Conflict, match="with different configuration already exists"):
        client.update_service(service=service, retry=None)


async def test_stale_etag_changes_nothing(apis: CloudApis, cloud: CloudSandbox) -> None:
    with pytest.raises(CloudError) as caught:
        await apis.run.update_service(ref("auth"), ServiceChange(restart_token="r-2"), etag='"stale"')
    assert caught.value.kind is FaultKind.CONFLICT
    assert "has been modified" in caught.value.message
    assert cloud.run.count("get_operation") == 0


async def test_concurrent_updates_with_one_etag_exactly_one_wins(apis: CloudApis, cloud: CloudSandbox) -> None:
    etag = (await apis.run.get_service(ref("auth"))).etag
    outcomes = await asyncio.gather(
        *(apis.run.update_service(ref("auth"), ServiceChange(restart_token=f"r-{i}"), etag=etag) for i in range(8)),
        return_exceptions=True,
    )
    won = [o for o in outcomes if not isinstance(o, BaseException)]
    lost = [o for o in outcomes if isinstance(o, CloudError) and o.kind is FaultKind.CONFLICT]
    assert len(won) == 1 and len(lost) == 7


async def test_rollback_moves_traffic_without_a_new_revision(apis: CloudApis, cloud: CloudSandbox) -> None:
    before = await apis.run.get_service(ref("api"))
    change = ServiceChange(traffic=(TrafficTarget(percent=100, revision="api-00006-pit"),))
    after = await apis.run.update_service(ref("api"), change, etag=before.etag)
    assert [(t.revision, t.percent, t.is_latest) for t in after.traffic] == [("api-00006-pit", 100, False)]
    assert after.latest_created == before.latest_created
    assert len(await apis.run.list_revisions(ref("api"))) == 2


async def test_redeploy_sets_the_image(apis: CloudApis) -> None:
    before = await apis.run.get_service(ref("api"))
    image = "europe-west1-docker.pkg.dev/stagebot-sandbox/apps/api:4.1.9"
    after = await apis.run.update_service(ref("api"), ServiceChange(image=image), etag=before.etag)
    assert after.containers[0].image == image and after.is_ready


async def test_an_operation_that_fails_is_a_failed_fault(apis: CloudApis, cloud: CloudSandbox) -> None:
    cloud.run.failing_operations.add("auth")
    before = await apis.run.get_service(ref("auth"))
    with pytest.raises(CloudError) as caught:
        await apis.run.update_service(ref("auth"), ServiceChange(restart_token="r-3"), etag=before.etag)
    assert caught.value.kind is FaultKind.FAILED
    assert "could not be created" in caught.value.message


@pytest.mark.parametrize(
    ("status", "kind", "words"),
    [
        (403, FaultKind.PERMISSION_DENIED, "the bot's service account lacks run.services.get on projects/"),
        (404, FaultKind.NOT_FOUND, "was not found"),
        (503, FaultKind.UNAVAILABLE, "currently unavailable"),
        (500, FaultKind.UNAVAILABLE, "Internal error"),
    ],
)
async def test_errors_become_cloud_errors(
    apis: CloudApis, cloud: CloudSandbox, status: int, kind: FaultKind, words: str
) -> None:
    cloud.run.fail(status, call="get_service")
    with pytest.raises(CloudError) as caught:
        await apis.run.get_service(ref("auth"))
    assert caught.value.kind is kind
    assert words in caught.value.message
    assert cloud.run.count("get_service") == 1  # retry=None: one answer is enough to know


async def test_a_missing_service_is_not_found(apis: CloudApis) -> None:
    with pytest.raises(CloudError) as caught:
        await apis.run.get_service(ref("no-such-service"))
    assert caught.value.kind is FaultKind.NOT_FOUND


async def test_a_slow_answer_is_a_timeout(endpoints: CloudEndpoints, cloud: CloudSandbox) -> None:
    cloud.run.delays_s["get_service"] = 0.8
    slow = build_cloud_apis(endpoints.environ(), project=PROJECT, timeout_s=0.2)
    try:
        with pytest.raises(CloudError) as caught:
            await slow.run.get_service(ref("auth"))
    finally:
        slow.close()
    assert caught.value.kind is FaultKind.TIMEOUT
