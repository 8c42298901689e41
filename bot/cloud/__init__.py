"""Cloud Run and Cloud Logging through the real google clients, translated into plain values."""

from bot.cloud.clients import LOGGING_ENDPOINT_VAR, RUN_ENDPOINT_VAR, CloudApis, build_cloud_apis
from bot.cloud.faults import CloudError, FaultKind
from bot.cloud.logs import REVISION_LOGS, CloudLogs, build_log_filter
from bot.cloud.models import (
    Condition,
    ConditionState,
    ContainerSpec,
    LogEntry,
    RevisionInfo,
    Scaling,
    ServiceChange,
    ServiceInfo,
    TrafficTarget,
)
from bot.cloud.run import RESTART_LABEL, CloudRun

__all__ = [
    "LOGGING_ENDPOINT_VAR",
    "RESTART_LABEL",
    "REVISION_LOGS",
    "RUN_ENDPOINT_VAR",
    "CloudApis",
    "CloudError",
    "CloudLogs",
    "CloudRun",
    "Condition",
    "ConditionState",
    "ContainerSpec",
    "FaultKind",
    "LogEntry",
    "RevisionInfo",
    "Scaling",
    "ServiceChange",
    "ServiceInfo",
    "TrafficTarget",
    "build_cloud_apis",
    "build_log_filter",
]
