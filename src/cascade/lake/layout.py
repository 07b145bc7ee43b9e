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
the store with tiny files; `cascade maintain` flushes inlined rows into files.
"""

from __future__ import annotations

import duckdb

from cascade.lake.connection import metadata_prefix, quote
from cascade.settings import Settings

INLINE_ROWS = 1000
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


def inlining_set(con: duckdb.DuckDBPyConnection, settings: Settings) -> bool:
    """Whether the lake's data inlining limit (a catalog-wide option) is INLINE_ROWS."""
    current = con.execute(
        "select value from ducklake_options(?) where option_name = 'data_inlining_row_limit'",
        [settings.lake_alias],
    ).fetchone()
    return current is not None and current[0] == str(INLINE_ROWS)


def layout_pending(con: duckdb.DuckDBPyConnection, settings: Settings, layers: tuple[str, ...]):
    """Whether ensure_layout has anything to do (two metadata reads; no write, no lock)."""
    return bool(unpartitioned(con, settings, layers)) or not inlining_set(con, settings)


def ensure_layout(
    con: duckdb.DuckDBPyConnection, settings: Settings, layers: tuple[str, ...]
) -> list[str]:
    """Partition keys on `layers`' new tables and the lake's inlining limit; what was changed."""
    changed = ensure_partitioning(con, settings, layers)
    if not inlining_set(con, settings):
        con.execute(
            f"call {settings.lake_alias}.set_option('data_inlining_row_limit', {INLINE_ROWS})"
        )
        changed.append("data_inlining_row_limit")
    return changed
