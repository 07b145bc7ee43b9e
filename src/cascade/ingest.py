"""Run a dlt load into `<lake>.raw` and measure what it did.

dlt's native `ducklake` destination is configured from the same Settings as every other part:
its connections run cascade's own session statements (retry settings, secrets, then the ATTACH
under the lake alias), so dlt's own ATTACH IF NOT EXISTS finds the lake already attached and the
catalog password never appears in an ATTACH path.
"""

from __future__ import annotations

import multiprocessing
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import dlt
import duckdb
from dlt.common.configuration.specs import AwsCredentials
from dlt.common.storages.configuration import FilesystemConfiguration
from dlt.destinations.impl.ducklake.configuration import DuckLakeCredentials
from dlt.destinations.impl.ducklake.ducklake import DuckLakeClient
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_incrementing,
    wait_random,
)

from cascade.lake.connection import connect, metadata_prefix, quote, session_statements
from cascade.lake.lock import merge_lock, writer_lock
from cascade.settings import Settings, plain
from cascade.sources.files import load_file
from cascade.sources.nightscout import COLLECTIONS, FetchStats, nightscout, nightscout_file
from cascade.sources.nightscout.helpers import NightscoutClient, Window

RAW_SCHEMA = "raw"
LOAD_JOB_ATTEMPTS = 2


class IngestError(RuntimeError):
    """A load failed; the message is one redacted line naming the cause and the fix."""


def root_cause(exc: BaseException) -> BaseException:
    """The innermost exception under dlt's wrappers (PipelineStepFailed, job retries, ...)."""
    seen = set()
    while id(exc) not in seen and not isinstance(exc, LoadDeadline):
        seen.add(id(exc))
        inner = getattr(exc, "exception", None) or exc.__cause__
        if inner is None and not exc.__suppress_context__:
            inner = exc.__context__
        if not isinstance(inner, BaseException):
            break
        exc = inner
    return exc


def explain_failure(settings: Settings, exc: BaseException) -> str:
    """One line: what failed at the root, where, and what to check."""
    if isinstance(exc, IngestError):
        return str(exc)
    cause = root_cause(exc)
    text = " ".join(str(cause).split()) or type(cause).__name__
    where = f"catalog {settings.describe_catalog()}, data {settings.lake_data_path}"
    hint = ""
    lowered = text.lower()
    if isinstance(cause, LoadDeadline):
        hint = " (is the S3 endpoint or the catalog frozen or unreachable? check CASCADE_S3_ENDPOINT and CASCADE_CATALOG_URL)"
    elif any(w in lowered for w in ("http", "s3", "timeout", "timed out")):
        hint = " (is the S3 endpoint reachable? check CASCADE_S3_ENDPOINT and the bucket in CASCADE_DATA_PATH)"
    elif any(w in lowered for w in ("postgres", "server closed", "terminat", "connection")):
        hint = " (is the catalog reachable? check CASCADE_CATALOG_URL)"
    return settings.redact(f"load into {where} failed: {text[:400]}{hint}")


@dataclass
class TableCounts:
    """Rows one load wrote to a raw table: `inserted` are new keys, `updated` existed before."""

    loaded: int = 0
    inserted: int = 0
    updated: int = 0


@dataclass
class IngestResult:
    """What an ingest did: per table counts, bad records, seconds per stage, lake facts."""

    tables: dict[str, TableCounts] = field(default_factory=dict)
    fetched: int = 0
    bad_records: int = 0
    duplicates: int = 0
    fetch_seconds: float = 0.0
    load_seconds: float = 0.0
    seconds: float = 0.0
    snapshot_id: int | None = None
    data_files: int = 0
    load_id: str | None = None
    dlt_seconds: dict[str, float] = field(default_factory=dict)
    commit_retries: int = 0
    fetched_by_collection: dict[str, int] = field(default_factory=dict)
    bad_by_collection: dict[str, int] = field(default_factory=dict)

    @property
    def inserted(self) -> int:
        return sum(t.inserted for t in self.tables.values())

    @property
    def updated(self) -> int:
        return sum(t.updated for t in self.tables.values())

    def describe(self) -> str:
        """One line for logs and the CLI."""
        return (
            f"fetched {self.fetched:,} rows · inserted {self.inserted:,} · updated "
            f"{self.updated:,} · bad records {self.bad_records:,} · duplicates "
            f"{self.duplicates:,} · {self.seconds:.1f} s (fetch {self.fetch_seconds:.1f} s, "
            f"load {self.load_seconds:.1f} s) · snapshot {self.snapshot_id} · "
            f"{self.data_files} data files · {self.commit_retries} commit retries"
        )


class SortedDuckLakeClient(DuckLakeClient):
    """dlt's DuckLake client, which also declares the `sort` column hints of a table it creates
    as the table's DuckLake sort order (as dlt's own client does `partition` hints).

    DuckLake sorts every INSERT into such a table. dlt creates its staging tables the same way,
    so its copy into staging is sorted, and its MERGE into the raw table writes the rows in
    that order (DuckDB keeps insertion order; rows updated and rows inserted by one merge
    interleave a little). Each row group then spans a short range of the sort columns, and a
    query on a time window reads only that window's row groups."""

    def _get_table_update_sql(self, table_name, new_columns, generate_alter):
        sql = super()._get_table_update_sql(table_name, new_columns, generate_alter)
        keys = [self.sql_client.escape_column_name(c["name"]) for c in new_columns if c.get("sort")]
        if keys and not generate_alter:
            name = self.sql_client.make_qualified_table_name(table_name)
            sql.append(f"ALTER TABLE {name} SET SORTED BY ({', '.join(keys)})")
        return sql


class sorted_ducklake(dlt.destinations.ducklake):  # noqa: N801 - dlt names factories so
    """dlt's `ducklake` destination with SortedDuckLakeClient."""

    @property
    def client_class(self) -> type:
        return SortedDuckLakeClient


def destination(
    settings: Settings, staging_layout: str = "%s_staging", deadline_s: float | None = None
):
    """dlt's `ducklake` destination bound to the lake that `settings` describe.

    On S3 each request gives up within a fraction of `deadline_s` (DuckDB's default is 30 s
    times 3 attempts, per request, and a load makes many), so a frozen store fails the load.
    """
    deadline_s = settings.load_deadline_s if deadline_s is None else deadline_s
    if settings.catalog is not None:
        catalog = settings.catalog
        # the password stays out: the catalog secret in `statements` authenticates
        catalog_url = f"postgres://{catalog.user}@{catalog.host}:{catalog.port}/{catalog.database}"
        storage = FilesystemConfiguration(
            bucket_url=settings.lake_data_path,
            credentials=AwsCredentials(
                aws_access_key_id=plain(settings.s3_access_key_id),
                aws_secret_access_key=plain(settings.s3_secret_access_key),
                region_name=settings.s3_region,
                endpoint_url=settings.s3_endpoint_url,
            ),
        )
    else:
        catalog_url = f"sqlite:///{settings.catalog_path}"
        storage = FilesystemConfiguration(bucket_url=Path(settings.lake_data_path).as_uri())
    credentials = DuckLakeCredentials(
        ducklake_name=settings.lake_alias,
        metadata_schema=settings.metadata_schema,
        catalog=catalog_url,
        storage=storage,
    )
    credentials.statements = session_statements(settings)
    if settings.profile == "scale":
        credentials.statements += [
            f"set http_timeout = {max(1, int(deadline_s / 4))}",
            "set http_retries = 1",
        ]
    return sorted_ducklake(
        credentials=credentials,
        staging_dataset_name_layout=staging_layout,
        destination_name="ducklake",
    )


def _snapshot(con, alias: str) -> int:
    return con.execute(f"select max(snapshot_id) from ducklake_snapshots('{alias}')").fetchone()[0]


def _changes(con, alias: str, table: str, load_id: str, first: int, last: int) -> tuple[int, int]:
    """(inserted, updated) rows of `table` that the load `load_id` committed.

    Read from DuckLake's change feed, not from a diff of the table since the load began: with
    concurrent loads of one site, a diff credits every load with the rows the others inserted
    meanwhile (six loads once claimed 12,787 inserts for 6,099 unique rows). A row of this load
    is an update when the same commit deleted a row with its key (dlt merges by delete + insert,
    which DuckLake reports as update pre/post images).
    """
    changes = f"ducklake_table_changes({quote(alias)}, {quote(RAW_SCHEMA)}, {quote(table)}, {first}, {last})"
    # literals, not parameters: DuckDB's parameter binding imports pandas (seconds)
    inserted, updated = con.execute(
        f"with changes as (select * from {changes}), "
        "mine as (select snapshot_id, subject_id, record_key from changes "
        f"where change_type in ('insert', 'update_postimage') and _dlt_load_id = {quote(load_id)}), "
        "gone as (select distinct snapshot_id, subject_id, record_key from changes "
        "where change_type in ('delete', 'update_preimage')) "
        "select count(*) filter (where g.record_key is null), count(g.record_key) "
        "from mine m left join gone g using (snapshot_id, subject_id, record_key)"
    ).fetchone()
    return inserted, updated


def _measure(con, settings: Settings, before: int, load_id: str, tables: list[str]) -> IngestResult:
    alias = settings.lake_alias
    result = IngestResult(load_id=load_id, snapshot_id=_snapshot(con, alias))
    meta = metadata_prefix(settings)
    for table in tables:
        inserted, updated = _changes(con, alias, table, load_id, before + 1, result.snapshot_id)
        result.tables[table] = TableCounts(inserted + updated, inserted, updated)
    result.data_files = con.execute(
        f"select count(*) from {meta}.ducklake_data_file where begin_snapshot > {before}"
    ).fetchone()[0]
    return result


def _configure_dlt() -> None:
    # Arrow tables carry no _dlt_load_id unless asked; measuring the load needs it
    dlt.config["normalize.parquet_normalizer.add_dlt_load_id"] = True
    # a job that failed twice will fail again: stop instead of retrying (dlt's default is 5)
    dlt.config["load.raise_on_max_retries"] = LOAD_JOB_ATTEMPTS


def _pipeline(settings: Settings, workdir: str, run_tag: str, deadline_s: float):
    return dlt.pipeline(
        pipeline_name=f"cascade_{run_tag}",
        pipelines_dir=workdir,
        destination=destination(
            settings, staging_layout=f"%s_staging_{run_tag}", deadline_s=deadline_s
        ),
        dataset_name=RAW_SCHEMA,
        progress=None,
    )


def _run_pipeline(
    settings: Settings, source, run_tag: str, deadline_s: float
) -> tuple[str | None, list[str], dict]:
    """Run dlt once in a private working directory; return (load id, raw tables, step seconds).

    Extract and normalize run here. The load step (the only one that talks to the lake) runs
    here on a local lake; on a remote one (scale) it runs in a child process that is killed
    after `deadline_s`: a frozen S3 or catalog then ends the load with LoadDeadline instead of
    dlt retrying its jobs for ever, and a killed load can never commit later (an abandoned
    thread would, once S3 woke up, possibly over the rows of a newer load).
    """
    _configure_dlt()
    steps = {}
    # under CASCADE_HOME, so that health sees and maintain removes what a killed load leaves
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cascade-dlt-", dir=settings.work_dir) as workdir:
        pipeline = _pipeline(settings, workdir, run_tag, deadline_s)
        # every run starts from a fresh working dir on purpose: no state to restore
        pipeline.config.restore_from_destination = False
        started = time.perf_counter()
        pipeline.extract(source, loader_file_format="parquet")
        steps["extract"] = time.perf_counter() - started
        started = time.perf_counter()
        normalized = pipeline.normalize()
        steps["normalize"] = time.perf_counter() - started
        with merge_lock(settings):
            started = time.perf_counter()
            if settings.profile == "scale":
                rows = sum(n for t, n in normalized.row_counts.items() if not t.startswith("_dlt"))
                load_ids = _load_in_child(settings, workdir, run_tag, deadline_s, rows)
            else:
                load_ids = _load(pipeline, settings)
            steps["load"] = time.perf_counter() - started
    load_id = load_ids[-1] if load_ids else None
    tables = sorted(t for t in normalized.row_counts if not t.startswith("_dlt"))
    return load_id, (tables if load_id else []), steps


def _load(pipeline, settings: Settings) -> list[str]:
    """dlt's load step; the load ids. Each load job opens a DuckDB instance of its own (up to
    CASCADE_DUCKDB_MEMORY_LIMIT): CASCADE_LOAD_WORKERS jobs at once bound the step's memory."""
    return pipeline.load(workers=settings.load_workers).loads_ids


class LoadDeadline(TimeoutError):
    """The load step did not finish within its deadline (a frozen S3 or catalog)."""


class LoadFailed(RuntimeError):
    """The load step failed in its child process; the message is its root cause."""


class LoadConflict(LoadFailed):
    """The child's load lost a race with a concurrent writer (safe to run again)."""


# how long a load's child process may take to start (imports) before its deadline begins
CHILD_START_S = 60.0
# A big load takes longer than a frozen endpoint's deadline: the 14-day load of 1,000 sites
# (8.8M rows) needed over 60 s. The deadline grows by a second for each this many rows, a
# fifth of the rate of the 200-site load on PostgreSQL + S3 (1.76M rows in the ~17 s its
# extract, normalize and load took beside the fetch, 2 cores: about 100k rows/s).
LOAD_ROWS_PER_S_FLOOR = 20_000


def load_deadline(deadline_s: float, rows: int) -> float:
    """Seconds the load step of `rows` rows may take before it counts as frozen."""
    return deadline_s + rows / LOAD_ROWS_PER_S_FLOOR


def _load_in_child(
    settings: Settings, workdir: str, run_tag: str, deadline_s: float, rows: int
) -> list[str]:
    """`pipeline.load()` of the normalized packages in `workdir` (`rows` rows) in a child
    process, killed after `load_deadline(deadline_s, rows)`; returns the load ids."""
    wait_s = load_deadline(deadline_s, rows)
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=_child_load,
        args=(settings.to_child_json(), workdir, run_tag, deadline_s, sender),
        name=f"cascade-load-{run_tag}",
        daemon=True,
    )
    child.start()
    sender.close()
    try:
        if not receiver.poll(CHILD_START_S):
            raise LoadDeadline(f"the load process did not start within {CHILD_START_S:g} s")
        receiver.recv()  # it has started: the deadline counts from here
        if not receiver.poll(wait_s):
            raise LoadDeadline(f"the load of {rows:,} rows did not finish within {wait_s:.0f} s")
        outcome, value = receiver.recv()
    except EOFError:
        child.join(5)
        raise LoadFailed(
            f"the load process ended without a result (exit code {child.exitcode})"
        ) from None
    finally:
        if child.is_alive():
            child.kill()
        child.join(5)
        receiver.close()
    if outcome == "ok":
        return value
    raise (LoadConflict if outcome == "conflict" else LoadFailed)(value)


def _child_load(settings_json: str, workdir: str, run_tag: str, deadline_s: float, sender) -> None:
    """The child's side of `_load_in_child`; its outcome goes back as plain strings."""
    sender.send("started")
    try:
        settings = Settings.from_child_json(settings_json)
        _configure_dlt()
        pipeline = _pipeline(settings, workdir, run_tag, deadline_s)
        sender.send(("ok", list(_load(pipeline, settings))))
    except Exception as exc:  # noqa: BLE001 - reported to the parent as text
        cause = root_cause(exc)
        text = " ".join(str(cause).split()) or type(cause).__name__
        sender.send(("conflict" if _is_conflict(exc) else "error", text))
    finally:
        sender.close()


def run_load(
    settings: Settings, source, stats: FetchStats, deadline_s: float | None = None
) -> IngestResult:
    """Load `source` into `<lake>.raw` by merge and return what happened.

    Each run gets its own dlt working directory and its own staging schema (dropped after),
    so concurrent runs (several partitions at once on PostgreSQL) never share local state or
    staging tables: a shared staging table could be emptied by one run between another run's
    insert and merge.
    """
    started = time.perf_counter()
    run_tag = uuid.uuid4().hex[:12]
    deadline_s = settings.load_deadline_s if deadline_s is None else deadline_s
    with writer_lock(settings), connect(settings) as con:
        before = _snapshot(con, settings.lake_alias)
        try:
            load_id, tables, steps = _run_pipeline(settings, source, run_tag, deadline_s)
        finally:
            con.execute(f"drop schema if exists {RAW_SCHEMA}_staging_{run_tag} cascade")
        result = _measure(con, settings, before, load_id, tables) if load_id else IngestResult()
    result.dlt_seconds = steps
    result.fetched_by_collection = dict(stats.fetched)
    result.bad_by_collection = {
        c: stats.issues.get(c, 0) + stats.quarantined.get(c, 0) for c in stats.fetched
    }
    result.fetched = sum(stats.fetched.values())
    result.bad_records = stats.bad_records
    result.duplicates = sum(stats.duplicates.values())
    result.seconds = time.perf_counter() - started
    result.fetch_seconds = stats.seconds
    result.load_seconds = result.seconds - stats.seconds
    return result


# A load that lost a race with a concurrent writer (a first CREATE TABLE, a commit conflict
# DuckLake gave up on) is safe to run again: merge on the key makes it idempotent.
CONFLICTS = ("already exists", "conflict", "duplicate key")
LOAD_ATTEMPTS = 3


def _is_conflict(exc: BaseException) -> bool:
    if isinstance(exc, LoadConflict):
        return True
    text = []
    while exc is not None:
        text.append(str(exc).lower())
        exc = exc.__cause__ or exc.__context__
    return any(marker in " ".join(text) for marker in CONFLICTS)


def load_with_retries(
    settings: Settings,
    make_source: Callable[[FetchStats], object],
    on_page: Callable[[str, int], None] | None = None,
    deadline_s: float | None = None,
) -> IngestResult:
    """`run_load` a freshly made source, again after a conflict with a concurrent writer.

    Any other failure becomes one IngestError line naming the root cause, not dlt's chain.
    """
    attempts = Retrying(
        retry=retry_if_exception(_is_conflict),
        stop=stop_after_attempt(LOAD_ATTEMPTS),
        wait=wait_incrementing(0.5, 0.5) + wait_random(0, 1),
        reraise=True,
    )
    try:
        for attempt in attempts:
            with attempt:
                stats = FetchStats(on_page=on_page)
                result = run_load(settings, make_source(stats), stats, deadline_s)
    except Exception as exc:
        raise IngestError(explain_failure(settings, exc)) from exc
    result.commit_retries = attempts.statistics["attempt_number"] - 1
    return result


def ingest_site(
    settings: Settings,
    window: Window,
    url: str | None = None,
    subject_id: str | None = None,
    collections: tuple[str, ...] = COLLECTIONS,
    on_page: Callable[[str, int], None] | None = None,
    deadline_s: float | None = None,
) -> IngestResult:
    """Fetch `window` from a Nightscout site (default CASCADE_NIGHTSCOUT_URL) into raw."""
    url = url or settings.nightscout_url
    if not url:
        raise ValueError("no Nightscout site: pass --url or set CASCADE_NIGHTSCOUT_URL")
    client = NightscoutClient(
        url,
        api_secret=plain(settings.nightscout_api_secret),
        token=plain(settings.nightscout_token),
        timeout_s=settings.http_timeout_s,
        retries=settings.http_retries,
    )
    # never the host name: no part of a URL may reach raw (see cascade.sites.subjects)
    subject = subject_id or settings.subject_id or "default"
    try:
        return load_with_retries(
            settings,
            lambda stats: nightscout(
                client, window, subject, stats, settings.page_size, collections
            ),
            on_page,
            deadline_s,
        )
    finally:
        client.close()


def ingest_file(
    settings: Settings,
    path: Path,
    window: Window | None = None,
    utc_offset_minutes: int = 0,
    on_page: Callable[[str, int], None] | None = None,
    deadline_s: float | None = None,
) -> IngestResult:
    """Load a Nightscout JSON export or an iglu CSV (several subjects) into raw."""
    records = load_file(path, utc_offset_minutes=utc_offset_minutes)
    collections = tuple(c for c in COLLECTIONS if records.get(c))
    return load_with_retries(
        settings,
        lambda stats: nightscout_file(records, stats, window, settings.page_size, collections),
        on_page,
        deadline_s,
    )


@dataclass
class SiteStatus:
    """How one site fared in `ingest_sites`: `ok`, or `failed` with a one-line `error`."""

    name: str
    subject_id: str
    status: str
    fetched: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    seconds: float = 0.0
    error: str | None = None


@dataclass
class SitesResult:
    """One multi-site ingest: per-site status, and the one load that carried every site."""

    sites: list[SiteStatus] = field(default_factory=list)
    load: IngestResult | None = None
    fetch_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def failed(self) -> list[SiteStatus]:
        return [s for s in self.sites if s.status != "ok"]

    def describe(self) -> str:
        """One line for logs and the CLI (failed sites' reasons are in `failed`)."""
        ok = len(self.sites) - len(self.failed)
        load = self.load.describe() if self.load else "nothing to load"
        return (
            f"{ok}/{len(self.sites)} sites ok · fetch {self.fetch_seconds:.1f} s · "
            f"{self.seconds:.1f} s in all · {load}"
        )


def select_sites(settings: Settings, names: list[str] | None = None):
    """The sites an ingest covers: every active registered site plus the
    CASCADE_NIGHTSCOUT_URL shortcut, or exactly `names` (SitesError for an unknown or removed
    name). The shortcut's marks come from raw, as it has no registry row."""
    from cascade.sites.registry import SitesError, read_sites, shortcut_site

    with connect(settings) as con:
        registered = {s.name: s for s in read_sites(con, settings)}
        shortcut = shortcut_site(settings)
        if shortcut is not None and shortcut.name not in registered:
            if names is None or shortcut.name in names:
                shortcut.marks = _raw_marks(con, shortcut.subject_id)
            registered[shortcut.name] = shortcut
    if names is None:
        return [s for s in registered.values() if s.active]
    chosen = []
    for name in dict.fromkeys(names):
        site = registered.get(name)
        if site is None or not site.active:
            state = "was removed" if site else "is not registered"
            raise SitesError(f"site {name!r} {state} (see `cascade sites list`)")
        chosen.append(site)
    return chosen


def _raw_marks(con, subject_id: str) -> dict[str, int | None]:
    marks = {}
    for collection in ("entries", "treatments", "devicestatus"):
        try:
            marks[collection] = con.execute(
                f"select max(date_ms) from {RAW_SCHEMA}.{collection} "
                f"where subject_id = {quote(subject_id)}"
            ).fetchone()[0]
        except duckdb.CatalogException:  # no such table yet: nothing loaded
            marks[collection] = None
    return marks


def ingest_sites(
    settings: Settings,
    names: list[str] | None = None,
    window: Window | None = None,
    collections: tuple[str, ...] = COLLECTIONS,
    deadline_s: float | None = None,
    now: datetime | None = None,
) -> SitesResult:
    """Fetch what is new at many sites at once and load it in ONE dlt load.

    Each site is fetched from its own high-water mark minus CASCADE_LOOKBACK_HOURS (a new site
    from CASCADE_START_DATE; `window` overrides both, for backfills), CASCADE_FETCH_CONCURRENCY
    at a time. A site that fails is reported in the result and left out; the others load. The
    marks move forward only after the load committed. A failed load (not a site) raises
    IngestError, with every site's status recorded as failed.
    """
    from cascade.sites.fetch import SitesRun, merged_stats
    from cascade.sites.registry import RunRecord, record_runs

    started = time.perf_counter()
    run = SitesRun(settings, select_sites(settings, names), now, collections, window)
    result = SitesResult()
    load_error = None
    if run.sites:
        try:
            result.load = load_with_retries(settings, run.source, deadline_s=deadline_s)
        except IngestError as exc:
            load_error = exc
    fetches = run.ordered()
    result.fetch_seconds = run.fetch_seconds
    for fetch in fetches:
        result.sites.append(
            SiteStatus(
                fetch.site.name,
                fetch.site.subject_id,
                "ok" if fetch.ok and load_error is None else "failed",
                dict(fetch.stats.fetched),
                fetch.requests,
                fetch.seconds,
                fetch.error or (str(load_error) if load_error else None),
            )
        )
    stored = [f for f in fetches if f.site.stored]
    if load_error is not None:
        record_runs(
            settings, [RunRecord(f.site.name, "failed", error=str(load_error)) for f in stored]
        )
        raise load_error
    record_runs(
        settings,
        [
            RunRecord(f.site.name, "ok", f.marks, f.profile_digest)
            if f.ok
            else RunRecord(f.site.name, "failed", error=f.error)
            for f in stored
        ],
    )
    good = [f for f in fetches if f.ok]
    if result.load is not None:
        stats = merged_stats(good, FetchStats())
        result.load.fetched_by_collection = dict(stats.fetched)
        result.load.fetched = sum(stats.fetched.values())
        result.load.bad_records = stats.bad_records
        result.load.duplicates = sum(stats.duplicates.values())
        result.load.fetch_seconds = result.fetch_seconds
        result.load.load_seconds = max(0.0, result.load.seconds - result.fetch_seconds)
    result.seconds = time.perf_counter() - started
    return result
