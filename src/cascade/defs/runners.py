"""What the CLI launches: a job in-process (`cascade run`), a backfill, the UI (`cascade dev`).

Public and stable: `cascade.cli` imports these names. Runs are recorded in the persistent
instance under `$CASCADE_HOME/dagster`, so `cascade dev` shows the history of `cascade run`.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
from filelock import FileLock

from cascade.defs.ingestion import touched_sites
from cascade.defs.jobs import INGEST_JOB, PIPELINE_JOB, REFINE_JOB, SITES_DBT_JOB, SITES_JOB
from cascade.defs.partitions import (
    AFTER_SITES_RUN_TAG,
    BACKFILL_CHUNK_DAYS,
    SITES,
    partition_range_tags,
    pool_limit,
    sites_range_tags,
    touched_range,
)
from cascade.defs.resources import CascadeResource
from cascade.defs.storage import EVENT_BATCH_ENV, BatchedSqliteEventLogStorage
from cascade.settings import Settings
from cascade.transform import prepare_dbt_project

__all__ = [
    "BackfillReport",
    "PipelineResult",
    "RunSummary",
    "SitesRunReport",
    "chunks",
    "dagster_dev_command",
    "dev",
    "last_days",
    "nightscout_pipeline_job",
    "partition_range_tags",
    "prepare_dagster_home",
    "root_cause",
    "run_backfill",
    "run_pipeline",
    "run_sites",
    "sync_site_partitions",
]


@dataclass
class PipelineResult:
    """What one run materialised: per asset its metadata, check outcomes, seconds."""

    success: bool
    run_id: str
    materialized: dict[str, dict] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0


def root_cause(error) -> str:
    """The innermost error's message: what went wrong, not where Dagster caught it."""
    while error is not None and error.cause is not None:
        error = error.cause
    return error.message.strip().splitlines()[-1] if error else "unknown error"


def last_days(settings: Settings, days: int) -> tuple[date, date]:
    """The local dates of the last `days` days, today included."""
    today = datetime.now(ZoneInfo(settings.timezone)).date()
    return today - timedelta(days=days - 1), today


def prepare_dagster_home(settings: Settings) -> Path:
    """A DAGSTER_HOME under CASCADE_HOME whose pool limit matches the lake's writers, with
    Dagster's SQLite storage in its default folders, its event log batching (defs/storage.py)."""
    home = (settings.home / "dagster").absolute()
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(
        "# written by cascade from CASCADE_* settings: lake writers allowed at once\n"
        "concurrency:\n"
        "  pools:\n"
        f"    default_limit: {pool_limit(settings)}\n"
        "event_log_storage:\n"
        f"  module: {BatchedSqliteEventLogStorage.__module__}\n"
        f"  class: {BatchedSqliteEventLogStorage.__name__}\n"
        "  config:\n"
        f"    base_dir: {json.dumps(str(home / 'history' / 'runs'))}\n"  # quoted: any path
        "telemetry:\n"
        "  enabled: false\n"
    )
    for name, value in EVENT_BATCH_ENV.items():
        os.environ.setdefault(name, value)  # this process's runs; dev_command passes it on
    return home


_prepare_dbt_once = cache(prepare_dbt_project)
PLANNED_SUBSET_ENV = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"


def persistent_instance(settings: Settings) -> dg.DagsterInstance:
    """The instance `cascade dev` shows: run history under $CASCADE_HOME/dagster.

    Opened under a file lock: processes or threads opening a new instance at once race to
    create its SQLite storage ("alembic_version has more than one head").
    """
    home = prepare_dagster_home(settings)
    with FileLock(home / "instance.lock", timeout=settings.lock_timeout_s):
        return dg.DagsterInstance.local_temp(str(home))


def run_pipeline(
    settings: Settings,
    first: date,
    last: date,
    job: str = PIPELINE_JOB,
    instance: dg.DagsterInstance | None = None,
    log_level: str | None = None,
    nightscout_url: str | None = None,
    subject_id: str | None = None,
    verbose: bool = False,
    prepare_dbt: bool = True,
    tags: dict[str, str] | None = None,
) -> PipelineResult:
    """Materialise the job's assets for the local days first..last in one ranged run.

    Quiet unless `verbose`: Dagster logs warnings only and dbt's lines go to its log file
    under CASCADE_HOME/dbt; the result carries what was materialised and checked.
    `prepare_dbt` parses the dbt project first, once per process (a model added since
    install is an asset); `tags` go on the run besides its partition range.
    """
    from cascade.definitions import build_definitions

    started = time.perf_counter()
    if prepare_dbt:
        _prepare_dbt_once()
    resource = CascadeResource.from_settings(
        settings,
        overrides={"nightscout_url": nightscout_url, "subject_id": subject_id},
        echo_dbt=verbose,
    )
    job_def = build_definitions(settings, resource).resolve_job_def(job)
    level = log_level or ("DEBUG" if verbose else "WARNING")
    own_instance = instance is None
    instance = instance or persistent_instance(settings)
    try:
        outcome = job_def.execute_in_process(
            instance=instance,
            tags=partition_range_tags(first, last) | (tags or {}),
            run_config={"loggers": {"console": {"config": {"log_level": level}}}},
            raise_on_error=False,
        )
    finally:
        if own_instance:
            instance.dispose()
    result = _collect(outcome)
    result.seconds = time.perf_counter() - started
    return result


def _collect(outcome) -> PipelineResult:
    result = PipelineResult(outcome.success, outcome.run_id)
    for event in outcome.all_events:
        if event.is_step_materialization:
            materialization = event.step_materialization_data.materialization
            key = materialization.asset_key.to_user_string()
            result.materialized[key] = {
                name: getattr(value, "value", value)
                for name, value in materialization.metadata.items()
            }
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
            result.checks[name] = evaluation.passed
        elif event.is_step_failure:
            result.failures.append(f"{event.step_key}: {root_cause(event.step_failure_data.error)}")
    return result


def nightscout_pipeline_job() -> dg.JobDefinition:
    """The pipeline job rebuilt from the environment: the target of `dg.reconstructable`,
    so a multiprocess run can rebuild it in each step's process."""
    from cascade.definitions import build_definitions

    return build_definitions().resolve_job_def(PIPELINE_JOB)


@dataclass
class RunSummary:
    """One run of a backfill: its job, days, success, rows fetched, failures, seconds."""

    job: str
    first: date
    last: date
    success: bool
    rows: int
    failures: list[str]
    seconds: float
    commit_retries: int = 0


@dataclass
class BackfillReport:
    """All runs of a backfill."""

    runs: list[RunSummary] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(r.rows for r in self.runs)

    @property
    def failures(self) -> list[str]:
        return [f"{r.job} {r.first}..{r.last}: {f}" for r in self.runs for f in r.failures]

    @property
    def commit_retries(self) -> int:
        return sum(r.commit_retries for r in self.runs)

    def describe(self) -> str:
        failed = sum(not r.success for r in self.runs)
        rate = self.rows / self.seconds if self.seconds else 0
        return (
            f"{len(self.runs)} runs ({failed} failed) · {self.rows:,} rows fetched · "
            f"{self.seconds:.1f} s · {rate:,.0f} rows/s · {self.commit_retries} commit retries"
        )


def chunks(first: date, last: date, runs: int, max_per_run: int = BACKFILL_CHUNK_DAYS):
    """Split first..last (inclusive) into at least `runs` contiguous (first, last) ranges."""
    days = (last - first).days + 1
    size = min(max_per_run, max(1, math.ceil(days / max(runs, 1))))
    start = first
    while start <= last:
        end = min(last, start + timedelta(days=size - 1))
        yield start, end
        start = end + timedelta(days=1)


def run_in_child(
    settings_json: str, job: str, first: date, last: date, url: str, subject: str | None
) -> RunSummary:
    """One run of `job` over first..last in a process of its own (a backfill's worker), from
    settings as `Settings.to_child_json` wrote them; the dbt project must be parsed already."""
    settings = Settings.from_child_json(settings_json)
    started = time.perf_counter()
    if job == REFINE_JOB:
        # a backfill's dbt run over many days: Dagster then records one "materialization
        # planned" event per asset, not one per asset and day (~29 a day, each a few SQLite
        # commits: more than a third of a year's refine run). Dagster's own switch; its price is
        # that the days of a failed refine run show as missing in the UI, not as failed.
        os.environ[PLANNED_SUBSET_ENV] = "true"
    result = run_pipeline(
        settings, first, last, job=job, nightscout_url=url, subject_id=subject, prepare_dbt=False
    )
    raw = [meta for key, meta in result.materialized.items() if key.startswith("raw/")]
    return RunSummary(
        job,
        first,
        last,
        result.success,
        sum(meta.get("rows_fetched", 0) for meta in raw),
        result.failures,
        time.perf_counter() - started,
        # the multi-asset reports its run's retries on each of its tables
        max((meta.get("commit_retries", 0) for meta in raw), default=0),
    )


def run_backfill(
    settings: Settings,
    first: date,
    last: date,
    concurrency: int,
    url: str,
    subject: str | None = None,
    one_run_per_partition: bool = False,
) -> BackfillReport:
    """Materialise first..last: ranged ingestion runs `concurrency` at a time, then dbt once.

    The raw tables load as ranged runs of the ingestion job (at most BACKFILL_CHUNK_DAYS days
    each), each in its own process, `concurrency` at a time: in parallel on PostgreSQL, queued
    on the writer lock locally. dbt then builds the whole range in one run of the refine job,
    as Dagster's own backfill does with the assets' backfill policies.
    `one_run_per_partition` runs the whole pipeline once per day instead (to measure against).
    """
    _prepare_dbt_once()  # here, not in every process at the same time
    prepare_dagster_home(settings)
    started = time.perf_counter()
    report = BackfillReport()
    payload = settings.to_child_json()
    context = multiprocessing.get_context("spawn")
    if one_run_per_partition:
        phases = [[(PIPELINE_JOB, a, b) for a, b in chunks(first, last, 0, 1)]]
    else:
        phases = [
            [(INGEST_JOB, a, b) for a, b in chunks(first, last, concurrency)],
            [(REFINE_JOB, first, last)],
        ]
    with ProcessPoolExecutor(max_workers=max(1, concurrency), mp_context=context) as pool:
        for phase in phases:
            futures = [
                pool.submit(run_in_child, payload, job, a, b, url, subject) for job, a, b in phase
            ]
            report.runs.extend(future.result() for future in futures)
            if report.failures:
                break  # dbt over a range whose raw data failed to load would mislead
    report.seconds = time.perf_counter() - started
    return report


def dagster_dev_command(
    settings: Settings,
    port: int | None = None,
    nightscout_url: str | None = None,
    subject_id: str | None = None,
) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) of `dagster dev` over cascade's code location and instance;
    `nightscout_url`/`subject_id` point the code location's runs at a site (the demo's)."""
    home = prepare_dagster_home(settings)
    dagster = str(Path(sys.executable).parent / "dagster")
    argv = [dagster, "dev", "-m", "cascade.definitions"]
    if port is not None:
        argv += ["--port", str(port)]
    # this environment's bin first: dagster-dbt's prepare_if_dev runs `dbt` from PATH
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "DAGSTER_HOME": str(home), "PATH": path}
    if nightscout_url:
        env["CASCADE_NIGHTSCOUT_URL"] = nightscout_url
    if subject_id:
        env["CASCADE_SUBJECT_ID"] = subject_id
    return argv, env


def dev(settings: Settings, port: int | None = None) -> int:
    """The Dagster UI over cascade, in the foreground; returns its exit code.

    Without CASCADE_NIGHTSCOUT_URL a demo Nightscout server runs beside it (as for `cascade
    run`) and the code location's runs fetch from it, so Materialize works out of the box.
    """
    _prepare_dbt_once()
    if settings.nightscout_url:
        argv, env = dagster_dev_command(settings, port)
        return subprocess.call(argv, env=env)
    from cascade.demo.server import DemoServer

    with DemoServer() as server:
        print(f"no CASCADE_NIGHTSCOUT_URL: serving demo data on {server.url}", flush=True)
        subject = settings.subject_id or "demo"
        argv, env = dagster_dev_command(settings, port, server.url, subject)
        try:
            return subprocess.call(argv, env=env)
        except KeyboardInterrupt:
            return 130


def sync_site_partitions(settings: Settings, instance: dg.DagsterInstance) -> list[str]:
    """Apply what the `sites_partitions` sensor would request now; returns the site keys."""
    from cascade.defs.sensors import site_partition_requests

    for request in site_partition_requests(settings, instance):
        if isinstance(request, dg.AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(SITES.name, list(request.partition_keys))
        else:
            for key in request.partition_keys:
                instance.delete_dynamic_partition(SITES.name, key)
    return list(SITES.get_partition_keys(dynamic_partitions_store=instance))


@dataclass
class SitesRunReport:
    """One refresh of every site: the ingest run (per site status) and the dbt run after it."""

    ingest: PipelineResult
    dbt: PipelineResult | None
    days: tuple[date, date] | None
    sites: dict[str, dict] = field(default_factory=dict)


def run_sites(
    settings: Settings, instance: dg.DagsterInstance | None = None, verbose: bool = False
) -> SitesRunReport | None:
    """What the daemon does hourly, in-process: sync the `sites` partitions with the registry,
    one run of the sites job over all of them (one dlt load), then one run of dbt over the
    local days it touched. None when no site is registered. A site that fails fails its own
    partition (and the ingest run); the others load and reach gold."""
    from cascade.definitions import build_definitions

    _prepare_dbt_once()
    own_instance = instance is None
    instance = instance or persistent_instance(settings)
    resource = CascadeResource.from_settings(settings, echo_dbt=verbose)
    definitions = build_definitions(settings, resource)
    level = "DEBUG" if verbose else "WARNING"
    config = {"loggers": {"console": {"config": {"log_level": level}}}}
    try:
        keys = sync_site_partitions(settings, instance)
        if not keys:
            return None
        started = time.perf_counter()
        outcome = definitions.resolve_job_def(SITES_JOB).execute_in_process(
            instance=instance, tags=sites_range_tags(keys), run_config=config, raise_on_error=False
        )
        ingest = _collect(outcome)
        ingest.seconds = time.perf_counter() - started
        report = SitesRunReport(ingest, None, None, _site_events(instance, outcome.run_id))
        report.days = touched_range(touched_sites(instance, outcome.run_id).values(), settings)
        if report.days is not None:
            report.dbt = run_pipeline(
                settings,
                *report.days,
                job=SITES_DBT_JOB,
                instance=instance,
                verbose=verbose,
                prepare_dbt=False,
                tags={AFTER_SITES_RUN_TAG: outcome.run_id},
            )
        return report
    finally:
        if own_instance:
            instance.dispose()


def _site_events(instance: dg.DagsterInstance, run_id: str) -> dict[str, dict]:
    """Per site: the metadata of its materialization (loaded) or observation (failed)."""
    sites = {}
    for entry in instance.all_logs(run_id):
        record = entry.asset_materialization or entry.asset_observation
        if record is not None and record.partition:
            sites[record.partition] = {
                name: getattr(value, "value", value) for name, value in record.metadata.items()
            }
    return sites
