"""Durable state: every run, result, diagnosis, decision and Slack message, on SQLite or PostgreSQL.

Open it with `open_store(url, environ, settings)`; tests and the bot hand `Store(engine)` an engine of their own.
"""

from bot.store.engines import default_sqlite_path, mask_url, resolve_database_url
from bot.store.history import HistoryReport, ServiceHistory, StateChange, TierSummary, parse_duration
from bot.store.records import (
    AuditRecord,
    CleanupCounts,
    FindingRecord,
    OfferDecision,
    OfferRecord,
    OutboxRecord,
    RunRecord,
    to_iso,
)
from bot.store.schema import SchemaTooNewError, head_revision
from bot.store.store import Store, open_store, open_store_with_schema, recording

__all__ = [
    "AuditRecord",
    "CleanupCounts",
    "FindingRecord",
    "HistoryReport",
    "OfferDecision",
    "OfferRecord",
    "OutboxRecord",
    "RunRecord",
    "SchemaTooNewError",
    "ServiceHistory",
    "StateChange",
    "Store",
    "TierSummary",
    "default_sqlite_path",
    "head_revision",
    "mask_url",
    "open_store",
    "open_store_with_schema",
    "parse_duration",
    "recording",
    "resolve_database_url",
    "to_iso",
]
