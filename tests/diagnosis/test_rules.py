"""The cause rules, table-driven over the log text and conditions real incidents produce, both ways."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.cloud.models import Condition, ConditionState, LogEntry
from bot.diagnosis import Cause, Confidence, Context, Signals, find_causes

T0 = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
PORT = (
    "Revision 'auth-00012-vop' is not ready and cannot serve traffic. The user-provided container failed to start "
    "and listen on the port defined provided by the PORT=8080 environment variable. Logs for this revision might "
    "contain more information."
)
OLD_PORT = (
    "Container failed to start. Failed to start and then listen on the port defined by the PORT environment variable."
)
TCP_PROBE = (
    'Default STARTUP TCP probe failed 1 time consecutively for container "auth-1" on port 8080. '
    "The instance was not started."
)
HTTP_PROBE = (
    'STARTUP HTTP probe failed 12 times consecutively for container "worker-1" on path "/healthz". '
    "The instance was not started."
)
OOM = "Memory limit of 512 MiB exceeded with 530 MiB used. Consider increasing the memory limit."
SECRET = (
    "spec.template.spec.containers[0].env[2].value_from.secret_key_ref.name: Permission denied on secret: "
    "projects/412345678901/secrets/stripe-api-key/versions/latest for Revision service account "
    "sa@p.iam.gserviceaccount.com. The service account used must be granted the 'Secret Manager Secret Accessor' role."
)
ABORTED = "The request was aborted because there was no available instance. Additional troubleshooting documentation"


def logs(*lines: str | tuple[str, str]) -> tuple[LogEntry, ...]:
    """Entries one second apart; a (severity, text) pair sets the severity (default ERROR)."""
    out = []
    for i, line in enumerate(lines):
        severity, text = line if isinstance(line, tuple) else ("ERROR", line)
        out.append(LogEntry(T0 + timedelta(seconds=i), severity, text, "stderr", "rev-1"))
    return tuple(out)


def failed(message: str = "", reason: str | None = None) -> Condition:
    return Condition("Ready", ConditionState.FAILED, reason, message)


CASES = [
    # (id, signals, the first cause, a line that must be evidence)
    ("port, current wording", Signals(logs=logs(TCP_PROBE, PORT), not_ready=True), Cause.PORT_MISMATCH, PORT),
    ("port, older wording", Signals(logs=logs(OLD_PORT)), Cause.PORT_MISMATCH, OLD_PORT),
    ("port, condition only", Signals((failed(PORT, "HEALTH_CHECK_CONTAINER_ERROR"),)), Cause.PORT_MISMATCH, PORT),
    ("oom folds the port failure in", Signals(logs=logs(OOM, TCP_PROBE, PORT)), Cause.OUT_OF_MEMORY, OOM),
    ("oom, node", Signals(logs=logs("FATAL ERROR: Reached heap limit - JavaScript heap out of memory")),
     Cause.OUT_OF_MEMORY, "JavaScript heap out of memory"),
    ("startup http probe", Signals(logs=logs(("INFO", "warming up"), HTTP_PROBE)), Cause.STARTUP_PROBE_FAILED,
     HTTP_PROBE),
    ("secret, reason and message", Signals((failed(SECRET, "SECRETS_ACCESS_CHECK_FAILED"),)),
     Cause.SECRET_ACCESS_DENIED, SECRET),
    ("secret, reason only", Signals((failed("", "SECRETS_ACCESS_CHECK_FAILED"),)), Cause.SECRET_ACCESS_DENIED,
     "reason: SECRETS_ACCESS_CHECK_FAILED"),
    ("missing env var before the port failure",
     Signals(logs=logs("Traceback (most recent call last):", '  File "/app/main.py", line 3',
                       "KeyError: 'DATABASE_URL'", PORT)), Cause.CRASH_ON_START, "KeyError: 'DATABASE_URL'"),
    ("import error", Signals(logs=logs("ModuleNotFoundError: No module named 'billing'", "Container called exit(1).")),
     Cause.CRASH_ON_START, "ModuleNotFoundError: No module named 'billing'"),
    ("env var message", Signals(logs=logs("Error: environment variable STRIPE_KEY is not set", PORT)),
     Cause.CRASH_ON_START, "Error: environment variable STRIPE_KEY is not set"),
    ("postgres", Signals(logs=logs('psycopg.OperationalError: connection to server at "10.0.0.3", port 5432 failed: '
                                   "Connection refused", PORT)), Cause.DEPENDENCY_UNREACHABLE, "port 5432 failed"),
    ("redis", Signals(logs=logs("redis.exceptions.ConnectionError: Error 111 connecting to 10.0.0.4:6379. Connection "
                                "refused.")), Cause.DEPENDENCY_UNREACHABLE, "Error 111 connecting to 10.0.0.4:6379"),
    ("vpc reason", Signals((failed("VPC network default not found", "VPC_NETWORK_NOT_FOUND"),)),
     Cause.DEPENDENCY_UNREACHABLE, "reason: VPC_NETWORK_NOT_FOUND"),
    ("image", Signals((failed("Image 'europe-docker.pkg.dev/p/r/app:1' not found.", "CONTAINER_MISSING"),)),
     Cause.IMAGE_NOT_FOUND, "Image 'europe-docker.pkg.dev/p/r/app:1' not found."),
    ("reason only", Signals((failed("", "PROGRESS_DEADLINE_EXCEEDED"),)), Cause.REVISION_NOT_READY,
     "reason: PROGRESS_DEADLINE_EXCEEDED"),
    ("requests aborted", Signals(logs=logs(("WARNING", ABORTED))), Cause.QUOTA_OR_SCALING, ABORTED),
    ("max instances reason", Signals((failed("", "MIN_INSTANCES_NOT_PROVISIONED"),)), Cause.QUOTA_OR_SCALING,
     "reason: MIN_INSTANCES_NOT_PROVISIONED"),
    ("nothing known", Signals((failed("", "REVISION_FAILED"),), logs("scheduler: lease table empty")),
     Cause.UNKNOWN, "scheduler: lease table empty"),
]  # fmt: skip


@pytest.mark.parametrize(("signals", "cause", "evidence"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_cause_is_named_with_its_evidence(signals: Signals, cause: Cause, evidence: str) -> None:
    findings = find_causes(signals, Context(service="auth", last_healthy="auth-00011-fuw", max_instances="2"))
    assert findings, "expected a finding"
    assert findings[0].cause is cause
    assert any(evidence in line for line in findings[0].evidence), findings[0].evidence
    assert findings[0].fix


QUIET = [
    ("a healthy revision's lines", Signals(logs=logs(("INFO", "GET /health 200 2ms"), ("INFO", "started")))),
    ("the app's own port line alone", Signals(logs=logs(("INFO", "Uvicorn running on http://0.0.0.0:3000")))),
    ("a warning only", Signals(logs=logs(("WARNING", "slow query: 812 ms")))),
    ("nothing at all", Signals()),
]


@pytest.mark.parametrize("signals", [q[1] for q in QUIET], ids=[q[0] for q in QUIET])
def test_no_trouble_no_findings(signals: Signals) -> None:
    assert find_causes(signals) == ()


def test_a_traceback_after_a_good_start_is_not_crash_on_start() -> None:
    signals = Signals(logs=logs(TCP_PROBE, "Traceback (most recent call last):", "ValueError: bad request body"))
    causes = [f.cause for f in find_causes(signals)]
    assert Cause.CRASH_ON_START not in causes
    assert causes == [Cause.STARTUP_PROBE_FAILED]


def test_a_traceback_without_a_startup_failure_is_not_crash_on_start() -> None:
    signals = Signals(logs=logs("Traceback (most recent call last):", "ValueError: bad request body"))
    assert [f.cause for f in find_causes(signals)] == [Cause.UNKNOWN]


def test_the_crash_explains_the_port_failure_and_names_the_variable() -> None:
    signals = Signals(logs=logs("KeyError: 'DATABASE_URL'", PORT))
    (finding,) = find_causes(signals, Context(service="billing", last_healthy="billing-00020-hoy"))
    assert finding.cause is Cause.CRASH_ON_START and finding.confidence is Confidence.HIGH
    assert PORT in finding.evidence  # the echo's line is evidence for the cause
    assert "DATABASE_URL is not set" in finding.fix and "billing-00020-hoy" in finding.fix


def test_the_port_fix_names_both_ports() -> None:
    signals = Signals(logs=logs(("INFO", "Listening on http://0.0.0.0:3000"), TCP_PROBE, PORT))
    (finding,) = find_causes(signals, Context(service="auth"))
    assert "$PORT (8080)" in finding.fix and "listens on 3000" in finding.fix
    assert TCP_PROBE in finding.evidence


def test_the_memory_fix_names_the_numbers() -> None:
    (finding,) = find_causes(Signals(logs=logs(OOM)), Context(service="api"))
    assert "above 530 MiB (now 512 MiB)" in finding.fix


def test_the_secret_fix_names_account_and_secret() -> None:
    (finding,) = find_causes(Signals((failed(SECRET, "SECRETS_ACCESS_CHECK_FAILED"),)))
    assert "sa@p.iam.gserviceaccount.com" in finding.fix
    assert "projects/412345678901/secrets/stripe-api-key/versions/latest" in finding.fix


def test_two_independent_causes_are_both_reported() -> None:
    signals = Signals((failed(SECRET, "SECRETS_ACCESS_CHECK_FAILED"),), logs(("WARNING", ABORTED)), not_ready=True)
    assert [f.cause for f in find_causes(signals)] == [Cause.SECRET_ACCESS_DENIED, Cause.QUOTA_OR_SCALING]


def test_evidence_is_capped() -> None:
    signals = Signals(logs=logs(*[f"{OOM} ({i})" for i in range(20)]))
    assert len(find_causes(signals)[0].evidence) == 6
