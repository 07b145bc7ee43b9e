"""Run cascade's Dagster jobs in-process: the code path of the UI, from the command line."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from cascade.defs.build import PIPELINE_JOB, build_definitions
from cascade.defs.partitions import pool_limit
from cascade.settings import Settings


@dataclass
class PipelineResult:
    """What one run materialised: per asset its metadata, check outcomes, seconds."""

    success: bool
    run_id: str
    materialized: dict[str, dict] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0


def partition_range_tags(first: date, last: date) -> dict[str, str]:
    """Tags that make one run cover the daily partitions first..last (inclusive)."""
    return {
        ASSET_PARTITION_RANGE_START_TAG: first.isoformat(),
        ASSET_PARTITION_RANGE_END_TAG: last.isoformat(),
    }


def _metadata_values(entry: dict) -> dict:
    return {key: getattr(value, "value", value) for key, value in entry.items()}


def root_cause(error) -> str:
    """The innermost error's message: what went wrong, not where Dagster caught it."""
    while error is not None and error.cause is not None:
        error = error.cause
    return error.message.strip().splitlines()[-1] if error else "unknown error"


def run_pipeline(
    settings: Settings,
    first: date,
    last: date,
    job: str = PIPELINE_JOB,
    instance: dg.DagsterInstance | None = None,
    log_level: str = "INFO",
    **resource_overrides,
) -> PipelineResult:
    """Materialise the job's assets for the local days first..last in one ranged run."""
    started = time.perf_counter()
    definitions = build_definitions(settings, **resource_overrides)
    job_def = definitions.resolve_job_def(job)
    instance = instance or dg.DagsterInstance.ephemeral()
    outcome = job_def.execute_in_process(
        instance=instance,
        tags=partition_range_tags(first, last),
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
        raise_on_error=False,
    )
    result = PipelineResult(outcome.success, outcome.run_id)
    for event in outcome.all_events:
        if event.is_step_materialization:
            materialization = event.step_materialization_data.materialization
            key = materialization.asset_key.to_user_string()
            result.materialized[key] = _metadata_values(materialization.metadata)
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            result.checks[f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"] = (
                evaluation.passed
            )
        elif event.is_step_failure:
            result.failures.append(f"{event.step_key}: {root_cause(event.step_failure_data.error)}")
    result.seconds = time.perf_counter() - started
    return result


def last_days(settings: Settings, days: int) -> tuple[date, date]:
    """The local dates of the last `days` days, today included."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    today = datetime.now(ZoneInfo(settings.timezone)).date()
    return today - timedelta(days=days - 1), today


def prepare_dagster_home(settings: Settings) -> Path:
    """A DAGSTER_HOME under CASCADE_HOME whose pool limit matches the lake's writers."""
    home = (settings.home / "dagster").absolute()
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(
        "# written by cascade from CASCADE_* settings: lake writers allowed at once\n"
        "concurrency:\n"
        "  pools:\n"
        f"    default_limit: {pool_limit(settings)}\n"
        "telemetry:\n"
        "  enabled: false\n"
    )
    return home


def nightscout_pipeline_job() -> dg.JobDefinition:
    """The pipeline job rebuilt from the environment: the target of `dg.reconstructable`,
    so a multiprocess run can rebuild it in each step's process."""
    return build_definitions().resolve_job_def(PIPELINE_JOB)
