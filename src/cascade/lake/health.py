"""Read-only health checks of the lake, behind `cascade health`.

Each check passes or fails with its reason and says whether it is required: the lake is healthy
when every required check passes. Nothing is created or written: the lake is attached read-only
(a missing catalog stays missing), every PostgreSQL session of the run is read-only with lock
and statement timeouts (a locked catalog fails the check instead of hanging it), and the local
writer lock is only inspected when its file exists. A failing step never stops the report: the
checks that depend on it say why they did not run. Details are redacted by `Settings.redact`.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from contextlib import ExitStack, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from unittest.mock import patch
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb

from cascade.lake.catalog_server import (
    PG_OPTIONS,
    Result,
    humanize,
    locks,
    pg_hint,
    probe_postgres,
    sessions,
)
from cascade.lake.connection import (
    BUILDS_TABLE,
    LakeError,
    connect_at_build,
    metadata_prefix,
    quote,
)
from cascade.lake.extensions import EXTENSIONS, extension_directory_statement
from cascade.lake.lock import is_locked
from cascade.settings import GOLD_MARTS, LAYERS, REDACTED, Settings

EXPECTED_TABLES = {
    "raw": ("entries",),
    "bronze": ("stg_entries",),
    "silver": ("fct_glucose_readings",),
    "gold": GOLD_MARTS,
}
# Marts that hold rows whenever there are readings; the others (insulin, loop, episodes, meals,
# device changes) are empty for a person without that data, which is no fault.
MUST_HAVE_ROWS = {
    **EXPECTED_TABLES,
    "gold": ("mrt_daily_glycaemia", "mrt_agp", "mrt_period_summary"),
}
LAYER_FIX = {"raw": "run `cascade ingest`"} | {
    layer: "run `cascade transform`" for layer in LAYERS[1:]
}
PROFILE_EXTENSIONS = {
    "local": ("ducklake", "sqlite_scanner"),
    "scale": ("ducklake", "httpfs", "postgres_scanner"),
}
# every check, in report order -> required (freshness only when a maximum age is asked for)
CHECKS = {
    "configuration": True,
    "extensions": True,
    "catalog": True,
    "attached": True,
    "schemas": True,
    **{f"tables.{layer}": True for layer in LAYERS},
    "memory": True,
    "catalog_sessions": False,
    "catalog_locks": True,
    "freshness": False,
    "snapshots": False,
    "files": False,
    "leftovers": False,
}
CORE_METADATA_TABLES = (
    "ducklake_metadata",
    "ducklake_snapshot",
    "ducklake_schema",
    "ducklake_table",
    "ducklake_column",
    "ducklake_data_file",
    "ducklake_delete_file",
    "ducklake_files_scheduled_for_deletion",
)


@dataclass(frozen=True)
class HealthOptions:
    """Thresholds: sessions and locks older than `stale_after`, readings older than `max_age`."""

    stale_after: timedelta = timedelta(seconds=60)
    max_age: timedelta = timedelta(days=1)
    require_fresh: bool = False
    small_file_bytes: int = 1 << 20
    compaction_min_files: int = 10
    leftover_age: timedelta = timedelta(hours=6)


@dataclass
class Check:
    """One check: passed or not, why, whether health depends on it, its facts and seconds."""

    name: str
    ok: bool
    required: bool
    detail: str
    data: dict = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class HealthReport:
    """Every check in the order of `CHECKS`; `ok` when all required ones passed."""

    profile: str | None
    lake_alias: str | None
    catalog: str | None
    checks: list[Check]
    seconds: float = 0.0
    redact: Callable[[str], str] = field(default=lambda text: text, repr=False)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks if check.required)

    def to_dict(self) -> dict:
        """{"ok", "profile", "lake_alias", "catalog", "seconds", "checks": [Check fields]}."""
        return {
            "ok": self.ok,
            "profile": self.profile,
            "lake_alias": self.lake_alias,
            "catalog": self.catalog,
            "seconds": round(self.seconds, 3),
            "checks": [asdict(check) for check in self.checks],
        }

    def to_json(self) -> str:
        """`to_dict` as one JSON document, every secret value replaced by ***."""
        return self.redact(json.dumps(self.to_dict(), default=str))


class _Recorder:
    """Runs checks, times them, turns any exception into a failed check, redacts details."""

    def __init__(self, settings: Settings | None, options: HealthOptions) -> None:
        self.settings = settings
        self.required = dict(CHECKS, freshness=options.require_fresh)
        self.checks: dict[str, Check] = {}

    def run(self, name: str, probe: Callable[[], Result]) -> Check:
        started = time.perf_counter()
        try:
            ok, detail, data = probe()
        except Exception as exc:  # noqa: BLE001 - a check never crashes the report
            ok, detail, data = False, " ".join(f"{type(exc).__name__}: {exc}".split())[:600], {}
        check = Check(name, ok, self.required[name], detail, data)
        check.seconds = round(time.perf_counter() - started, 3)
        return self.add(check)

    def add(self, check: Check) -> Check:
        if self.settings is not None:
            check.detail = self.settings.redact(check.detail)
        self.checks[check.name] = check
        return check

    def failed(self, name: str) -> bool:
        return name in self.checks and not self.checks[name].ok

    def skip_the_rest(self) -> None:
        culprit = next((n for n in ("catalog", "attached") if self.failed(n)), None)
        reason = f"{culprit} failed" if culprit else "a check it depends on failed"
        for name in CHECKS:
            if name not in self.checks:
                self.add(Check(name, False, self.required[name], f"not run: {reason}"))

    def report(self, started: float) -> HealthReport:
        settings = self.settings
        return HealthReport(
            profile=settings.profile if settings else None,
            lake_alias=settings.lake_alias if settings else None,
            catalog=settings.describe_catalog() if settings else None,
            checks=[self.checks[name] for name in CHECKS],
            seconds=time.perf_counter() - started,
            redact=settings.redact if settings else (lambda text: text),
        )


def unusable(message: str, options: HealthOptions | None = None) -> HealthReport:
    """The report when health cannot start (e.g. invalid Settings): nothing else runs."""
    recorder = _Recorder(None, options or HealthOptions())
    recorder.add(Check("configuration", False, True, message))
    recorder.skip_the_rest()
    return recorder.report(time.perf_counter())


def check_health(settings: Settings, options: HealthOptions | None = None) -> HealthReport:
    """Run every check on the lake that `settings` describe, creating and writing nothing."""
    options = options or HealthOptions()
    started = time.perf_counter()
    recorder = _Recorder(settings, options)
    recorder.run("configuration", lambda: configuration(settings))
    with _guarded_postgres(settings), ExitStack() as stack:
        if settings.profile == "scale":
            _catalog_server_checks(recorder, settings, options)
        else:
            recorder.run("catalog_sessions", lambda: writer_lock_state(settings))
            recorder.add(Check("catalog_locks", True, True, "not applicable: SQLite catalog"))
            if not settings.catalog_path.exists():
                recorder.run("catalog", lambda: _no_local_lake(settings))
        con = None
        if not recorder.failed("catalog"):
            attached = recorder.run("attached", lambda: _attach(settings, stack))
            con = attached.data.pop("connection", None)
        _lake_checks(recorder, settings, options, con)
    recorder.skip_the_rest()
    return recorder.report(started)


def _guarded_postgres(settings: Settings):
    """PostgreSQL sessions of the checks give up on a held lock instead of waiting (PGOPTIONS)."""
    if settings.profile != "scale":
        return nullcontext()
    previous = os.environ.get("PGOPTIONS")
    return patch.dict(os.environ, {"PGOPTIONS": f"{previous or ''} {PG_OPTIONS}".strip()})


def _catalog_server_checks(recorder: _Recorder, settings: Settings, options: HealthOptions):
    catalog = recorder.run("catalog", lambda: postgres_catalog(settings))
    probe = catalog.data.pop("probe", None)
    if probe is not None:
        recorder.run("catalog_sessions", lambda: sessions(probe, options.stale_after))
        recorder.run("catalog_locks", lambda: locks(probe, options.stale_after))


def _no_local_lake(settings: Settings) -> Result:
    return (
        False,
        f"no lake at {settings.catalog_path}: run `cascade ingest` first, or set CASCADE_HOME "
        "to the folder that holds catalog.sqlite",
        {"location": str(settings.catalog_path)},
    )


def _attach(settings: Settings, stack: ExitStack) -> Result:
    try:
        # the layers as the last completed dbt build left them: never silver ahead of gold
        con = stack.enter_context(connect_at_build(settings))
    except LakeError as exc:
        message, hint = str(exc), ""
        if settings.profile == "scale" and re.search("lock|failed to query", message, re.I):
            hint = " (health gives up after 2 s waiting on a catalog lock: see catalog_locks)"
        return False, f"{message}{hint}", {}
    databases = [row[1] for row in con.execute("pragma database_list").fetchall()]
    current = con.execute("select current_database()").fetchone()[0]
    data = {"databases": databases, "current_database": current, "connection": con}
    if settings.lake_alias not in databases or current != settings.lake_alias:
        return False, f"expected {settings.lake_alias} as current database, got {current}", data
    return True, f"{settings.lake_alias} attached read-only and current", data


def _lake_checks(
    recorder: _Recorder,
    settings: Settings,
    options: HealthOptions,
    con: duckdb.DuckDBPyConnection | None,
) -> None:
    if con is None:
        with duckdb.connect(":memory:") as bare:
            bare.execute(extension_directory_statement())
            recorder.run("extensions", lambda: extensions(bare, settings.profile))
        return
    alias, meta = settings.lake_alias, metadata_prefix(settings)
    recorder.run("extensions", lambda: extensions(con, settings.profile))
    if settings.profile == "local":
        recorder.run("catalog", lambda: local_catalog(con, settings))
    recorder.run("schemas", lambda: schemas(con, alias))
    inventory: dict[str, dict[str, dict]] = {}

    def layer(name: str) -> Result:
        if not inventory:
            inventory.update(table_inventory(con, alias))
        return tables(inventory, name)

    for name in LAYERS:
        recorder.run(f"tables.{name}", lambda name=name: layer(name))
    recorder.run("memory", lambda: memory(con, alias))
    recorder.run("freshness", lambda: freshness(con, alias, options))
    recorder.run("snapshots", lambda: snapshots(con, meta))
    recorder.run("files", lambda: files(con, meta, options))
    recorder.run("leftovers", lambda: leftovers(con, settings, options))


def configuration(settings: Settings) -> Result:
    """Profile, alias, catalog and data path; each secret shows as *** when it is set."""
    secrets = {
        "catalog_password": settings.catalog.password if settings.catalog else None,
        "s3_access_key_id": settings.s3_access_key_id,
        "s3_secret_access_key": settings.s3_secret_access_key,
        "nightscout_api_secret": settings.nightscout_api_secret,
        "nightscout_token": settings.nightscout_token,
        "marts_url": settings.marts_url,
    }
    data = {
        "profile": settings.profile,
        "lake_alias": settings.lake_alias,
        "catalog": settings.describe_catalog(),
        "data_path": settings.lake_data_path,
        "s3_endpoint": settings.s3_endpoint,
        "timezone": settings.timezone,
        "secrets": {
            k: REDACTED if v and v.get_secret_value() else None for k, v in secrets.items()
        },
    }
    try:
        ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return False, f"CASCADE_TIMEZONE {settings.timezone!r} is not an IANA timezone", data
    return (
        True,
        f"profile {settings.profile}, alias {settings.lake_alias}, catalog "
        f"{settings.describe_catalog()}, data {settings.lake_data_path}",
        data,
    )


def extensions(con: duckdb.DuckDBPyConnection, profile: str) -> Result:
    """Each extension installed and loadable; the ones the profile uses are required."""
    rows = con.execute(
        "select extension_name, installed, loaded, extension_version from duckdb_extensions() "
        f"where extension_name in ({', '.join(map(quote, EXTENSIONS))})"
    ).fetchall()
    state = {name: {"installed": i, "loaded": lo, "version": v} for name, i, lo, v in rows}
    for name in EXTENSIONS:
        info = state.setdefault(name, {"installed": False, "loaded": False, "version": None})
        if info["installed"] and not info["loaded"]:
            try:
                con.execute(f"load {name}")
                info["loaded"] = True
            except duckdb.Error as exc:
                info["error"] = str(exc).splitlines()[0][:200]
    broken = [name for name in EXTENSIONS if not state[name]["loaded"]]
    failing = [name for name in broken if name in PROFILE_EXTENSIONS[profile]]
    if failing:
        return (
            False,
            f"not loadable: {', '.join(failing)} (run `make install`, or install the "
            f"duckdb-extension-* wheels =={duckdb.__version__})",
            state,
        )
    note = f"; unused here and not loadable: {', '.join(broken)}" if broken else ""
    return True, f"{', '.join(EXTENSIONS)} installed and loadable{note}", state


def describe_catalog(location: str, names: set[str], version: str | None) -> Result:
    """Pass when DuckLake's core metadata tables exist; report the catalog's version."""
    missing = [name for name in CORE_METADATA_TABLES if name not in names]
    data = {"location": location, "version": version, "missing_tables": missing}
    if len(missing) == len(CORE_METADATA_TABLES):
        return (
            False,
            f"no DuckLake catalog at {location}: run `cascade ingest` first, or check "
            "CASCADE_LAKE_ALIAS (it names the metadata schema)",
            data,
        )
    if missing:
        return False, f"incomplete DuckLake catalog at {location}: no {', '.join(missing)}", data
    return True, f"DuckLake catalog version {version} at {location}", data


def local_catalog(con: duckdb.DuckDBPyConnection, settings: Settings) -> Result:
    """The SQLite catalog's core tables and DuckLake version, through the attached lake."""
    meta = metadata_prefix(settings)
    names = set()
    for name in CORE_METADATA_TABLES:
        try:
            con.execute(f"select * from {meta}.{name} limit 0")
            names.add(name)
        except duckdb.CatalogException:
            pass
    row = con.execute(
        f"select value from {meta}.ducklake_metadata where key = 'version'"
    ).fetchone()
    return describe_catalog(str(settings.catalog_path), names, row[0] if row else None)


def postgres_catalog(settings: Settings) -> Result:
    """Reach the PostgreSQL catalog read-only: its metadata tables, version, sessions, locks."""
    import psycopg2

    location = f"{settings.describe_catalog()} schema {settings.metadata_schema}"
    try:
        probe = probe_postgres(settings)
    except psycopg2.Error as exc:
        message = " ".join(str(exc).split())[:300]
        return False, f"cannot read the catalog {location}: {message} ({pg_hint(message)})", {}
    ok, detail, data = describe_catalog(location, probe["tables"], probe["version"])
    data |= {"server_version": probe["server_version"], "probe": probe}
    return ok, detail, data


def schemas(con: duckdb.DuckDBPyConnection, alias: str) -> Result:
    """raw, bronze, silver and gold present; staging and stray schemas listed."""
    present = [
        row[0]
        for row in con.execute(
            "select schema_name from information_schema.schemata "
            f"where catalog_name = {quote(alias)} order by schema_name"
        ).fetchall()
    ]
    missing = [layer for layer in LAYERS if layer not in present]
    staging = [name for name in present if name.startswith("raw_staging")]
    ops = BUILDS_TABLE.split(".")[0]  # cascade's own bookkeeping (completed builds)
    other = [n for n in present if n not in (*LAYERS, *staging, "main", ops)]
    data = {"present": present, "missing": missing, "staging": staging, "other": other}
    if missing:
        return False, f"missing schemas: {', '.join(missing)} (run `cascade ingest`)", data
    detail = "raw, bronze, silver, gold present"
    if staging:
        detail += (
            f"; {len(staging)} raw_staging* schemas (loads running now, or left by killed "
            "loads: `cascade maintain` drops stale ones)"
        )
    if other:
        detail += f"; other schemas: {', '.join(other)}"
    return True, detail, data


def table_inventory(con: duckdb.DuckDBPyConnection, alias: str) -> dict[str, dict[str, dict]]:
    """layer -> table -> {rows, columns: {name: type}} for every table of the four layers."""
    inventory: dict[str, dict[str, dict]] = {layer: {} for layer in LAYERS}
    columns = con.execute(
        "select schema_name, table_name, column_name, data_type from duckdb_columns() "
        f"where database_name = {quote(alias)} and schema_name in "
        f"({', '.join(map(quote, LAYERS))}) order by schema_name, table_name, column_index"
    ).fetchall()
    for schema, table, column, data_type in columns:
        entry = inventory[schema].setdefault(table, {"rows": None, "columns": {}})
        entry["columns"][column] = data_type
    counts = [
        f'select {quote(schema)}, {quote(table)}, count(*) from {alias}.{schema}."{table}"'
        for schema, names in inventory.items()
        for table in names
    ]
    if counts:
        for schema, table, rows in con.execute(" union all ".join(counts)).fetchall():
            inventory[schema][table]["rows"] = rows
    return inventory


def tables(inventory: dict[str, dict[str, dict]], layer: str) -> Result:
    """The layer's expected tables exist, and those that must (MUST_HAVE_ROWS) hold rows."""
    present = inventory[layer]
    missing = [t for t in EXPECTED_TABLES[layer] if t not in present]
    empty = [t for t in MUST_HAVE_ROWS[layer] if t in present and not present[t]["rows"]]
    data = {"tables": present, "missing": missing, "empty": empty}
    problems = [
        f"{label} {', '.join(f'{layer}.{t}' for t in names)}"
        for label, names in (("missing", missing), ("empty", empty))
        if names
    ]
    if problems:
        return False, f"{'; '.join(problems)} ({LAYER_FIX[layer]})", data
    rows = ", ".join(f"{t} {present[t]['rows']:,}" for t in EXPECTED_TABLES[layer])
    return True, f"{len(present)} tables; rows: {rows}", data


def memory(con: duckdb.DuckDBPyConnection, alias: str) -> Result:
    """No table in DuckDB's in-memory catalog, nor in the lake's default `main` schema."""
    stray = [
        row[0]
        for row in con.execute(
            "select database_name || '.' || schema_name || '.' || table_name from duckdb_tables() "
            f"where database_name = 'memory' or (database_name = {quote(alias)} "
            "and schema_name = 'main') order by 1"
        ).fetchall()
    ]
    if stray:
        return (
            False,
            f"tables outside the layers: {', '.join(stray)} (a model or load without "
            f"`database: {alias}` and a schema; check the dbt profile's attach)",
            {"tables": stray},
        )
    return True, f"nothing in memory.* or {alias}.main.*", {"tables": []}


def freshness(con: duckdb.DuckDBPyConnection, alias: str, options: HealthOptions) -> Result:
    """Age of the newest reading in raw.entries (informational unless a max age is required)."""
    try:
        newest_ms, subjects = con.execute(
            f"select max(date_ms), count(distinct subject_id) from {alias}.raw.entries"
        ).fetchone()
    except duckdb.CatalogException:
        return False, "no raw.entries table (run `cascade ingest`)", {}
    if newest_ms is None:
        return False, "raw.entries holds no readings (run `cascade ingest`)", {}
    newest = datetime.fromtimestamp(newest_ms / 1000, tz=UTC)
    age = datetime.now(UTC) - newest
    data = {
        "newest_reading": newest.isoformat(),
        "age_seconds": round(age.total_seconds()),
        "max_age_seconds": round(options.max_age.total_seconds()),
        "subjects": subjects,
    }
    detail = f"newest reading {newest:%Y-%m-%d %H:%M} UTC, {humanize(age)} ago"
    if age <= options.max_age:
        return True, detail, data
    hint = "" if options.require_fresh else " (informational; --max-age makes it required)"
    return False, f"{detail}, older than {humanize(options.max_age)}{hint}", data


def snapshots(con: duckdb.DuckDBPyConnection, meta: str) -> Result:
    """How many snapshots the catalog keeps, and the newest one."""
    count, latest, oldest_at, latest_at = con.execute(
        "select count(*), max(snapshot_id), left(min(snapshot_time)::varchar, 19), "
        f"left(max(snapshot_time)::varchar, 19) from {meta}.ducklake_snapshot"
    ).fetchone()
    data = {"count": count, "latest_id": latest, "oldest_time": oldest_at, "latest_time": latest_at}
    return True, f"{count:,} snapshots, the latest #{latest} at {latest_at}", data


def files(con: duckdb.DuckDBPyConnection, meta: str, options: HealthOptions) -> Result:
    """Live data files per table and the share of small ones: many small files want compaction."""
    rows = con.execute(
        f"select s.schema_name || '.' || t.table_name, count(f.data_file_id), "
        f"coalesce(sum(f.file_size_bytes), 0), count(f.data_file_id) filter "
        f"(where f.file_size_bytes < {int(options.small_file_bytes)}) "
        f"from {meta}.ducklake_table t join {meta}.ducklake_schema s using (schema_id) "
        f"left join {meta}.ducklake_data_file f "
        f"on f.table_id = t.table_id and f.end_snapshot is null "
        f"where t.end_snapshot is null and s.end_snapshot is null group by all order by all"
    ).fetchall()
    scheduled = con.execute(
        f"select count(*) from {meta}.ducklake_files_scheduled_for_deletion"
    ).fetchone()[0]
    per_table = {
        name: {
            "files": count,
            "bytes": int(size),
            "small_files": small,
            "small_ratio": round(small / count, 3) if count else 0.0,
        }
        for name, count, size, small in rows
    }
    crowded = [
        name
        for name, info in per_table.items()
        if info["files"] >= options.compaction_min_files and info["small_ratio"] >= 0.5
    ]
    total = sum(info["files"] for info in per_table.values())
    size = sum(info["bytes"] for info in per_table.values())
    data = {"tables": per_table, "data_files": total, "bytes": size, "scheduled": scheduled}
    detail = f"{total:,} data files, {size / 2**20:,.1f} MiB, {scheduled:,} scheduled for deletion"
    if crowded:
        worst = ", ".join(f"{n} ({per_table[n]['files']:,} files)" for n in crowded[:5])
        return False, f"{detail}; mostly small files in {worst} (run `cascade maintain`)", data
    return True, detail, data


def leftovers(con: duckdb.DuckDBPyConnection, settings: Settings, options: HealthOptions) -> Result:
    """raw_staging_* schemas, dlt working and DuckDB spill folders that killed loads left behind
    (a warning)."""
    from cascade.lake.maintenance import stale_staging_schemas, stale_work_dirs

    age = options.leftover_age
    staging = stale_staging_schemas(con, settings, age)
    folders = [str(path) for path in stale_work_dirs(settings, age)]
    data = {"staging_schemas": staging, "work_dirs": folders, "older_than_s": age.total_seconds()}
    if not staging and not folders:
        return True, f"no staging schema or working folder older than {humanize(age)}", data
    found = [
        f"{len(staging)} raw_staging* schemas ({', '.join(staging[:5])})" if staging else "",
        f"{len(folders)} working folders in {settings.work_dir}" if folders else "",
    ]
    return (
        False,
        f"left by killed loads, untouched for over {humanize(age)}: "
        f"{'; '.join(f for f in found if f)} (run `cascade maintain` to remove them)",
        data,
    )


def writer_lock_state(settings: Settings) -> Result:
    """Whether a local writer holds the lake's writer lock now (never creates the lock file)."""
    path = settings.home / "writer.lock"
    if not path.exists():
        return True, "SQLite catalog; no writer has run yet", {"writer_lock": "unused"}
    if is_locked(path):
        return True, "SQLite catalog; a writer holds the lock now", {"writer_lock": "held"}
    return True, "SQLite catalog; the writer lock is free", {"writer_lock": "free"}
