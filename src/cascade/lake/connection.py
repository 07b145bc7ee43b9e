"""Open the lake: a fresh in-memory DuckDB that attaches DuckLake under one alias.

Every statement here is built by a pure function so it can be unit-tested and shared with dlt
(which runs the same statements on each connection it opens). Passwords and keys only ever go
into `CREATE SECRET`, never into an ATTACH path, so `PRAGMA database_list` and logs stay clean.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import duckdb
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_incrementing,
    wait_random,
)

from cascade.lake.extensions import extension_directory_statement, install_extensions
from cascade.settings import LAYERS, Settings

CATALOG_SECRET = "cascade_catalog"
S3_SECRET = "cascade_s3"
# Commit conflicts between concurrent writers are retried by DuckLake itself.
RETRY_SETTINGS = {
    "ducklake_max_retry_count": 100,
    "ducklake_retry_wait_ms": 50,
    "ducklake_retry_backoff": 1.5,
}
# Fail fast on an unreachable endpoint instead of DuckDB's 30 s x 3 retries.
HTTP_SETTINGS = {"http_timeout": 10, "http_retries": 2, "http_retry_wait_ms": 200}
PG_CONNECT_TIMEOUT_S = 10
# DuckDB spills to `temp_directory`; an in-memory instance's default is `.tmp` in the working
# directory, and two instances sharing one folder write the same file names. Each instance
# cascade opens gets its own folder under CASCADE_HOME/tmp, `duckdb-<pid>-<uuid>` (DuckDB
# creates it at the first spill and removes it at close; `cascade maintain` removes the ones a
# dead process left). dbt's builds share `duckdb-dbt-<lake>`: see transform.dbt_spill_dir.
SPILL_DIR_PREFIX = "duckdb-"


def spill_dir_prefix(pid: int | None = None) -> str:
    """The start of the spill folders of process `pid` (this one by default)."""
    return f"{SPILL_DIR_PREFIX}{os.getpid() if pid is None else pid}-"


def spill_dir_pid(name: str) -> int | None:
    """The process a spill folder's name says owns it, None if it names none."""
    number = name.removeprefix(SPILL_DIR_PREFIX).split("-", 1)[0]
    return int(number) if name.startswith(SPILL_DIR_PREFIX) and number.isdigit() else None


class LakeError(RuntimeError):
    """The lake could not be opened; the message says why and what to set."""


def quote(value: str) -> str:
    """A single-quoted SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def secret_statements(settings: Settings) -> list[str]:
    """CREATE SECRET statements for the scale profile (they hold secrets: never log them)."""
    statements = []
    catalog = settings.catalog
    if catalog is not None:
        statements.append(
            f"create or replace secret {CATALOG_SECRET} (type postgres, "
            f"host {quote(catalog.host)}, port {catalog.port}, "
            f"database {quote(catalog.database)}, user {quote(catalog.user)}, "
            f"password {quote(catalog.password.get_secret_value())})"
        )
    if settings.data_path and settings.data_path.startswith("s3://"):
        options = [
            "type s3",
            "provider config",
            f"region {quote(settings.s3_region)}",
            f"url_style {quote(settings.s3_url_style)}",
            f"use_ssl {str(settings.s3_use_ssl).lower()}",
            f"scope {quote(settings.data_path)}",
        ]
        if settings.s3_endpoint_host:
            options.append(f"endpoint {quote(settings.s3_endpoint_host)}")
        if settings.s3_access_key_id and settings.s3_secret_access_key:
            options.append(f"key_id {quote(settings.s3_access_key_id.get_secret_value())}")
            options.append(f"secret {quote(settings.s3_secret_access_key.get_secret_value())}")
        statements.append(f"create or replace secret {S3_SECRET} ({', '.join(options)})")
    return statements


def attach_statement(
    settings: Settings, read_only: bool = False, snapshot: int | None = None
) -> str:
    """The ATTACH of the lake under `settings.lake_alias`; it holds no secret.

    `snapshot` pins the attached lake to that DuckLake snapshot (time travel, read-only).
    """
    options = [f"data_path {quote(settings.lake_data_path)}"]
    if snapshot is not None:
        options.insert(0, f"snapshot_version {int(snapshot)}")
    if settings.catalog is not None:
        path = f"ducklake:postgres:connect_timeout={PG_CONNECT_TIMEOUT_S}"
        options += [
            f"meta_secret {CATALOG_SECRET}",
            f"metadata_schema {quote(settings.metadata_schema)}",
        ]
    else:
        path = f"ducklake:sqlite:{settings.catalog_path}"
        options += ["meta_journal_mode 'WAL'", "meta_busy_timeout 10000"]
    if read_only:
        options += ["read_only", "create_if_not_exists false"]
    else:
        options.append("create_if_not_exists true")
    return f"attach if not exists {quote(path)} as {settings.lake_alias} ({', '.join(options)})"


def metadata_prefix(settings: Settings) -> str:
    """Where DuckLake's own tables (ducklake_snapshot, ducklake_data_file, ...) are queried."""
    catalog = f"__ducklake_metadata_{settings.lake_alias}"
    return f"{catalog}.{settings.metadata_schema}" if settings.catalog is not None else catalog


def memory_statements(settings: Settings) -> list[str]:
    """CASCADE_DUCKDB_MEMORY_LIMIT, if set, and a spill folder of this instance's own: the
    expression draws a new uuid each time it runs, once per DuckDB instance (dlt runs these
    statements once for each instance it opens)."""
    folder = quote(str(settings.work_dir / spill_dir_prefix()))
    statements = [f"set temp_directory = {folder} || gen_random_uuid()::varchar"]
    if settings.duckdb_memory_limit:
        statements.append(f"set memory_limit = {quote(settings.duckdb_memory_limit)}")
    return statements


def setting_statements(settings: Settings) -> list[str]:
    """SET statements: cascade's extension directory, memory limit and spill folder, DuckLake
    commit retries, and HTTP timeouts where S3 is used."""
    # httpfs is loaded only when needed: each load re-verifies a 20 MB signed binary
    http = HTTP_SETTINGS if settings.profile == "scale" else {}
    return [
        extension_directory_statement(),
        *memory_statements(settings),
        *(f"set {k} = {v}" for k, v in {**RETRY_SETTINGS, **http}.items()),
    ]


def session_statements(settings: Settings, read_only: bool = False) -> list[str]:
    """Everything a connection runs to see the lake: settings, secrets, then ATTACH."""
    return [
        *setting_statements(settings),
        *secret_statements(settings),
        attach_statement(settings, read_only),
    ]


# Processes opening a brand-new lake at once race to create DuckLake's metadata and the layer
# schemas; the loser sees one of these, and simply opening again succeeds.
BOOTSTRAP_RACES = ("duplicate key", "already exists", "conflict")
BOOTSTRAP_ATTEMPTS = 5


def _open(settings: Settings, read_only: bool) -> duckdb.DuckDBPyConnection:
    if settings.profile == "local":
        if read_only and not settings.catalog_path.exists():
            raise LakeError(
                f"no lake at {settings.catalog_path}: run `cascade ingest` first "
                "or set CASCADE_HOME to the folder that holds catalog.sqlite"
            )
        if not read_only:
            settings.catalog_path.parent.mkdir(parents=True, exist_ok=True)
            (settings.home / "lake").mkdir(parents=True, exist_ok=True)
    if not read_only or settings.home.is_dir():
        with suppress(OSError):  # a read-only disk: DuckDB then fails only if it spills
            settings.work_dir.mkdir(parents=True, exist_ok=True)
    attempts = Retrying(
        retry=retry_if_exception(_racing),
        stop=stop_after_attempt(BOOTSTRAP_ATTEMPTS),
        wait=wait_incrementing(0.2, 0.2) + wait_random(0, 0.3),
        reraise=True,
    )
    try:
        for attempt in attempts:
            with attempt:
                con = duckdb.connect(":memory:")
                try:
                    _prepare(con, settings, read_only)
                except BaseException:
                    con.close()
                    raise
        return con
    except duckdb.Error as exc:
        raise LakeError(explain(settings, exc)) from None


def _racing(exc: BaseException) -> bool:
    """Concurrent first opens each creating the same DuckLake metadata: worth another try."""
    return isinstance(exc, duckdb.Error) and any(r in str(exc).lower() for r in BOOTSTRAP_RACES)


def _prepare(con: duckdb.DuckDBPyConnection, settings: Settings, read_only: bool) -> None:
    install_extensions(con)
    for statement in [*setting_statements(settings), *secret_statements(settings)]:
        con.execute(statement)
    if settings.profile == "scale":
        # a bad endpoint or bucket would otherwise surface only at the first write
        con.execute(f"select count(*) from glob({quote(settings.lake_data_path + '*')})")
    con.execute(attach_statement(settings, read_only))
    if not read_only:
        from cascade.lake.layout import INLINED_SCHEMAS, ensure_inlining

        for schema in dict.fromkeys((*LAYERS, *INLINED_SCHEMAS)):
            con.execute(f"create schema if not exists {settings.lake_alias}.{schema}")
        ensure_inlining(con, settings)  # before any table exists: see cascade.lake.layout
    con.execute(f"use {settings.lake_alias}")


def explain(settings: Settings, exc: BaseException) -> str:
    """A redacted, actionable message for a failure to open the lake."""
    detail = settings.redact(str(exc)).strip().splitlines()[0][:400]
    where = f"catalog {settings.describe_catalog()}, data {settings.lake_data_path}"
    hints = []
    lowered = detail.lower()
    if "password" in lowered or "authentication" in lowered:
        hints.append("check the user and password in CASCADE_CATALOG_URL")
    if "connect" in lowered or "timeout" in lowered or "refused" in lowered:
        hints.append(
            "is the server running and reachable? check CASCADE_CATALOG_URL / CASCADE_S3_ENDPOINT"
        )
    if "bucket" in lowered or "s3" in lowered or "http" in lowered:
        hints.append("does the bucket in CASCADE_DATA_PATH exist, and are the S3 keys right?")
    hint = f" ({'; '.join(hints)})" if hints else ""
    return f"could not open the lake ({where}): {detail}{hint}"


@contextmanager
def connect(
    settings: Settings | None = None, read_only: bool = False
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Yield a fresh in-memory DuckDB with the lake attached as `settings.lake_alias`.

    Read-write mode creates the catalog, data path, the raw/bronze/silver/gold/ops schemas and
    the inlining limits when missing; read-only mode creates nothing in the lake (only
    `$CASCADE_HOME/tmp`, for spilling, when CASCADE_HOME exists). The connection is always
    closed on exit.
    """
    settings = settings or Settings()
    con = _open(settings, read_only)
    try:
        yield con
    finally:
        # closing rolls back a transaction left open by an error; a committed one is untouched
        con.close()


# One row per completed dbt build: the snapshot at which silver and gold were whole.
BUILDS_TABLE = "ops.builds"


def last_build_snapshot(con: duckdb.DuckDBPyConnection, settings: Settings) -> int | None:
    """The DuckLake snapshot of the last completed dbt build, or None before the first."""
    try:
        return con.execute(
            f"select max(snapshot_id) from {settings.lake_alias}.{BUILDS_TABLE}"
        ).fetchone()[0]
    except duckdb.CatalogException:
        return None


@contextmanager
def connect_at_build(settings: Settings | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection whose lake is pinned to the last completed dbt build.

    dbt commits model by model, so a reader of the live lake during a build can see a silver day
    whose gold row is not written yet. Readers of the layers (report, publishing) use this
    instead: they see silver and gold exactly as one finished build left them. Before any
    recorded build it is the live lake, read-only.
    """
    settings = settings or Settings()
    con = _open(settings, read_only=True)
    try:
        snapshot = last_build_snapshot(con, settings)
        if snapshot is not None:
            con.execute("use memory")
            con.execute(f"detach {settings.lake_alias}")
            con.execute(attach_statement(settings, read_only=True, snapshot=snapshot))
            con.execute(f"use {settings.lake_alias}")
        yield con
    finally:
        con.close()
