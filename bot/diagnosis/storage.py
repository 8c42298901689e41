"""Keep a diagnosis in the store: under a `diagnose` run (the CLI) or under the status run that found the failure."""

from __future__ import annotations

from bot.diagnosis.models import Diagnosis
from bot.diagnosis.render import diagnosis_to_json, summarize
from bot.store import FindingRecord, Store


def save_diagnosis(store: Store, run_id: int, diagnosis: Diagnosis) -> int:
    """Store a diagnosis and its findings under a run; return the diagnosis id (offers of fixes point at it)."""
    view = diagnosis.cloud_run
    findings = [
        FindingRecord(
            code=f.cause.value, detail=f.fix, severity=f.confidence.value, evidence={"lines": list(f.evidence)}
        )
        for f in diagnosis.findings
    ]
    return store.record_diagnosis(
        run_id,
        service=diagnosis.service,
        summary=summarize(diagnosis),
        findings=findings,
        revision=view.failing_revision if view else None,
        etag=(view.etag or None) if view else None,
        details=diagnosis_to_json(diagnosis),
    )
