"""Diagnose failing Cloud Run services: collect (IO, `Diagnoser`), judge (pure rules), render (pure)."""

from bot.diagnosis.changes import failing_revision, last_healthy_revision, revision_changes, serving_revision
from bot.diagnosis.collect import Diagnoser, DiagnosisSettings, fault_finding, judge, not_on_cloud_run
from bot.diagnosis.models import FAULT_CAUSES, Cause, Change, CloudRunView, Confidence, Diagnosis, Finding
from bot.diagnosis.render import diagnosis_to_json, render_diagnosis, summarize
from bot.diagnosis.rules import RULES, Context, Pattern, Rule, Signals, find_causes

__all__ = [
    "FAULT_CAUSES",
    "RULES",
    "Cause",
    "Change",
    "CloudRunView",
    "Confidence",
    "Context",
    "Diagnoser",
    "Diagnosis",
    "DiagnosisSettings",
    "Finding",
    "Pattern",
    "Rule",
    "Signals",
    "diagnosis_to_json",
    "failing_revision",
    "fault_finding",
    "find_causes",
    "judge",
    "last_healthy_revision",
    "not_on_cloud_run",
    "render_diagnosis",
    "revision_changes",
    "serving_revision",
    "summarize",
]
