"""Compact the lake and forget old history: `cascade maintain` and the weekly schedule.

Daily loads leave many small Parquet files, rows inlined in the catalog, one snapshot per
commit and, after a killed load, a `raw_staging_*` schema and a dlt working folder under
`CASCADE_HOME/tmp`. Maintenance removes those leftovers once stale, flushes inlined rows,
merges adjacent small files (transparent to time travel; raw's files sorted by time, see
`cascade.lake.layout`), expires snapshots older than
`older_than` and deletes the files that only those snapshots used once they have been
scheduled for deletion longer than `older_than`, so a reader that started before this run
never loses a file under it. Query results never change; time travel before the cut-off does.

On the local profile maintenance holds the writer lock like every writer; on PostgreSQL it
runs beside concurrent loads, DuckLake retrying commits, and a step that loses a conflict is
run again on the new snapshot. That is safe as long as `older_than` exceeds the longest load
or query (the default week does); `older_than=0` reclaims everything at once, for a quiet lake.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from cascade.lake.catalog_server import humanize
from cascade.lake.connection import (
    SPILL_DIR_PREFIX,
    LakeError,
    connect,
    metadata_prefix,
    quote,
    spill_dir_pid,
)
from cascade.lake.layout import raw_sorting_statement, unsorted_raw_tables
from cascade.lake.lock import writer_lock
from cascade.settings import Settings

STAGING = re.compile(r"^raw_staging(_[A-Za-z0-9_]+)?$")
# a PostgreSQL load's staging schema lives for one load step: minutes, never hours
STALE_STAGING = timedelta(hours=6)
# untracked files younger than this may belong to a commit in flight
ORPHAN_MIN_AGE = timedelta(hours=6)
# a running dlt load writes into its working folder all along: one untouched this long is dead
STALE_WORK_DIR = timedelta(hours=6)
# dlt's working folders, and DuckDB's spill folders (a closing DuckDB removes its own)
WORK_DIR_PREFIXES = ("cascade-dlt-", SPILL_DIR_PREFIX)
STEP_ATTEMPTS = 4


@dataclass(frozen=True)
class LakeFootprint:
    """Live data files (count, bytes), snapshots, and every file still stored."""

    data_files: int
    bytes: int
    snapshots: int
    stored_files: int


@dataclass
class MaintenanceReport:
    """What one maintenance run changed, before and after."""

    before: LakeFootprint
    after: LakeFootprint
    older_than: timedelta = timedelta(days=7)
    dropped_schemas: list[str] = field(default_factory=list)
    removed_dirs: list[str] = field(default_factory=list)
    flushed_rows: int = 0
    merged_files: int = 0
    merged_into: int = 0
    sorted_tables: list[str] = field(default_factory=list)
    expired_snapshots: int = 0
    deleted_files: int = 0
    lock_wait_seconds: float = 0.0
    seconds: float = 0.0

    def describe(self) -> str:
        """A few lines for the CLI and the Dagster log: what changed, what is kept and why.

        Files stored can grow: merged files replace small ones, which stay for time travel
        until they are `older_than` old; the lines say so instead of leaving a bare 27 -> 29.
        """
        b, a = self.before, self.after
        kept = max(a.stored_files - a.data_files, 0)
        retention = humanize(self.older_than)
        lines = [
            f"data files {b.data_files:,} -> {a.data_files:,} "
            f"({b.bytes / 2**20:,.1f} -> {a.bytes / 2**20:,.1f} MiB): merged "
            f"{self.merged_files:,} small files into {self.merged_into:,}, flushed "
            f"{self.flushed_rows:,} inlined rows into files",
            f"history: snapshots {b.snapshots:,} -> {a.snapshots:,} (expired "
            f"{self.expired_snapshots:,} older than {retention}); deleted "
            f"{self.deleted_files:,} files no snapshot needs",
            f"files stored {b.stored_files:,} -> {a.stored_files:,}: {a.data_files:,} live + "
            f"{kept:,} replaced, kept for time travel until they are {retention} old "
            "(a later `cascade maintain` deletes them)",
            f"leftovers of killed loads: staging schemas dropped: "
            f"{', '.join(self.dropped_schemas) or 'none'}; working folders removed: "
            f"{', '.join(self.removed_dirs) or 'none'}",
            f"({self.seconds:.1f} s, {self.lock_wait_seconds:.1f} s waiting for the writer lock)",
        ]
        if self.sorted_tables:
            lines.insert(
                0,
                f"sorted by time from now on (a lake made before raw was): "
                f"{', '.join(self.sorted_tables)}",
            )
        return "\n".join(lines)


def footprint(con: duckdb.DuckDBPyConnection, settings: Settings) -> LakeFootprint:
    """The lake's size as DuckLake's catalog records it."""
    meta = metadata_prefix(settings)
    live, size, snaps, stored = con.execute(
        f"select count(*) filter (where end_snapshot is null), "
        f"coalesce(sum(file_size_bytes) filter (where end_snapshot is null), 0), "
        f"(select count(*) from {meta}.ducklake_snapshot), count(*) "
        f"+ (select count(*) from {meta}.ducklake_delete_file) "
        f"+ (select count(*) from {meta}.ducklake_files_scheduled_for_deletion) "
        f"from {meta}.ducklake_data_file"
    ).fetchone()
    return LakeFootprint(live, int(size), snaps, stored)


def stale_staging_schemas(
    con: duckdb.DuckDBPyConnection, settings: Settings, older_than: timedelta
) -> list[str]:
    """`raw_staging*` schemas created before `older_than` ago (or whose snapshot expired)."""
    meta = metadata_prefix(settings)
    cutoff = datetime.now(UTC) - older_than
    rows = con.execute(
        f"select s.schema_name, cast(n.snapshot_time as timestamptz) "
        f"from {meta}.ducklake_schema s left join {meta}.ducklake_snapshot n "
        f"on n.snapshot_id = s.begin_snapshot "
        f"where s.end_snapshot is null and s.schema_name like 'raw_staging%'"
    ).fetchall()
    return sorted(
        name
        for name, created in rows
        if STAGING.match(name) and (created is None or created <= cutoff)
    )


def _last_touched(folder: Path) -> float:
    stamps = [folder.stat().st_mtime]
    for path in folder.rglob("*"):
        try:
            stamps.append(path.lstat().st_mtime)
        except OSError:  # removed while we looked: the folder is in use
            return time.time()
    return max(stamps)


def stale_work_dirs(settings: Settings, older_than: timedelta) -> list[Path]:
    """dlt working and DuckDB spill folders under CASCADE_HOME/tmp nothing has touched for
    `older_than`."""
    root = settings.work_dir
    if not root.is_dir():
        return []
    cutoff = time.time() - older_than.total_seconds()
    return sorted(
        folder
        for folder in root.iterdir()
        if folder.name.startswith(WORK_DIR_PREFIXES)
        and folder.is_dir()
        and not _owner_alive(folder)
        and _last_touched(folder) <= cutoff
    )


def _owner_alive(folder: Path) -> bool:
    """A spill folder whose process still runs on this machine: an idle DuckDB that once
    spilled touches its folder no more, and still needs it."""
    pid = spill_dir_pid(folder.name)
    if pid is None:
        return False
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, and is another user's
        pass
    return True


def _call(con: duckdb.DuckDBPyConnection, statement: str) -> list[tuple]:
    """Run one maintenance call, again on a fresh snapshot when it lost a commit conflict."""
    for attempt in range(STEP_ATTEMPTS):
        try:
            return con.execute(statement).fetchall()
        except duckdb.TransactionException:
            if attempt == STEP_ATTEMPTS - 1:
                raise
            time.sleep(0.2 * 2**attempt)
    return []


def _timestamp(moment: datetime) -> str:
    return f"{quote(moment.isoformat())}::timestamptz"


def run_maintenance(
    settings: Settings,
    older_than: timedelta = timedelta(days=7),
    leftovers_older_than: timedelta | None = None,
) -> MaintenanceReport:
    """Flush, compact, expire and clean the lake; drop stale staging schemas and working folders.

    Leftovers count as stale after `leftovers_older_than`: by default 6 hours, and no time at
    all for staging schemas on the local profile (the writer lock held here means no load runs).

    Safe while loads run when `older_than` exceeds the longest load (see the module doc).
    Raises LakeError when there is no lake; the report holds the before/after footprint.
    """
    if older_than < timedelta(0):
        raise ValueError(f"older_than must not be negative, got {older_than}")
    if settings.profile == "local" and not settings.catalog_path.exists():
        raise LakeError(
            f"no lake at {settings.catalog_path}: nothing to maintain (set CASCADE_HOME to the "
            "folder that holds catalog.sqlite)"
        )
    started = time.perf_counter()
    alias = quote(settings.lake_alias)
    cutoff = datetime.now(UTC) - older_than
    # holding the local writer lock means no load is running: every staging schema is left over
    staging_age = STALE_STAGING if settings.profile == "scale" else timedelta(0)
    if leftovers_older_than is not None:
        staging_age = leftovers_older_than
    with writer_lock(settings) as waited, connect(settings) as con:
        before = footprint(con, settings)
        report = MaintenanceReport(before, before, older_than, lock_wait_seconds=waited)
        for name in stale_staging_schemas(con, settings, staging_age):
            _call(con, f"drop schema if exists {settings.lake_alias}.{name} cascade")
            report.dropped_schemas.append(name)
        work_dir_age = STALE_WORK_DIR if leftovers_older_than is None else leftovers_older_than
        for folder in stale_work_dirs(settings, work_dir_age):
            shutil.rmtree(folder, ignore_errors=True)
            report.removed_dirs.append(str(folder))
        # before flushing and merging, which then write sorted files
        for table in unsorted_raw_tables(con, settings):
            _call(con, raw_sorting_statement(settings, table))
            report.sorted_tables.append(f"raw.{table}")
        flushed = _call(con, f"call ducklake_flush_inlined_data({alias})")
        report.flushed_rows = sum(row[2] for row in flushed)
        merged = _call(con, f"call ducklake_merge_adjacent_files({alias})")
        report.merged_files = sum(row[2] for row in merged)
        report.merged_into = sum(row[3] for row in merged)
        expired = _call(
            con, f"call ducklake_expire_snapshots({alias}, older_than => {_timestamp(cutoff)})"
        )
        report.expired_snapshots = len(expired)
        # files scheduled by this very run count too when older_than is zero
        cleanup_cutoff = datetime.now(UTC) - older_than
        deleted = _call(
            con,
            f"call ducklake_cleanup_old_files({alias}, older_than => {_timestamp(cleanup_cutoff)})",
        )
        orphan_cutoff = min(cleanup_cutoff, datetime.now(UTC) - ORPHAN_MIN_AGE)
        orphans = _call(
            con,
            f"call ducklake_delete_orphaned_files({alias}, "
            f"older_than => {_timestamp(orphan_cutoff)})",
        )
        report.deleted_files = len(deleted) + len(orphans)
        report.after = footprint(con, settings)
    report.seconds = time.perf_counter() - started
    return report
