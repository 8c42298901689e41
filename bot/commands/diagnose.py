"""`stagebot diagnose SERVICE`: what Cloud Run and its logs say about one service, with the evidence.

Exit 0 when nothing is wrong, 1 when a finding names a problem (or says the bot could not look), 2 for bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Mapping
from datetime import timedelta

from bot.cloud import build_cloud_apis
from bot.commands.base import Command, CommandContext
from bot.config import Config, ServiceConfig
from bot.diagnosis import Diagnoser, Diagnosis, DiagnosisSettings, diagnosis_to_json, render_diagnosis, summarize
from bot.diagnosis.collect import not_on_cloud_run
from bot.diagnosis.storage import save_diagnosis
from bot.errors import EXIT_OK, EXIT_PROBLEM, UsageError
from bot.redaction import Redactor
from bot.store import Store, open_store


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("service", metavar="SERVICE", help="a service name from the config")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--minutes", type=float, default=30.0, metavar="N", help="log window (default: 30)")
    parser.add_argument("--max-logs", type=int, default=50, metavar="N", help="newest log lines kept (default: 50)")
    parser.add_argument("--no-record", action="store_true", help="do not record this diagnosis in the store")


def diagnose_exit_code(diagnosis: Diagnosis) -> int:
    """Return 0 when no finding names a problem, 1 otherwise."""
    return EXIT_PROBLEM if diagnosis.has_problem else EXIT_OK


def _pick(config: Config, name: str) -> ServiceConfig:
    if name not in config.services:
        raise UsageError(f"unknown service {name!r} (known: {', '.join(sorted(config.services))})")
    return config.services[name]


async def _diagnose(
    service: ServiceConfig, config: Config, environ: Mapping[str, str], settings: DiagnosisSettings
) -> Diagnosis:
    if service.cloud_run is None:
        return not_on_cloud_run(service)
    apis = build_cloud_apis(environ, project=service.cloud_run.project)
    try:
        diagnoser = Diagnoser(apis.run, apis.logs, redactor=Redactor(config.secrets), settings=settings)
        return await diagnoser.diagnose(service)
    finally:
        apis.close()


def record_diagnosis(store: Store, run_id: int, diagnosis: Diagnosis) -> int:
    """Store a finished diagnosis under its run and close the run; return the diagnosis id."""
    diagnosis_id = save_diagnosis(store, run_id, diagnosis)
    top = diagnosis.top
    store.finish_run(
        run_id,
        state="finished",
        verdict=top.cause.value if top else "healthy",
        summary=summarize(diagnosis),
        details={"diagnosis_id": diagnosis_id},
    )
    return diagnosis_id


def _run(args: argparse.Namespace, context: CommandContext) -> int:
    config = context.load_config(args.config)
    service = _pick(config, args.service)
    if args.minutes <= 0 or args.max_logs < 1:
        raise UsageError("--minutes and --max-logs must be positive")
    settings = DiagnosisSettings(log_window=timedelta(minutes=args.minutes), max_log_entries=args.max_logs)
    store = None if args.no_record else open_store(None, context.environ, config.store)
    try:
        run_id = None
        if store is not None:
            user = context.environ.get("USER") or context.environ.get("LOGNAME") or "unknown"
            run_id = store.create_run(kind="diagnose", target=service.name, requested_by=user, origin="cli")
        try:
            diagnosis = asyncio.run(_diagnose(service, config, context.environ, settings))
        except BaseException:
            if store is not None and run_id is not None:
                store.finish_run(run_id, state="interrupted", summary="the diagnosis did not finish")
            raise
        if store is not None and run_id is not None:
            record_diagnosis(store, run_id, diagnosis)
    finally:
        if store is not None:
            store.close()
    if args.json:
        context.out(json.dumps(diagnosis_to_json(diagnosis), indent=2))
    else:
        context.out(render_diagnosis(diagnosis))
    return diagnose_exit_code(diagnosis)


COMMAND = Command(
    add_arguments=_add_arguments,
    run=_run,
)
