"""Cloud Run services that fail the way real ones do, with the log lines Cloud Run and the apps really write.

`build_scenario(cause, service, now=...)` returns a service (two revisions: the last healthy one and the one that
broke, except where the API still calls it ready), and its log entries. `demo_cloud()` tells the demo's story: the
API down on its memory limit, auth down on a port mismatch, everything else healthy; a successful update heals the
sandbox staging through `on_ready`.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from sandbox.cloud_logging import CloudLoggingStandIn
from sandbox.cloud_run import CloudRunStandIn, rfc3339
from sandbox.servers import serve_in_loop, serve_in_thread
from sandbox.staging import SandboxStaging

Json = dict[str, Any]
PROJECT = "stagebot-sandbox"
REGION = "europe-west1"
REGISTRY = f"{REGION}-docker.pkg.dev/{PROJECT}/apps"
RUNTIME_SA = "412345678901-compute@developer.gserviceaccount.com"
CAUSES = (
    "port_mismatch", "out_of_memory", "startup_probe_failed", "secret_access_denied", "crash_on_start",
    "dependency_unreachable", "image_not_found", "revision_not_ready", "quota_or_scaling", "unknown",
)  # fmt: skip
PORT_MESSAGE = (
    "The user-provided container failed to start and listen on the port defined provided by the PORT=8080 "
    "environment variable. Logs for this revision might contain more information."
)
_insert_ids = itertools.count(1)


@dataclass(frozen=True)
class RevisionSpec:
    """One revision: its configuration and whether Cloud Run got it ready."""

    name: str
    image: str
    env: tuple[str, ...] = ("LOG_LEVEL", "DATABASE_URL")
    memory: str = "512Mi"
    cpu: str = "1"
    port: int = 8080
    max_instances: int = 20
    startup_probe: Json | None = None
    ready: bool = True
    reason: str | None = None  # a Condition.CommonReason name
    revision_reason: str | None = None  # a Condition.RevisionReason name
    message: str = ""


@dataclass
class Scenario:
    """A service, its revisions (oldest first) and its log entries, as wire JSON."""

    cause: str
    service: str
    project: str
    region: str
    revisions: list[RevisionSpec]
    lines: list[tuple[str, str, str | Json, int]] = field(default_factory=list)  # (log, severity, payload, secs ago)
    now: datetime = field(default_factory=lambda: datetime.now().astimezone())

    @property
    def resource_name(self) -> str:
        return f"projects/{self.project}/locations/{self.region}/services/{self.service}"

    @property
    def latest(self) -> RevisionSpec:
        return self.revisions[-1]

    @property
    def latest_ready(self) -> RevisionSpec | None:
        return next((r for r in reversed(self.revisions) if r.ready), None)

    def service_json(self) -> Json:
        latest, ready = self.latest, self.latest_ready
        moment = rfc3339(self.now - timedelta(minutes=6))
        terminal: Json = {"type": "Ready", "state": "CONDITION_SUCCEEDED", "lastTransitionTime": moment}
        if not latest.ready:
            terminal = {
                "type": "Ready",
                "state": "CONDITION_FAILED",
                "reason": latest.reason or "REVISION_FAILED",
                "message": f"Revision '{latest.name}' is not ready and cannot serve traffic. {latest.message}".strip(),
                "lastTransitionTime": moment,
            }
        body: Json = {
            "name": self.resource_name,
            "uid": f"0b1d{abs(hash(self.service)) % 10**8:08d}",
            # Cloud Run numbers revisions by the service's generation: the next update makes `<name>-<gen+1>-...`.
            "generation": str(_generation_of(latest.name)),
            "observedGeneration": str(_generation_of(latest.name)),
            "etag": f'"{abs(hash((self.service, self.cause))) % 10**12:012x}"',
            "uri": f"https://{self.service}-x7k2q9lmaa-ew.a.run.app",
            "createTime": rfc3339(self.now - timedelta(days=40)),
            "terminalCondition": terminal,
            "conditions": [
                {"type": "ConfigurationsReady", "state": "CONDITION_SUCCEEDED" if latest.ready else "CONDITION_FAILED"},
                {"type": "RoutesReady", "state": "CONDITION_SUCCEEDED"},
            ],
            "latestCreatedRevision": f"{self.resource_name}/revisions/{latest.name}",
            "traffic": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}],
            "template": _template(latest),
        }
        if ready is not None:
            body["latestReadyRevision"] = f"{self.resource_name}/revisions/{ready.name}"
            body["trafficStatuses"] = [
                {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "revision": ready.name, "percent": 100}
            ]
        return body

    def revisions_json(self) -> list[Json]:
        out = []
        for age, spec in enumerate(reversed(self.revisions)):
            created = rfc3339(self.now - timedelta(minutes=8) - timedelta(days=age * 3))
            if spec.ready:
                conditions: list[Json] = [
                    {"type": "Ready", "state": "CONDITION_SUCCEEDED", "lastTransitionTime": created},
                    {"type": "ContainerHealthy", "state": "CONDITION_SUCCEEDED", "lastTransitionTime": created},
                ]
            else:
                failed: Json = {"state": "CONDITION_FAILED", "message": spec.message, "lastTransitionTime": created}
                if spec.reason:
                    failed["reason"] = spec.reason
                if spec.revision_reason:
                    failed["revisionReason"] = spec.revision_reason
                conditions = [{"type": "Ready", **failed}, {"type": "ContainerHealthy", **failed}]
            template = _template(spec)
            out.append(
                {
                    "name": f"{self.resource_name}/revisions/{spec.name}",
                    "service": self.resource_name,
                    "generation": str(_generation_of(spec.name)),
                    "createTime": created,
                    "conditions": conditions,
                    "containers": template["containers"],
                    "scaling": template["scaling"],
                    "serviceAccount": RUNTIME_SA,
                }
            )
        return out

    def entries_json(self) -> list[Json]:
        return [
            log_entry(self, self.latest.name, log, severity, payload, seconds_ago, order=i)
            for i, (log, severity, payload, seconds_ago) in enumerate(self.lines)
        ]  # fmt: skip


def _template(spec: RevisionSpec) -> Json:
    container: Json = {
        "name": f"{spec.name.split('-')[0]}-1",
        "image": spec.image,
        "env": [{"name": name, "value": f"value-of-{name.lower()}"} for name in spec.env],
        "resources": {"limits": {"cpu": spec.cpu, "memory": spec.memory}, "cpuIdle": True},
        "ports": [{"name": "http1", "containerPort": spec.port}],
    }
    if spec.startup_probe is not None:
        container["startupProbe"] = spec.startup_probe
    return {
        "revision": spec.name,
        "scaling": {"minInstanceCount": 0, "maxInstanceCount": spec.max_instances},
        "containers": [container],
        "serviceAccount": RUNTIME_SA,
    }


def log_entry(
    scenario: Scenario, revision: str, log: str, severity: str, payload: str | Json, seconds_ago: int, *, order: int = 0
) -> Json:
    """Return one wire-format Cloud Run log entry (`order` adds milliseconds, so lines of one second keep theirs)."""
    moment = scenario.now - timedelta(seconds=seconds_ago) + timedelta(milliseconds=order)
    entry: Json = {
        "logName": f"projects/{scenario.project}/logs/{quote('run.googleapis.com/' + log, safe='')}",
        "resource": {
            "type": "cloud_run_revision",
            "labels": {
                "service_name": scenario.service,
                "revision_name": revision,
                "location": scenario.region,
                "configuration_name": scenario.service,
                "project_id": scenario.project,
            },
        },
        "severity": severity,
        "timestamp": rfc3339(moment),
        "receiveTimestamp": rfc3339(moment + timedelta(milliseconds=40)),
        "insertId": f"{next(_insert_ids):06x}fa3e21c{seconds_ago}",
    }
    if isinstance(payload, dict):
        entry["jsonPayload"] = payload
    else:
        entry["textPayload"] = payload
    return entry


def _generation_of(revision: str) -> int:
    """Return the generation a revision name carries: `auth-00012-vop` -> 12."""
    return int(revision.rsplit("-", 2)[-2])


def _name(service: str, generation: int, suffix: str) -> str:
    return f"{service}-{generation:05d}-{suffix}"


def _probe_failed(container: str) -> str:
    return (
        f'Default STARTUP TCP probe failed 1 time consecutively for container "{container}" on port 8080. '
        "The instance was not started."
    )


def _port_mismatch(s: str) -> tuple[list[RevisionSpec], list[tuple[str, str, str | Json, int]]]:
    good = RevisionSpec(_name(s, 11, "fuw"), f"{REGISTRY}/{s}:2.13.4")
    bad = RevisionSpec(
        _name(s, 12, "vop"), f"{REGISTRY}/{s}:2.14.0", env=(*good.env, "LISTEN_PORT"), ready=False,
        revision_reason="HEALTH_CHECK_CONTAINER_ERROR", message=PORT_MESSAGE,
    )  # fmt: skip
    lines: list[tuple[str, str, str | Json, int]] = [
        ("stdout", "INFO", "INFO:     Started server process [1]", 140),
        ("stdout", "INFO", "INFO:     Waiting for application startup.", 140),
        ("stdout", "INFO", "INFO:     Application startup complete.", 139),
        ("stdout", "INFO", "INFO:     Uvicorn running on http://0.0.0.0:3000 (Press CTRL+C to quit)", 139),
        ("varlog/system", "ERROR", _probe_failed(f"{s}-1"), 100),
        ("varlog/system", "ERROR", f"Revision '{bad.name}' is not ready and cannot serve traffic. {PORT_MESSAGE}", 99),
    ]
    return [good, bad], lines


def _out_of_memory(s: str) -> tuple[list[RevisionSpec], list[tuple[str, str, str | Json, int]]]:
    good = RevisionSpec(_name(s, 6, "pit"), f"{REGISTRY}/{s}:4.1.9", memory="1Gi")
    bad = RevisionSpec(
        _name(s, 7, "kax"), f"{REGISTRY}/{s}:4.2.0", memory="512Mi", ready=False,
        revision_reason="HEALTH_CHECK_CONTAINER_ERROR", message=PORT_MESSAGE,
    )  # fmt: skip
    lines: list[tuple[str, str, str | Json, int]] = [
        ("stdout", "INFO", "Starting api 4.2.0 (gunicorn, 2 workers)", 160),
        ("stdout", "INFO", "Loading product catalogue cache (418 MB) into memory", 158),
        (
            "varlog/system",
            "ERROR",
            "Memory limit of 512 MiB exceeded with 530 MiB used. Consider increasing the memory limit, see "
            "https://cloud.google.com/run/docs/configuring/memory-limits",
            150,
        ),
        ("varlog/system", "ERROR", _probe_failed(f"{s}-1"), 120),
        ("varlog/system", "ERROR", f"Revision '{bad.name}' is not ready and cannot serve traffic. {PORT_MESSAGE}", 119),
    ]
    return [good, bad], lines


def _startup_probe_failed(s: str) -> tuple[list[RevisionSpec], list[tuple[str, str, str | Json, int]]]:
    probe = {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 5, "failureThreshold": 12}
    good = RevisionSpec(_name(s, 30, "mek"), f"{REGISTRY}/{s}:1.8.2")
    bad = RevisionSpec(
        _name(s, 31, "zod"), f"{REGISTRY}/{s}:1.9.0", startup_probe=probe, ready=False,
        revision_reason="HEALTH_CHECK_CONTAINER_ERROR",
        message="The user-provided container failed the configured startup probe checks. "
        "Logs for this revision might contain more information.",
    )  # fmt: skip
    lines: list[tuple[str, str, str | Json, int]] = [
        ("stdout", "INFO", "Connecting to search index (4 shards)", 200),
        ("stdout", "WARNING", "GET /healthz 503 (warming up: 0/4 shards loaded)", 190),
        ("stdout", "WARNING", "GET /healthz 503 (warming up: 1/4 shards loaded)", 150),
        (
            "varlog/system",
            "ERROR",
            f'STARTUP HTTP probe failed 12 times consecutively for container "{s}-1" on path "/healthz". '
            "The instance was not started.",
            140,
        ),
    ]
    return [good, bad], lines


def _secret_access_denied(s: str) -> tuple[list[RevisionSpec], list[tuple[str, str, str | Json, int]]]:
    good = RevisionSpec(_name(s, 4, "raq"), f"{REGISTRY}/{s}:3.0.1")
    bad = RevisionSpec(
        _name(s, 5, "dib"), f"{REGISTRY}/{s}:3.0.1", env=(*good.env, "STRIPE_API_KEY"), ready=False,
        reason="SECRETS_ACCESS_CHECK_FAILED",
        message="spec.template.spec.containers[0].env[2].value_from.secret_key_ref.name: Permission denied on secret: "
        f"projects/412345678901/secrets/stripe-api-key/versions/latest for Revision service account {RUNTIME_SA}. "
        "The service account used must be granted the 'Secret Manager Secret Accessor' role "
        "(roles/secretmanager.secretAccessor) at the secret, project or higher level.",
    )  # fmt: skip
    return [good, bad], []


# Secrets a careless app prints: the diagnosis must show neither.
_SENTRY_DSN = "https://3f9a1c:s3cr3tSentryKey@o4511.ingest.sentry.io/7"
_SERVICE_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJiaWxsaW5nIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


def _crash_on_start(s: str) -> tuple[list[RevisionSpec], list[tuple[str, str, str | Json, int]]]:
    good = RevisionSpec(_name(s, 20, "hoy"), f"{REGISTRY}/{s}:5.4.0", env=("LOG_LEVEL", "DATABASE_URL", "SENTRY_DSN"))
    bad = RevisionSpec(
        _name(s, 21, "wex"), f"{REGISTRY}/{s}:5.5.0", env=("LOG_LEVEL", "SENTRY_DSN"), ready=False,
        revision_reason="HEALTH_CHECK_CONTAINER_ERROR", message=PORT_MESSAGE,
    )  # fmt: skip
    lines: list[tuple[str, str, str | Json, int]] = [
        ("stdout", "INFO", f"Booting billing 5.5.0 with SENTRY_DSN={_SENTRY_DSN}", 90),
        ("stdout", "INFO", f"Service token: {_SERVICE_TOKEN}", 90),
        ("stderr", "ERROR", "Traceback (most recent call last):", 89),
        ("stderr", "ERROR", '  File "/app/main.py", line 14, in <module>', 89),
        ("stderr", "ERROR", "    settings = Settings.from_env()", 89),
        ("stderr", "ERROR", '  File "/app/settings.py", line 31, in from_env', 89),
        ("stderr", "ERROR", '    database_url=os.environ["DATABASE_URL"],', 89),
        ("stderr", "ERROR", "KeyError: 'DATABASE_URL'", 89),
        ("varlog/system", "WARNING", "Container called exit(1).", 88),
        ("varlog/system", "ERROR", f"Revision '{bad.name}' is not ready and cannot serve traffic. {PORT_MESSAGE}", 60),
    ]  # fmt: skip
    return [good, bad], lines


def _dependency_unreachable(s: str) -> tuple[list[RevisionSpec], list[tuple[str, str, str | Json, int]]]:
    good = RevisionSpec(_name(s, 9, "lom"), f"{REGISTRY}/{s}:2.0.3")
    bad = RevisionSpec(
        _name(s, 10, "qer"), f"{REGISTRY}/{s}:2.1.0", ready=False,
        revision_reason="HEALTH_CHECK_CONTAINER_ERROR", message=PORT_MESSAGE,
    )  # fmt: skip
    lines: list[tuple[str, str, str | Json, int]] = [
        ("stdout", "INFO", {"message": "Running migrations before start", "severity": "INFO", "logger": "app"}, 80),
        (
            "stderr",
            "ERROR",
            {
                "message": 'psycopg.OperationalError: connection failed: connection to server at "10.20.0.3", port '
                "5432 failed: Connection timed out\n\tIs the server running on that host and accepting TCP/IP "
                "connections?",
                "severity": "ERROR",
                "logger": "app.db",
            },
            50,
        ),
        ("varlog/system", "ERROR", f"Revision '{bad.name}' is not ready and cannot serve traffic. {PORT_MESSAGE}", 45),
    ]
    return [good, bad], lines


def _image_not_found(s: str) -> tuple[list[RevisionSpec], list[tuple[str, str, str | Json, int]]]:
    good = RevisionSpec(_name(s, 14, "gan"), f"{REGISTRY}/{s}:2.2.9")
    image = f"{REGISTRY}/{s}:2.3.0"
    bad = RevisionSpec(
        _name(s, 15, "bev"), image, ready=False, reason="CONTAINER_MISSING", message=f"Image '{image}' not found."
    )
    return [good, bad], []


def _revision_not_ready(s: str) -> tuple[list[RevisionSpec], list[tuple[str, str, str | Json, int]]]:
    good = RevisionSpec(_name(s, 2, "cot"), f"{REGISTRY}/{s}:0.9.0")
    bad = RevisionSpec(_name(s, 3, "nix"), f"{REGISTRY}/{s}:0.9.1", ready=False, reason="PROGRESS_DEADLINE_EXCEEDED")
    return [good, bad], []


def _quota_or_scaling(s: str) -> tuple[list[RevisionSpec], list[tuple[str, str, str | Json, int]]]:
    good = RevisionSpec(_name(s, 40, "sul"), f"{REGISTRY}/{s}:7.0.0", max_instances=20)
    now_serving = RevisionSpec(_name(s, 41, "pyx"), f"{REGISTRY}/{s}:7.0.0", max_instances=2)
    aborted = (
        "The request was aborted because there was no available instance. Additional troubleshooting documentation "
        "can be found at: https://cloud.google.com/run/docs/troubleshooting#abort-request"
    )
    lines: list[tuple[str, str, str | Json, int]] = [
        ("stdout", "INFO", "GET /api/v1/events 200 41ms", 300),
        ("varlog/system", "WARNING", aborted, 120),
        ("varlog/system", "WARNING", aborted, 119),
        ("varlog/system", "WARNING", aborted, 60),
    ]
    return [good, now_serving], lines


def _unknown(s: str) -> tuple[list[RevisionSpec], list[tuple[str, str, str | Json, int]]]:
    good = RevisionSpec(_name(s, 50, "ota"), f"{REGISTRY}/{s}:1.0.0")
    bad = RevisionSpec(_name(s, 51, "rin"), f"{REGISTRY}/{s}:1.0.1", ready=False)
    lines: list[tuple[str, str, str | Json, int]] = [
        ("stdout", "WARNING", "cache warm-up returned 0 rows; continuing", 70),
        ("stderr", "ERROR", "scheduler: lease table empty, refusing to elect a leader", 65),
    ]
    return [good, bad], lines


def _healthy(s: str) -> tuple[list[RevisionSpec], list[tuple[str, str, str | Json, int]]]:
    old = RevisionSpec(_name(s, 2, "abe"), f"{REGISTRY}/{s}:1.1.0")
    new = RevisionSpec(_name(s, 3, "tuv"), f"{REGISTRY}/{s}:1.2.0")
    lines: list[tuple[str, str, str | Json, int]] = [
        ("stdout", "INFO", "GET /health 200 2ms", 30),
        ("stdout", "INFO", "GET /api/v1/items 200 18ms", 20),
    ]
    return [old, new], lines


_BUILDERS: dict[str, Callable[[str], tuple[list[RevisionSpec], list[tuple[str, str, str | Json, int]]]]] = {
    "port_mismatch": _port_mismatch, "out_of_memory": _out_of_memory, "startup_probe_failed": _startup_probe_failed,
    "secret_access_denied": _secret_access_denied, "crash_on_start": _crash_on_start,
    "dependency_unreachable": _dependency_unreachable, "image_not_found": _image_not_found,
    "revision_not_ready": _revision_not_ready, "quota_or_scaling": _quota_or_scaling, "unknown": _unknown,
    "healthy": _healthy,
}  # fmt: skip


def build_scenario(
    cause: str, service: str, *, now: datetime, project: str = PROJECT, region: str = REGION
) -> Scenario:
    """Return the scenario for a cause code (or "healthy") on a Cloud Run service named `service`."""
    revisions, lines = _BUILDERS[cause](service)
    return Scenario(cause, service, project, region, revisions, lines, now)


@dataclass
class CloudSandbox:
    """The Cloud Run and Cloud Logging stand-ins, filled with scenarios."""

    run: CloudRunStandIn = field(default_factory=CloudRunStandIn)
    logging: CloudLoggingStandIn = field(default_factory=CloudLoggingStandIn)
    scenarios: dict[str, Scenario] = field(default_factory=dict)

    def install(self, scenarios: Iterable[Scenario]) -> None:
        for scenario in scenarios:
            self.scenarios[scenario.service] = scenario
            self.run.add_service(scenario.service_json(), scenario.revisions_json())
            self.logging.add(scenario.entries_json())


# The demo's story: which Cloud Run scenario each sandbox staging service tells.
DEMO_STORY = {"api": "out_of_memory", "auth": "port_mismatch", "frontend": "healthy", "websocket": "healthy",
              "reports": "healthy"}  # fmt: skip


def demo_cloud(*, now: datetime, staging: SandboxStaging | None = None, polls_to_done: int = 1) -> CloudSandbox:
    """Return stand-ins telling the demo's story; with `staging`, a completed update marks that service healthy."""
    sandbox = CloudSandbox(run=CloudRunStandIn(polls_to_done=polls_to_done))
    sandbox.install(build_scenario(cause, name, now=now) for name, cause in DEMO_STORY.items())
    if staging is not None:
        sandbox.run.on_ready = lambda name: staging.set(name, http="healthy")
    return sandbox


def cloud_run_config_text(services: Iterable[str], *, project: str = PROJECT, region: str = REGION) -> str:
    """Return TOML tables mapping sandbox services to Cloud Run (append to `sandbox_config_text`)."""
    return "".join(
        f'\n[services.{name}.cloud_run]\nproject = "{project}"\nregion = "{region}"\nservice = "{name}"\n'
        for name in services
    )


@dataclass(frozen=True)
class CloudEndpoints:
    """Where the stand-ins listen, and the environment that points stagebot at them."""

    run_url: str
    logging_url: str

    def environ(self) -> dict[str, str]:
        return {"STAGEBOT_CLOUD_RUN_ENDPOINT": self.run_url, "STAGEBOT_LOGGING_ENDPOINT": self.logging_url}


@contextlib.contextmanager
def serve_cloud_in_thread(sandbox: CloudSandbox) -> Iterator[CloudEndpoints]:
    """Serve both stand-ins on 127.0.0.1 (ports chosen by the kernel) until the block exits."""
    with serve_in_thread(sandbox.run.app()) as run, serve_in_thread(sandbox.logging.app()) as logging:
        yield CloudEndpoints(run.base_url, logging.base_url)


@contextlib.asynccontextmanager
async def serve_cloud_in_loop(sandbox: CloudSandbox) -> AsyncIterator[CloudEndpoints]:
    """Serve both stand-ins as tasks of the running loop until the block exits."""
    async with serve_in_loop(sandbox.run.app()) as run, serve_in_loop(sandbox.logging.app()) as logging:
        yield CloudEndpoints(run.base_url, logging.base_url)
