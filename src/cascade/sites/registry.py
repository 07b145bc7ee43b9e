"""The sites registry: `<lake>.ops.sites`, one row per Nightscout site, shared by every machine.

A row holds where a site is (its URL, a path allowed), the NAMES of the environment variables
holding its secrets (never a secret), an optional timezone override, its pseudonymous
`subject_id` and, per collection, the high-water mark of what has been loaded (epoch ms of
the newest `date` / `created_at`). Removing a site sets `removed_at`: its refresh stops, its
data and its row (the only link from id back to person) stay, unless purged.

Writers take the registry lock (a file lock locally, a PostgreSQL advisory lock on scale) and
check before they write, so concurrent adds of one name or one URL cannot both succeed:
DuckLake has no unique constraints.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb

from cascade.lake.connection import connect, quote
from cascade.lake.lock import advisory_lock, file_lock, merge_lock, transform_lock, writer_lock
from cascade.settings import Settings, canonical_zone
from cascade.sites.subjects import normalise_url, subject_id, subject_key

TABLE = "ops.sites"
MARKED = ("entries", "treatments", "devicestatus")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
SHORTCUT_NAME = "default"
CSV_COLUMNS = ("name", "url", "api_secret_env", "token_env", "timezone")
COLUMNS = {
    "name": "varchar",
    "url": "varchar",
    "api_secret_env": "varchar",
    "token_env": "varchar",
    "timezone": "varchar",
    "subject_id": "varchar",
    "added_at": "timestamptz",
    "removed_at": "timestamptz",
    **{f"{c}_mark": "bigint" for c in MARKED},
    "profile_digest": "varchar",
    "last_run_at": "timestamptz",
    "last_status": "varchar",
    "last_error": "varchar",
}
# what a site is; the rest of a row is what cascade learnt about it
SPEC = ("name", "url", "api_secret_env", "token_env", "timezone")


class SitesError(ValueError):
    """A registry request that cannot be done; the message says why and what to do."""


@dataclass
class Site:
    """One registered site (or the CASCADE_NIGHTSCOUT_URL shortcut, `stored` False)."""

    name: str
    url: str
    subject_id: str
    api_secret_env: str | None = None
    token_env: str | None = None
    timezone: str | None = None
    added_at: datetime | None = None
    removed_at: datetime | None = None
    marks: dict[str, int | None] = field(default_factory=dict)
    profile_digest: str | None = None
    last_run_at: datetime | None = None
    last_status: str | None = None
    last_error: str | None = None
    stored: bool = True

    @property
    def active(self) -> bool:
        return self.removed_at is None

    def spec(self) -> tuple:
        return tuple(getattr(self, name) for name in SPEC)


def table(settings: Settings) -> str:
    return f"{settings.lake_alias}.{TABLE}"


@contextmanager
def registry_lock(settings: Settings) -> Iterator[float]:
    """Serialise registry writers across threads, processes and (on scale) machines."""
    if settings.profile == "local":
        with file_lock(settings.home / "sites.lock", settings.lock_timeout_s) as waited:
            yield waited
        return
    key = f"cascade:sites:{settings.lake_alias}"
    with advisory_lock(settings, key, settings.lock_timeout_s) as waited:
        yield waited


def ensure_table(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Create `ops.sites` where missing (call under the registry lock)."""
    con.execute(f"create schema if not exists {settings.lake_alias}.ops")
    columns = ", ".join(f"{name} {kind}" for name, kind in COLUMNS.items())
    con.execute(f"create table if not exists {table(settings)} ({columns})")


def _row_to_site(row: tuple) -> Site:
    values = dict(zip(COLUMNS, row, strict=True))
    marks = {c: values.pop(f"{c}_mark") for c in MARKED}
    return Site(**values, marks=marks)


def read_sites(
    con: duckdb.DuckDBPyConnection, settings: Settings, where: str = "true"
) -> list[Site]:
    """Rows of the registry on an open connection ([] before the first add)."""
    try:
        rows = con.execute(
            f"select {', '.join(COLUMNS)} from {table(settings)} where {where} order by name"
        ).fetchall()
    except duckdb.CatalogException:
        return []
    return [_row_to_site(row) for row in rows]


def list_sites(settings: Settings, include_removed: bool = False) -> list[Site]:
    """Registered sites, by name; removed ones too with `include_removed`."""
    with connect(settings) as con:
        sites = read_sites(con, settings)
    return [s for s in sites if include_removed or s.active]


def shortcut_site(settings: Settings) -> Site | None:
    """The CASCADE_NIGHTSCOUT_URL site (not stored), named by CASCADE_SUBJECT_ID or `default`.

    Its subject id is that name, as before the registry existed, so its data stays where it was.
    """
    if not settings.nightscout_url:
        return None
    name = settings.subject_id or SHORTCUT_NAME
    return Site(name=name, url=settings.nightscout_url, subject_id=name, stored=False)


def _check_spec(
    name: str, url: str, api_secret_env: str | None, token_env: str | None, timezone: str | None
) -> tuple[str, str, str | None, str | None, str | None]:
    if not NAME.match(name or ""):
        raise SitesError(
            f"site name {name!r}: use letters, digits, '.', '_' or '-' (at most 63 characters)"
        )
    try:
        url = normalise_url(url)
    except ValueError as exc:
        raise SitesError(str(exc)) from None
    api_secret_env, token_env = api_secret_env or None, token_env or None
    if api_secret_env and token_env:
        raise SitesError(f"site {name}: give --api-secret-env or --token-env, not both")
    for var in (api_secret_env, token_env):
        if var is not None and not ENV_NAME.match(var):
            raise SitesError(
                f"site {name}: {var!r} is not an environment variable name (give the NAME of "
                "the variable that holds the secret, never the secret itself)"
            )
    if timezone:
        try:
            timezone = canonical_zone(timezone, f"site {name}: timezone")
        except ValueError as exc:
            raise SitesError(str(exc)) from None
    return name, url, api_secret_env, token_env, timezone or None


def _upsert(con, settings: Settings, key: bytes, spec: tuple, update: bool) -> str:
    """Add, reactivate, update or leave one site; returns which (call under the lock)."""
    name, url, api_secret_env, token_env, timezone = spec
    subject = subject_id(key, url)
    rows = read_sites(con, settings, f"name = {quote(name)} or subject_id = {quote(subject)}")
    same_url = [s for s in rows if s.subject_id == subject and s.name != name]
    if same_url:
        raise SitesError(f"{url} is already registered as site {same_url[0].name!r}")
    if not rows:
        values = [name, url, api_secret_env, token_env, timezone, subject]
        literals = ", ".join("null" if v is None else quote(v) for v in values)
        con.execute(
            f"insert into {table(settings)} (name, url, api_secret_env, token_env, timezone, "
            f"subject_id, added_at) values ({literals}, now())"
        )
        return "added"
    site = rows[0]
    if site.url != url:
        state = "registered" if site.active else "removed with its data kept"
        raise SitesError(
            f"site {name!r} is {state} at {site.url}; choose another name"
            + ("" if site.active else f", or `cascade sites remove {name} --purge` first")
        )
    if site.spec() == spec and site.active:
        return "unchanged"
    if site.active and not update:
        raise SitesError(
            f"site {name!r} exists with other settings; remove it first or use `sites import`"
        )
    assignments = ", ".join(
        f"{column} = {'null' if value is None else quote(value)}"
        for column, value in zip(SPEC[2:], spec[2:], strict=True)
    )
    con.execute(
        f"update {table(settings)} set {assignments}, removed_at = null where name = {quote(name)}"
    )
    return "updated" if site.active else "reactivated"


def add_site(
    settings: Settings,
    name: str,
    url: str,
    api_secret_env: str | None = None,
    token_env: str | None = None,
    timezone: str | None = None,
) -> tuple[Site, str]:
    """Register a site; returns (the site, "added" | "reactivated" | "unchanged").

    Adding the same site twice is a no-op; a removed site added again (same URL) resumes from
    its marks. SitesError for a taken name or URL, a bad URL, env-var name or timezone.
    """
    spec = _check_spec(name, url, api_secret_env, token_env, timezone)
    key = subject_key(settings)
    with registry_lock(settings), connect(settings) as con:
        ensure_table(con, settings)
        con.execute("begin")
        outcome = _upsert(con, settings, key, spec, update=False)
        con.execute("commit")
        site = read_sites(con, settings, f"name = {quote(spec[0])}")[0]
    return site, outcome


@dataclass
class ImportResult:
    """What `import_sites` did, by site name."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    reactivated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return (
            f"{len(self.added)} added · {len(self.updated)} updated · "
            f"{len(self.reactivated)} reactivated · {len(self.unchanged)} unchanged"
        )


def read_csv(path: Path) -> list[tuple]:
    """The checked site specs of a CSV with columns name,url,api_secret_env,token_env,timezone."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in ("name", "url") if c not in (reader.fieldnames or [])]
        if missing:
            raise SitesError(
                f"{path}: no column {', '.join(missing)} (expected {','.join(CSV_COLUMNS)})"
            )
        specs, names = [], set()
        for line, row in enumerate(reader, start=2):
            values = {c: (row.get(c) or "").strip() or None for c in CSV_COLUMNS}
            try:
                spec = _check_spec(**values)
            except SitesError as exc:
                raise SitesError(f"{path}, line {line}: {exc}") from None
            if spec[0] in names:
                raise SitesError(f"{path}, line {line}: site {spec[0]!r} appears twice")
            names.add(spec[0])
            specs.append(spec)
    return specs


def import_sites(settings: Settings, csv_path: Path) -> ImportResult:
    """Add or update every site of a CSV in one transaction; importing it again changes nothing.

    A listed site that exists is updated (env-var names, timezone); one at another URL is
    refused, and then nothing of the file is applied.
    """
    specs = read_csv(Path(csv_path))
    key = subject_key(settings)
    result = ImportResult()
    with registry_lock(settings), connect(settings) as con:
        ensure_table(con, settings)
        con.execute("begin")
        try:
            for spec in specs:
                getattr(result, _upsert(con, settings, key, spec, update=True)).append(spec[0])
        except BaseException:
            con.execute("rollback")
            raise
        con.execute("commit")
    return result


@dataclass
class Removal:
    """What `remove_site` did: the site as it was, and rows deleted per table (purge only)."""

    site: Site
    purged: dict[str, int] = field(default_factory=dict)


def subject_tables(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[str]:
    """Every lake table (not view) with a `subject_id` column, outside `ops`: raw, the dbt
    layers and any leftover staging schema, so a purge leaves no row of the person behind."""
    rows = con.execute(
        "select c.table_schema, c.table_name from information_schema.columns c "
        "join information_schema.tables t using (table_catalog, table_schema, table_name) "
        f"where c.table_catalog = {quote(settings.lake_alias)} and c.column_name = 'subject_id' "
        "and t.table_type = 'BASE TABLE' and c.table_schema <> 'ops' order by 1, 2"
    ).fetchall()
    return [f"{schema}.{name}" for schema, name in rows]


def remove_site(settings: Settings, name: str, purge: bool = False) -> Removal:
    """Stop refreshing site `name`; its data stays in the lake and its row in the registry.

    With `purge`, its rows are deleted from raw and from every bronze, silver and gold table
    holding a `subject_id`, and its registry row goes too: the person is forgotten. The purge
    waits for the lake's writers (loads, dbt) so that none writes the person back meanwhile.
    """
    with registry_lock(settings), _quiet_lake(settings, purge), connect(settings) as con:
        ensure_table(con, settings)
        rows = read_sites(con, settings, f"name = {quote(name)}")
        if not rows:
            known = ", ".join(s.name for s in read_sites(con, settings)) or "none"
            raise SitesError(f"no site named {name!r} (registered: {known})")
        site = rows[0]
        removal = Removal(site)
        con.execute("begin")
        if purge:
            for target in subject_tables(con, settings):
                deleted = con.execute(
                    f"delete from {settings.lake_alias}.{target} "
                    f"where subject_id = {quote(site.subject_id)}"
                ).fetchone()[0]
                removal.purged[target] = deleted
            con.execute(f"delete from {table(settings)} where name = {quote(name)}")
        elif site.active:
            con.execute(
                f"update {table(settings)} set removed_at = now() where name = {quote(name)}"
            )
        con.execute("commit")
    return removal


@contextmanager
def _quiet_lake(settings: Settings, wait: bool) -> Iterator[None]:
    """With `wait`, hold the locks that loads and dbt builds take (see cascade.lake.lock)."""
    if not wait:
        yield
        return
    if settings.profile == "local":
        with writer_lock(settings):
            yield
        return
    with transform_lock(settings), merge_lock(settings):
        yield


@dataclass
class RunRecord:
    """What one ingest run learnt about a site: new marks (None: unchanged), status, error."""

    name: str
    status: str
    marks: dict[str, int | None] = field(default_factory=dict)
    profile_digest: str | None = None
    error: str | None = None


def record_runs(settings: Settings, records: list[RunRecord]) -> None:
    """Move the sites' marks forward (never back) and note each one's last status, in one
    statement: one DuckLake commit however many sites the run covered."""
    if not records:
        return

    def literal(value) -> str:
        if value is None:
            return "null"
        return str(int(value)) if isinstance(value, int) else quote(str(value))

    rows = ", ".join(
        "("
        + ", ".join(
            literal(v)
            for v in (
                r.name,
                r.status,
                r.error,
                r.profile_digest,
                *(r.marks.get(c) for c in MARKED),
            )
        )
        + ")"
        for r in records
    )
    marks = ", ".join(f"{c}_mark = greatest(s.{c}_mark, v.{c}_mark)" for c in MARKED)
    names = ", ".join(f"{c}_mark" for c in MARKED)
    with registry_lock(settings), connect(settings) as con:
        ensure_table(con, settings)
        con.execute(
            f"update {table(settings)} s set {marks}, "
            "profile_digest = coalesce(v.profile_digest, s.profile_digest), "
            "last_run_at = now(), last_status = v.status, last_error = v.error "
            f"from (values {rows}) v(name, status, error, profile_digest, {names}) "
            "where s.name = v.name"
        )
