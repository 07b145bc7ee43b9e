"""The lake's physical layout: partition keys of the big tables and data inlining of small writes.

Partitions: per-subject and per-month reads of bronze and silver prune files. Raw is not
partitioned: dlt's merge into a DuckLake table partitioned by bucket(subject_id) kept the old
rows beside the new ones (DuckDB 1.5.5; a re-run doubled raw), so raw stays one layout and
bronze, which every reader goes through, carries the keys.
A subject's rows hash into one of SUBJECT_BUCKETS buckets (DuckLake's `bucket` transform): a
query for one subject reads about 1/16 of the files, while a load of a thousand sites still
writes at most 16 files per table, not one per subject. Facts are also split by year and month
of their local date. Keys apply to data written after they are set (DuckLake keeps older files
as they are; `cascade maintain` merges within partitions), so they are set once, as soon as a
table exists: after the dbt build that created it.

Inlining: a write of at most INLINE_ROWS rows (an hourly refresh of a site, a day's window of a
mart) goes into the catalog instead of a Parquet file of its own, so hourly loads do not litter
the store with tiny files; `cascade maintain` flushes inlined rows into files. Only tables that
live on are inlined: raw and ops (schema options, set when the lake is created) and dbt's
incremental models (table options, set after the build that created them). DuckLake gives
every inlined table a table of its own in the catalog database, kept until its snapshots
expire, and dbt rebuilds a table model as a new table every run (as dlt does its staging
tables every load): inlined, an hourly refresh left ~30 catalog tables behind per run and
every later statement slowed (a refresh took 34 s on a maintained lake, 56 s ten runs later).
Everything else writes files (global limit 0, explicit: DuckLake's own default inlines).

Sorting: raw tables are sorted by their time, `date_ms` (RAW_SORTED_BY, a dlt `sort` hint that
cascade's dlt destination declares as the table's DuckLake sort order when it creates the
table). DuckLake sorts what is inserted into such a table (dlt's staging tables too), and dlt's
merge keeps the order of its staging table, so each Parquet row group of raw spans a short
stretch of time: the bronze models read a window's row groups, not all of raw (a 14-day load
of a thousand sites writes files that each span all 14 days, and unsorted, every row group
spanned them too). Lakes created before get the order from `cascade maintain`, which sorts
what it rewrites.
"""

from __future__ import annotations

import duckdb

from cascade.lake.connection import metadata_prefix, quote
from cascade.settings import Settings

INLINE_ROWS = 1000
RAW_SORTED_BY = ("date_ms",)
SUBJECT_BUCKETS = 16
BY_SUBJECT = (f"bucket({SUBJECT_BUCKETS}, subject_id)",)
BY_SUBJECT_AND_MONTH = (*BY_SUBJECT, "year(local_date)", "month(local_date)")
# No table is partitioned: with DuckDB 1.5.5 a filter on subject_id over a table partitioned by
# bucket(16, subject_id) returned no rows for data written before the keys were set (pruning
# on files and inlined rows without partition values), and dlt's merge into such a raw table
# kept old rows beside new ones. Per-subject pruning waits for a DuckLake that gets both right.
PARTITION_KEYS: dict[tuple[str, str], tuple[str, ...]] = {}


def unpartitioned(con: duckdb.DuckDBPyConnection, settings: Settings, layers: tuple[str, ...]):
    """The tables of `layers` in PARTITION_KEYS that exist and have no partition keys yet."""
    meta = metadata_prefix(settings)
    rows = con.execute(
        f"""
        select s.schema_name, t.table_name
        from {meta}.ducklake_table as t
        join {meta}.ducklake_schema as s
            on s.schema_id = t.schema_id and s.end_snapshot is null
        where t.end_snapshot is null
            and s.schema_name in ({", ".join(map(quote, layers))})
            and not exists (
                select 1 from {meta}.ducklake_partition_info as p
                where p.table_id = t.table_id and p.end_snapshot is null
            )
        """
    ).fetchall()
    return [(schema, table) for schema, table in rows if (schema, table) in PARTITION_KEYS]


def ensure_partitioning(
    con: duckdb.DuckDBPyConnection, settings: Settings, layers: tuple[str, ...]
) -> list[str]:
    """Set the partition keys of `layers`' tables that have none; returns the tables changed."""
    changed = []
    for schema, table in unpartitioned(con, settings, layers):
        keys = ", ".join(PARTITION_KEYS[(schema, table)])
        con.execute(
            f"alter table {settings.lake_alias}.{schema}.{table} set partitioned by ({keys})"
        )
        changed.append(f"{schema}.{table}")
    return changed


def unsorted_raw_tables(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[str]:
    """Raw tables with the RAW_SORTED_BY columns and no sort order (made before it existed)."""
    meta = metadata_prefix(settings)
    return [
        row[0]
        for row in con.execute(
            f"""
            select t.table_name
            from {meta}.ducklake_table as t
            join {meta}.ducklake_schema as s
                on s.schema_id = t.schema_id and s.end_snapshot is null
            where t.end_snapshot is null and s.schema_name = 'raw'
                and not exists (
                    select 1 from {meta}.ducklake_sort_info as o
                    where o.table_id = t.table_id and o.end_snapshot is null
                )
                and (
                    select count(*) from {meta}.ducklake_column as c
                    where c.table_id = t.table_id and c.end_snapshot is null
                        and c.column_name in ({", ".join(map(quote, RAW_SORTED_BY))})
                ) = {len(RAW_SORTED_BY)}
            order by 1
            """
        ).fetchall()
    ]


def raw_sorting_statement(settings: Settings, table: str) -> str:
    """The statement that gives the raw table `table` the sort order RAW_SORTED_BY."""
    return (
        f"alter table {settings.lake_alias}.raw.{table} set sorted by ({', '.join(RAW_SORTED_BY)})"
    )


# schemas whose tables are written in small batches and never replaced
INLINED_SCHEMAS = ("raw", "ops")


def inlining_options(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict:
    """The lake's data inlining limits: {(scope, entry): value}, e.g. ("SCHEMA", "raw")."""
    rows = con.execute(
        "select scope, scope_entry, value from ducklake_options(?) "
        "where option_name = 'data_inlining_row_limit'",
        [settings.lake_alias],
    ).fetchall()
    return {(scope, entry): value for scope, entry, value in rows}


def wanted_inlining(tables: tuple[str, ...] = ()) -> dict:
    """The limits cascade sets: none lake-wide, INLINE_ROWS on INLINED_SCHEMAS and `tables`
    ("schema.table", dbt's incremental models)."""
    wanted = {("GLOBAL", None): "0"}
    wanted |= {("SCHEMA", schema): str(INLINE_ROWS) for schema in INLINED_SCHEMAS}
    return wanted | {("TABLE", table): str(INLINE_ROWS) for table in tables}


def ensure_inlining(
    con: duckdb.DuckDBPyConnection, settings: Settings, tables: tuple[str, ...] = ()
) -> list[str]:
    """Set the inlining limits of wanted_inlining that differ (one metadata read when none
    does); `tables` must exist. Returns what was changed."""
    current = inlining_options(con, settings)
    changed = []
    for (scope, entry), value in wanted_inlining(tables).items():
        if current.get((scope, entry)) == value:
            continue
        where = ""
        if scope == "SCHEMA":
            where = f", schema => {quote(entry)}"
        elif scope == "TABLE":
            schema, table = entry.split(".", 1)
            where = f", schema => {quote(schema)}, table_name => {quote(table)}"
        con.execute(
            f"call {settings.lake_alias}.set_option('data_inlining_row_limit', {value}{where})"
        )
        changed.append(f"data_inlining_row_limit {scope.lower()} {entry or ''}".strip())
    return changed


def ensure_layout(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    layers: tuple[str, ...],
    inlined_tables: tuple[str, ...] = (),
) -> list[str]:
    """Partition keys on `layers`' new tables and the inlining limits (`inlined_tables`: the
    incremental models, "schema.table"); what was changed."""
    return ensure_partitioning(con, settings, layers) + ensure_inlining(
        con, settings, inlined_tables
    )
