"""Build the real google clients for the adapters: the only place in `bot.cloud` that reads the environment.

`STAGEBOT_CLOUD_RUN_ENDPOINT` and `STAGEBOT_LOGGING_ENDPOINT` point the clients elsewhere (the sandbox, the tests);
an `http://` endpoint gets anonymous credentials. Without them: Application Default Credentials and Google's endpoints.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from google.api_core.client_options import ClientOptions
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import AnonymousCredentials, Credentials
from google.cloud import run_v2

from bot.cloud.logs import CloudLogs, ReadingClient
from bot.cloud.run import CloudRun
from bot.errors import UsageError

RUN_ENDPOINT_VAR = "STAGEBOT_CLOUD_RUN_ENDPOINT"
LOGGING_ENDPOINT_VAR = "STAGEBOT_LOGGING_ENDPOINT"
# Per diagnosed service: get_service and list_revisions at once, then the logs. 64 threads keep twenty services'
# calls from queueing; they are idle threads blocked on sockets, not CPU work.
DEFAULT_THREADS = 64


@dataclass
class CloudApis:
    """The adapters and the executor their sync clients run on."""

    run: CloudRun
    logs: CloudLogs
    executor: ThreadPoolExecutor

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


def _credentials(endpoint: str | None) -> Credentials | None:
    # None: the clients look up Application Default Credentials themselves.
    return AnonymousCredentials() if endpoint and endpoint.startswith("http://") else None  # type: ignore[no-untyped-call]


def build_cloud_apis(
    environ: Mapping[str, str],
    *,
    project: str,
    threads: int = DEFAULT_THREADS,
    timeout_s: float = 10.0,
    poll_interval_s: float = 1.0,
) -> CloudApis:
    """Return the Cloud Run and Cloud Logging adapters for `environ`; `project` is Logging's default project.

    Raises `UsageError` when no credentials can be found (say so, once, instead of failing every call).
    """
    run_endpoint = environ.get(RUN_ENDPOINT_VAR) or None
    logging_endpoint = environ.get(LOGGING_ENDPOINT_VAR) or None
    run_options = ClientOptions(api_endpoint=run_endpoint) if run_endpoint else None
    executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="stagebot-cloud")
    try:
        services = run_v2.ServicesClient(
            transport="rest", credentials=_credentials(run_endpoint), client_options=run_options
        )
        revisions = run_v2.RevisionsClient(
            transport="rest", credentials=_credentials(run_endpoint), client_options=run_options
        )
        logging_client = ReadingClient(  # type: ignore[no-untyped-call]
            project=project,
            credentials=_credentials(logging_endpoint),
            _use_grpc=False,  # the REST transport: one HTTP stack for both APIs, and a stand-in can answer it
            client_options={"api_endpoint": logging_endpoint} if logging_endpoint else None,
        )
    except auth_exceptions.DefaultCredentialsError as exc:
        executor.shutdown(wait=False)
        raise UsageError(
            "no Google credentials: run `gcloud auth application-default login`, set GOOGLE_APPLICATION_CREDENTIALS, "
            f"or point {RUN_ENDPOINT_VAR} and {LOGGING_ENDPOINT_VAR} at a stand-in ({exc})"
        ) from None
    return CloudApis(
        run=CloudRun(services, revisions, executor=executor, timeout_s=timeout_s, poll_interval_s=poll_interval_s),
        logs=CloudLogs(logging_client, executor=executor, timeout_s=timeout_s),
        executor=executor,
    )
