"""Run the dbt project (bronze -> silver -> gold) on the lake that `Settings` describe.

dbt reads its profile from the environment; `dbt_env` derives that environment from the one
`Settings`, so dbt attaches the same lake under the same alias as every Python connection.
Secrets go only into `DBT_ENV_SECRET_*` variables, which dbt scrubs from everything it prints
or writes.

This module is the one way dbt runs: `dbt_args` builds the command line, `dbt_session` holds
the lock and the environment, `dbt_resource` (dagster-dbt's DbtCliResource) runs it. Both
`cascade transform` (`run_transform`, which summarises) and the Dagster assets
(`cascade.defs.transform`, which stream events) go through them, so they build identically:
models and data tests; dbt's unit tests too where `CASCADE_DBT_UNIT_TESTS` asks for them
(development, CI: they check the models' SQL on fixtures, not the data, and would take a
quarter of every hourly build), except those whose raw table is missing.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from unittest.mock import patch

from dagster_dbt import DbtCliResource, DbtProject
from filelock import FileLock
from packaging.version import Version

from cascade.lake.connection import BUILDS_TABLE, SPILL_DIR_PREFIX, LakeError, connect
from cascade.lake.extensions import EXTENSION_DIR, ensure_installed
from cascade.lake.lock import transform_lock
from cascade.settings import DUCKDB_DEFAULT_MEMORY, Settings, plain

PROJECT_DIR = Path(__file__).resolve().parents[2] / "transforms" / "dbt"
SECRET_PREFIX = "DBT_ENV_SECRET_"
# dbt phones home unless told not to; nothing here may reach the internet.
DBT_QUIET_ENV = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_VERSION_CHECK": "false"}


class TransformError(RuntimeError):
    """dbt failed; the message lists the failing nodes with secrets redacted."""


@dataclass(frozen=True)
class NodeEvent:
    """One model, test or unit test that dbt finished."""

    name: str
    resource_type: str
    status: str
    seconds: float
    message: str = ""


@dataclass
class TransformResult:
    """What a dbt build did: models built, tests passed/failed, failures, seconds."""

    models: list[str] = field(default_factory=list)
    tests_passed: int = 0
    tests_failed: int = 0
    tests_warned: int = 0
    unit_tests_passed: int = 0
    skipped: int = 0
    failures: list[NodeEvent] = field(default_factory=list)
    seconds: float = 0.0
    window: tuple[date | None, date | None] = (None, None)
    full_refresh: bool = False

    @property
    def success(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        """One line for a CLI or a log."""
        start, end = self.window
        scope = "all dates" if start is None and end is None else f"{start or '…'} to {end or '…'}"
        return (
            f"{len(self.models)} models built ({scope}{', full refresh' if self.full_refresh else ''}), "
            f"{self.tests_passed} tests passed, {self.tests_failed} failed, "
            f"{self.unit_tests_passed} unit tests passed, in {self.seconds:.1f} s"
        )


def dbt_spill_dir(settings: Settings) -> Path:
    """dbt's DuckDB spill folder: one per lake and CASCADE_HOME, the same in every build.

    dbt hashes its whole profile, and any change of it (a folder named per build, say) makes
    the next build parse the project afresh (5-7 s, "Unable to do partial parsing because
    profile has changed"). One folder is enough: builds of a lake take turns under its
    transform lock, and dbt_session clears what a killed build left there.
    """
    return settings.work_dir / f"{SPILL_DIR_PREFIX}dbt-{settings.lake_alias}"


def dbt_env(settings: Settings) -> dict[str, str]:
    """The environment `profiles.yml` reads: `CASCADE_*` values and `DBT_ENV_SECRET_*` secrets."""
    env = {
        "CASCADE_DBT_TARGET": settings.profile,
        "CASCADE_LAKE_ALIAS": settings.lake_alias,
        "CASCADE_TIMEZONE": settings.timezone,
        "CASCADE_DBT_DATA_PATH": settings.lake_data_path,
        "CASCADE_DUCKDB_EXTENSION_DIR": str(EXTENSION_DIR),
        "CASCADE_DUCKDB_MEMORY_LIMIT": settings.duckdb_memory_limit or DUCKDB_DEFAULT_MEMORY,
        "CASCADE_DUCKDB_TEMP_DIRECTORY": str(dbt_spill_dir(settings)),
    }
    if settings.catalog is None:
        env["CASCADE_DBT_CATALOG_PATH"] = str(settings.catalog_path)
        return env
    catalog = settings.catalog
    endpoint = settings.s3_endpoint_host or "s3.amazonaws.com"
    env |= {
        "CASCADE_DBT_PG_HOST": catalog.host,
        "CASCADE_DBT_PG_PORT": str(catalog.port),
        "CASCADE_DBT_PG_DATABASE": catalog.database,
        "CASCADE_DBT_PG_USER": catalog.user,
        "CASCADE_S3_REGION": settings.s3_region,
        "CASCADE_S3_URL_STYLE": settings.s3_url_style,
        "CASCADE_S3_USE_SSL": str(settings.s3_use_ssl).lower(),
        "CASCADE_DBT_S3_ENDPOINT": endpoint,
        f"{SECRET_PREFIX}CASCADE_PG_PASSWORD": catalog.password.get_secret_value(),
        f"{SECRET_PREFIX}CASCADE_S3_ACCESS_KEY_ID": plain(settings.s3_access_key_id) or "",
        f"{SECRET_PREFIX}CASCADE_S3_SECRET_ACCESS_KEY": plain(settings.s3_secret_access_key) or "",
    }
    return env


def dbt_vars(settings: Settings) -> dict:
    """The `--vars` of every run: the same for every window, so dbt reuses its manifest."""
    return {
        "timezone": settings.timezone,
        "timezone_override": settings.timezone_override,
        "subject_batch_readings": settings.dbt_batch_readings,
    }


def window_env(
    start: date | None = None, end: date | None = None, subjects: Iterable[str] | None = None
) -> dict[str, str]:
    """The run's window for the models (macros/window.sql reads it while executing, not while
    parsing: a new window never makes dbt parse the project again). Local dates, end exclusive;
    `subjects`, the subjects whose raw data changed: every incremental model reads and replaces
    only their rows (None or empty: every subject)."""
    if start is not None and end is not None and start >= end:
        raise ValueError(
            f"the window is empty: start {start} is not before end {end} (end is exclusive)"
        )
    return {
        "CASCADE_WINDOW_START_DATE": start.isoformat() if start else "",
        "CASCADE_WINDOW_END_DATE": end.isoformat() if end else "",
        "CASCADE_WINDOW_SUBJECTS": ",".join(sorted(set(subjects or ()))),
    }


def dbt_args(
    settings: Settings,
    full_refresh: bool = False,
    select: str | None = None,
    command: str = "build",
    project_dir: Path = PROJECT_DIR,
    exclude: list[str] | None = None,
) -> list[str]:
    """The dbt command line of every run, `cascade transform` and Dagster alike (pure).

    dbt writes its artifacts and its log file (text, info level) under `<CASCADE_HOME>/dbt`,
    next to the lake it ran on, never into the repository. Its stdout stays structured (JSON
    lines, dagster-dbt turns them into events); callers decide whether anyone sees them.
    dbt's unit tests run only with `settings.dbt_unit_tests` (dbt's advice: development and CI,
    not production); `exclude` is then `unit_test_exclusions(settings)`. The window is not an
    argument: dbt_session puts it in the environment (see window_env).
    """
    work = dbt_work_dir(settings)
    args = [
        command,
        "--project-dir",
        str(project_dir),
        "--profiles-dir",
        str(project_dir),
        "--target-path",
        str(work / "target"),
        "--log-path",
        str(work / "logs"),
        "--vars",
        json.dumps(dbt_vars(settings), sort_keys=True),
        # a test runs once every model it reads is built (or upstream of what is): a step of
        # dbt's table models never tests an incremental model another step has yet to build
        "--indirect-selection",
        "buildable",
        "--log-format-file",
        "text",
        "--log-level-file",
        "info",
        "--no-use-colors",
        "--no-send-anonymous-usage-stats",
        "--no-version-check",
    ]
    if full_refresh:
        args.append("--full-refresh")
    if select:
        args += ["--select", select]
    if exclude:
        args += ["--exclude", " ".join(exclude)]  # one value: dagster-dbt reads one per flag
    if not settings.dbt_unit_tests:
        args += ["--exclude-resource-type", "unit_test"]
    return args


def dbt_work_dir(settings: Settings) -> Path:
    """Where dbt's artifacts (`target/`) and log file (`logs/dbt.log`) of this lake go."""
    return settings.home.absolute() / "dbt"


# the version of DBT_EXECUTABLE: the dbt-core installed in this environment
DBT_VERSION = Version(importlib.metadata.version("dbt-core"))
DBT_EXECUTABLE = Path(sys.executable).parent / "dbt"  # this environment's, whatever PATH says


@cache
def dbt_project() -> DbtProject:
    """The one DbtProject. Its manifest is built at install (`dbt parse`), under `dagster dev`
    again at load (`prepare_if_dev`), and by `prepare_dbt_project` when missing."""
    project = DbtProject(project_dir=PROJECT_DIR, profiles_dir=PROJECT_DIR)
    project.prepare_if_dev()
    if not project.manifest_path.exists():
        prepare_dbt_project()
    return project


class CascadeDbtCli(DbtCliResource):
    """dagster-dbt's DbtCliResource without two costs it pays before every dbt command, twice a
    run (Dagster makes a new resource for each step, so nothing cached on it survives):
    - the in-process dbt adapter (~1.8 s of loading dbt's macros), which only serves
      `fetch_row_counts()` / `fetch_column_metadata()`; cascade uses neither, and
      DbtCliInvocation takes None for it;
    - `dbt --version` in a subprocess (~4 s: dbt's imports) to learn the version of the dbt
      it will run: that is DBT_EXECUTABLE, the dbt-core installed in this environment, whose
      version its package metadata states.
    dbt itself still runs as the usual subprocess."""

    def _initialize_dbt_core_adapter(self, args):  # noqa: ARG002 - see the class docstring
        return None

    @property
    def _cli_version(self) -> Version:
        # a plain property over a module constant, no lock: Python 3.11's cached_property
        # shares one lock among all instances, and runs in threads of one process call this
        return DBT_VERSION


# what `dbt parse` writes that others read: Dagster the manifest, every dbt run (copied by
# dagster-dbt into its own target path) the partial-parse state
PARSE_ARTIFACTS = ("manifest.json", "partial_parse.msgpack", "semantic_manifest.json")


# what a parse of the project does not read: its outputs and dbt's logs
NOT_PARSED = frozenset({"target", "logs", "dbt_packages"})
ENV_VAR_CALL = re.compile(r"""env_var\(\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]""")


def parse_inputs(project_dir: Path = PROJECT_DIR) -> str:
    """A fingerprint of what `dbt parse` reads: dbt's version, each project file's path, size
    and modification time, and the values of the environment variables the files name in
    `env_var(...)` (secrets' names only: DBT_ENV_SECRET_* never reach the manifest)."""
    digest = hashlib.sha256(f"dbt {DBT_VERSION}\n".encode())
    names: set[str] = set()
    for path in sorted(project_dir.rglob("*")):
        relative = path.relative_to(project_dir)
        if relative.parts[0] in NOT_PARSED or not path.is_file():
            continue
        stat = path.stat()
        digest.update(f"{relative}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        if path.suffix in (".sql", ".yml", ".yaml"):
            names.update(ENV_VAR_CALL.findall(path.read_text(errors="replace")))
    for name in sorted(names):
        value = "" if name.startswith(SECRET_PREFIX) else os.environ.get(name, "\0unset")
        digest.update(f"{name}={value}\n".encode())
    return digest.hexdigest()


def prepare_dbt_project(force: bool = False) -> None:
    """`dbt parse` now, quietly, so that a model added since install becomes an asset;
    skipped unless `force` when nothing it reads changed since the last one (the manifest is
    there and `parse_inputs` matches: milliseconds instead of dbt's seconds of start-up). The
    CLI's runners call it once per command, since they run from a checkout; deployments parse
    once at build time.

    Safe beside other processes of this checkout (two commands, test workers): one parse at a
    time, under a file lock, into a private folder whose artifacts then replace the project's
    atomically, so no reader ever loads a half-written manifest."""
    project = DbtProject(project_dir=PROJECT_DIR, profiles_dir=PROJECT_DIR)
    resource = CascadeDbtCli(project_dir=project, dbt_executable=str(DBT_EXECUTABLE))
    target = PROJECT_DIR / project.target_path  # relative to the project, as dbt reads it
    target.mkdir(parents=True, exist_ok=True)
    stamp = target / "parse.inputs"
    with FileLock(target / "parse.lock"):
        inputs = parse_inputs()
        parsed = stamp.read_text() if stamp.exists() else None
        if not force and parsed == inputs and (target / "manifest.json").exists():
            return
        with tempfile.TemporaryDirectory(dir=target) as work:
            private = Path(work)
            if (target / "partial_parse.msgpack").exists():
                shutil.copy2(target / "partial_parse.msgpack", private / "partial_parse.msgpack")
            with patched_environ(DBT_QUIET_ENV), redirect_stdout(io.StringIO()):
                resource.cli(["parse", "--quiet"], target_path=private).wait()
            for name in PARSE_ARTIFACTS:
                if (private / name).exists():
                    os.replace(private / name, target / name)
        stamp.write_text(inputs)


def dbt_resource() -> DbtCliResource:
    """The dbt resource over the one project, with this environment's dbt."""
    return CascadeDbtCli(project_dir=dbt_project(), dbt_executable=str(DBT_EXECUTABLE))


@contextmanager
def dbt_session(
    settings: Settings, echo: bool = False, window: Mapping[str, str] | None = None
) -> Iterator[None]:
    """Around every dbt build: extensions installed, the lake's transform lock, dbt's profile
    environment derived from `settings`, the run's `window` (window_env; everything when
    None), and dbt's stdout re-prints silenced unless `echo`.

    Inside the transform lock, so two builds of one lake never redirect stdout at once.
    """
    ensure_installed()
    settings.work_dir.mkdir(parents=True, exist_ok=True)  # the spill folder's parent
    environment = {**DBT_QUIET_ENV, **dbt_env(settings), **(window or window_env())}
    with transform_lock(settings), patched_environ(environment):
        shutil.rmtree(dbt_spill_dir(settings), ignore_errors=True)  # a killed build's leftovers
        if echo:
            yield
            return
        with open(os.devnull, "w") as sink, redirect_stdout(sink):
            yield


# The staging model that reads each raw table: its dbt unit tests need that table to exist.
STAGING_MODELS = {
    "entries": "stg_entries",
    "treatments": "stg_treatments",
    "devicestatus": "stg_devicestatus",
    "profile": "stg_profile",
}


def unit_test_exclusions(settings: Settings) -> list[str]:
    """dbt selectors of the unit tests a build of this lake leaves out: none unless
    `settings.dbt_unit_tests` (then dbt_args leaves them all out), else those whose raw table
    never arrived in this lake.

    Missing collections are normal (a treatments-only site, a CSV import): the models build on
    an empty input, but dbt compiles a unit test's fixture against the real source table, so
    those unit tests are left out instead of failing the build half way.
    """
    if not settings.dbt_unit_tests:
        return []
    try:
        with connect(settings, read_only=True) as con:
            present = {
                row[0]
                for row in con.execute(
                    "select table_name from information_schema.tables "
                    "where table_catalog = ? and table_schema = 'raw'",
                    [settings.lake_alias],
                ).fetchall()
            }
    except LakeError:  # no lake yet: a step of table models may run before the first load
        present = set()
    return [
        f"{model},test_type:unit" for table, model in STAGING_MODELS.items() if table not in present
    ]


def patched_environ(values: Mapping[str, str]):
    """`values` in os.environ for a `with` block, what was there before restored after."""
    return patch.dict(os.environ, values)


def _node_events(run_results: dict) -> Iterator[NodeEvent]:
    for result in run_results.get("results", []):
        kind, _, name = result["unique_id"].split(".")[:3]
        yield NodeEvent(
            name=name,
            resource_type=kind,
            status=str(result["status"]),
            seconds=float(result.get("execution_time") or 0.0),
            message=str(result.get("message") or ""),
        )


def _summarise(events: Iterable[NodeEvent], outcome: TransformResult) -> None:
    for event in events:
        kind, status = event.resource_type, event.status
        if status in ("error", "fail", "runtime error"):
            outcome.failures.append(event)
        if status == "skipped":
            outcome.skipped += 1
        elif kind == "model" and status == "success":
            outcome.models.append(event.name)
        elif kind == "test":
            outcome.tests_passed += status == "pass"
            outcome.tests_failed += status in ("fail", "error")
            outcome.tests_warned += status == "warn"
        elif kind == "unit_test":
            outcome.unit_tests_passed += status == "pass"
            outcome.tests_failed += status in ("fail", "error")


def _finished(event) -> NodeEvent | None:
    """A finished node in dbt's structured stdout as a NodeEvent (else None): at dbt's info
    level these are LogModelResult / LogTestResult (NodeFinished is logged at debug only)."""
    raw = event.raw_event
    if raw["info"]["name"] not in FINISHED_EVENTS:
        return None
    data = raw["data"]
    info, run = data.get("node_info", {}), data.get("run_result", {})
    return NodeEvent(
        name=info.get("node_name", ""),
        resource_type=info.get("resource_type", ""),
        status=str(run.get("status") or info.get("node_status") or data.get("status")),
        seconds=float(run.get("execution_time") or data.get("execution_time") or 0.0),
        message=str(run.get("message") or data.get("msg") or ""),
    )


FINISHED_EVENTS = {"NodeFinished", "LogModelResult", "LogTestResult", "LogSeedResult"}


def _error_message(settings: Settings, outcome: TransformResult, exception) -> str:
    lines = [f"dbt build failed on the lake at {settings.describe_catalog()}"]
    for failure in outcome.failures[:10]:
        detail = " ".join(failure.message.split())[:500]
        lines.append(f"  {failure.resource_type} {failure.name}: {failure.status}: {detail}")
    if len(outcome.failures) > 10:
        lines.append(f"  ... and {len(outcome.failures) - 10} more")
    if exception is not None:
        lines.append(f"  {type(exception).__name__}: {' '.join(str(exception).split())[:800]}")
    return settings.redact("\n".join(lines))


@cache
def incremental_models() -> tuple[str, ...]:
    """ "schema.table" of every incremental model in the manifest."""
    manifest = json.loads(dbt_project().manifest_path.read_text())
    return tuple(
        sorted(
            f"{node['schema']}.{node['alias']}"
            for node in manifest["nodes"].values()
            if node["resource_type"] == "model"
            and node["config"].get("materialized") == "incremental"
        )
    )


def built_incremental_tables(con, settings: Settings) -> tuple[str, ...]:
    """The incremental models' tables that exist in the lake ("schema.table")."""
    present = {
        f"{schema}.{table}"
        for schema, table in con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_catalog = ?",
            [settings.lake_alias],
        ).fetchall()
    }
    return tuple(t for t in incremental_models() if t in present)


def record_build(settings: Settings, start: date | None = None, end: date | None = None) -> int:
    """Record the lake's current snapshot as the last completed build; return its id.

    Called after a successful `dbt build`, under the transform lock: readers attach the lake at
    this snapshot (`connect_at_build`) so they never see silver ahead of gold mid-build.
    """
    from cascade.lake.layout import ensure_layout

    with connect(settings) as con:
        alias = settings.lake_alias
        # a metadata read once keys and limits are set
        ensure_layout(con, settings, ("bronze", "silver"), built_incremental_tables(con, settings))
        snapshot = con.execute(
            f"select max(snapshot_id) from ducklake_snapshots('{alias}')"
        ).fetchone()[0]
        con.execute(f"create schema if not exists {alias}.{BUILDS_TABLE.split('.')[0]}")
        con.execute(
            f"create table if not exists {alias}.{BUILDS_TABLE} (snapshot_id bigint, "
            "finished_at timestamp with time zone, start_date date, end_date date)"
        )
        window = ", ".join(f"'{d.isoformat()}'" if d else "null" for d in (start, end))
        con.execute(f"insert into {alias}.{BUILDS_TABLE} values ({snapshot}, now(), {window})")
    return snapshot


def run_transform(
    settings: Settings,
    start: date | None = None,
    end: date | None = None,
    full_refresh: bool = False,
    select: str | None = None,
    on_event: Callable[[NodeEvent], None] | None = None,
    subjects: Iterable[str] | None = None,
) -> TransformResult:
    """`dbt build` the bronze, silver and gold models (and their tests) on the lake.

    `start`/`end` are local dates (end exclusive) of the window the incremental models rebuild;
    None on both sides rebuilds everything; `subjects` limits the incremental models to those
    whose raw data changed (None: all; not with a full refresh, which rebuilds every subject).
    `select` is a dbt selector (e.g. "gold"); `on_event` gets a NodeEvent as each model or test
    finishes. A successful build of everything (no `select`) is recorded as the one readers see
    (`record_build`). dbt reads its profile from os.environ, which is patched for the call: do
    not run two transforms with different settings in one process at once. Raises TransformError when any node fails, ValueError for a bad window or timezone.
    """
    if settings.profile == "local" and not settings.catalog_path.exists():
        raise TransformError(
            f"no lake at {settings.catalog_path}: run `cascade ingest` first, "
            "or set CASCADE_HOME to the folder that holds catalog.sqlite"
        )
    if full_refresh and subjects:
        raise ValueError("a full refresh rebuilds every subject: give no subjects with it")
    window = window_env(start, end, subjects)
    args = dbt_args(settings, full_refresh, select, exclude=unit_test_exclusions(settings))
    outcome = TransformResult(window=(start, end), full_refresh=full_refresh)
    started = time.perf_counter()
    results = dbt_work_dir(settings) / "target" / "run_results.json"
    with dbt_session(settings, window=window):
        results.unlink(missing_ok=True)  # a failed parse writes none: never report the last run
        invocation = dbt_resource().cli(
            args,
            raise_on_error=False,
            target_path=dbt_work_dir(settings) / "target",
        )
        for event in invocation.stream_raw_events():
            if on_event is not None and (finished := _finished(event)) is not None:
                on_event(finished)
        success = invocation.is_successful()
        if success and select is None:
            record_build(settings, start, end)
    outcome.seconds = time.perf_counter() - started
    if results.exists():
        _summarise(_node_events(json.loads(results.read_text())), outcome)
    if not success or outcome.failures:
        raise TransformError(_error_message(settings, outcome, invocation.get_error()))
    return outcome
