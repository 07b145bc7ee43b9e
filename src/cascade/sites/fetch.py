"""Fetch many sites at once, each from its own high-water mark, into one dlt source.

Each site is fetched on a bounded thread pool (CASCADE_FETCH_CONCURRENCY) and its pages are
typed into Arrow tables on that thread; a site that fails (wrong secret, site down) is left
out with a one-line reason, the others carry on. Sites stream into one dlt source as they
complete, its one merge resource dispatching each page to its raw table: one dlt load, one
merge per raw table, however many sites the run covers.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as day_time

import dlt
import pyarrow as pa
import pyarrow.compute as pc

from cascade.settings import Settings
from cascade.sites.registry import MARKED, Site
from cascade.sources.nightscout import COLLECTIONS, SORT_HINTS, FetchStats, _rows
from cascade.sources.nightscout.helpers import NightscoutClient, NightscoutError, Window
from cascade.sources.nightscout.settings import PRIMARY_KEY


@dataclass
class SiteFetch:
    """One site's part of a run: its typed pages per collection, or why it failed."""

    site: Site
    windows: dict[str, Window] = field(default_factory=dict)
    items: dict[str, list] = field(default_factory=dict)
    stats: FetchStats = field(default_factory=FetchStats)
    marks: dict[str, int | None] = field(default_factory=dict)
    profile_digest: str | None = None
    error: str | None = None
    requests: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


def plan_windows(
    site: Site, settings: Settings, now: datetime, window: Window | None = None
) -> dict[str, Window]:
    """The window each dated collection of `site` is fetched in.

    `window` if given (a backfill); else from the site's mark minus the look-back
    (CASCADE_LOOKBACK_HOURS, for late uploads) or, for a site never loaded, from
    CASCADE_START_DATE (00:00 UTC), up to `now`.
    """
    if window is not None:
        return {c: window for c in MARKED}
    start_day = datetime.combine(settings.start_day, day_time.min, tzinfo=UTC)
    lookback = timedelta(hours=settings.lookback_hours)
    windows = {}
    for collection in MARKED:
        mark = site.marks.get(collection)
        start = start_day if mark is None else _from_ms(mark) - lookback
        windows[collection] = Window(min(start, now - timedelta(seconds=1)), now)
    return windows


def _from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def site_secrets(site: Site, settings: Settings) -> tuple[str | None, str | None]:
    """(api secret, token) of `site`, read from the environment variables it names, now."""
    if not site.stored:
        plain = [
            s.get_secret_value() if s else None
            for s in (settings.nightscout_api_secret, settings.nightscout_token)
        ]
        return plain[0], plain[1]
    values = []
    for var in (site.api_secret_env, site.token_env):
        if var is None:
            values.append(None)
            continue
        value = os.environ.get(var)
        if not value:
            raise NightscoutError(
                f"environment variable {var} (named by the site) is not set in this process"
            )
        values.append(value)
    return values[0], values[1]


def _hint(site: Site, message: str) -> str:
    """Nightscout's 401 hint names the one-site variables; a registered site names its own."""
    if "not authorised" not in message or not site.stored:
        return message
    head = message.split(" (set CASCADE_NIGHTSCOUT")[0]
    if site.api_secret_env or site.token_env:
        var = site.api_secret_env or site.token_env
        return f"{head} (is the secret in ${var} right for this site?)"
    return (
        f"{head} (the site needs a secret: `cascade sites remove {site.name}` and add it again "
        "with --api-secret-env VAR or --token-env VAR)"
    )


def _digest(documents: list) -> str:
    text = json.dumps(documents, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _newest(tables: list, window: Window) -> int | None:
    """The newest `date_ms` among typed tables, never past the window's end (a record dated in
    the future must not push the mark beyond what the site can have)."""
    newest = None
    for item in tables:
        if isinstance(item, pa.Table) and item.num_rows:
            value = pc.max(item.column("date_ms")).as_py()
            if value is not None and (newest is None or value > newest):
                newest = value
    return None if newest is None else min(newest, window.end_ms - 1)


def fetch_site(
    settings: Settings,
    site: Site,
    now: datetime,
    collections: tuple[str, ...] = COLLECTIONS,
    window: Window | None = None,
) -> SiteFetch:
    """Fetch and type what is new at `site`; never raises for the site's own failures."""
    started = time.perf_counter()
    fetch = SiteFetch(site=site, windows=plan_windows(site, settings, now, window))
    client = None
    try:
        api_secret, token = site_secrets(site, settings)
        client = NightscoutClient(
            site.url,
            api_secret=api_secret,
            token=token,
            timeout_s=settings.http_timeout_s,
            retries=settings.http_retries,
        )
        for collection in collections:
            fetch.items[collection] = _fetch_collection(client, fetch, collection, settings)
    except NightscoutError as exc:
        fetch.error = f"site {site.name}: {_hint(site, str(exc))}"
        fetch.items = {}
    except Exception as exc:  # noqa: BLE001 - one site's surprise must not stop the others
        text = " ".join(str(exc).split())[:300]
        fetch.error = f"site {site.name}: unexpected {type(exc).__name__}: {text}"
        fetch.items = {}
    finally:
        if client is not None:
            fetch.requests = client.requests_made
            client.close()
        fetch.seconds = time.perf_counter() - started
    return fetch


def _fetch_collection(
    client: NightscoutClient, fetch: SiteFetch, collection: str, settings: Settings
) -> list:
    subject = fetch.site.subject_id
    if collection == "profile":
        documents = client.get_json("profile.json", {"count": str(settings.page_size)})
        digest = _digest(documents)
        fetch.profile_digest = digest
        if digest == fetch.site.profile_digest:
            return []  # unchanged since the last load: nothing to merge
        return list(_rows(lambda _c: iter([documents]), collection, subject, fetch.stats))
    window = fetch.windows[collection]
    pages = lambda c: client.pages(c, window, settings.page_size)  # noqa: E731
    items = list(_rows(pages, collection, subject, fetch.stats))
    fetch.marks[collection] = _newest(items, window)
    return items


class SitesRun:
    """The fetches of one ingest run, streamed into one dlt source as sites complete.

    At most twice CASCADE_FETCH_CONCURRENCY sites are in memory at once: a site's typed pages
    go to dlt (which writes them to its load files) as soon as it is fetched and are dropped,
    so a run's memory does not grow with the number of sites. `fetches` keeps every site's
    outcome (marks, status, counts) by name; a retried load fetches again and replaces them.
    """

    def __init__(
        self,
        settings: Settings,
        sites: list[Site],
        now: datetime | None = None,
        collections: tuple[str, ...] = COLLECTIONS,
        window: Window | None = None,
    ) -> None:
        self.settings = settings
        self.sites = sites
        self.now = now or datetime.now(UTC)
        self.collections = collections
        self.window = window
        self.fetches: dict[str, SiteFetch] = {}
        self.fetch_seconds = 0.0

    def source(self, _stats: FetchStats | None = None):
        """A fresh dlt source over every site (the `make_source` of `load_with_retries`)."""
        self.fetches = {}
        return sites_source(self._items(), self.collections)

    def _items(self) -> Iterator:
        started = time.perf_counter()
        workers = max(1, min(self.settings.fetch_concurrency, len(self.sites)))
        queue = iter(self.sites)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cascade-fetch") as pool:
            pending = set()

            def submit() -> None:
                site = next(queue, None)
                if site is not None:
                    pending.add(
                        pool.submit(
                            fetch_site, self.settings, site, self.now, self.collections, self.window
                        )
                    )

            for _ in range(2 * workers):
                submit()
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    pending.discard(future)
                    submit()
                    fetch = future.result()
                    self.fetches[fetch.site.name] = fetch
                    for collection, items in fetch.items.items():
                        for item in items:
                            yield _to_table(item, collection)
                    fetch.items = {}
        self.fetch_seconds = time.perf_counter() - started

    def ordered(self) -> list[SiteFetch]:
        """Every site's outcome, in the order the sites were given."""
        return [self.fetches[s.name] for s in self.sites if s.name in self.fetches]


def _to_table(item, collection: str):
    # typed pages name their table here; quarantine rows arrive already marked
    return dlt.mark.with_table_name(item, collection) if isinstance(item, pa.Table) else item


def merged_stats(fetches: list[SiteFetch], into: FetchStats) -> FetchStats:
    """Add every successful site's counters to `into` (the run's FetchStats)."""
    for fetch in fetches:
        if not fetch.ok:
            continue
        for name in ("fetched", "issues", "quarantined", "duplicates"):
            total = getattr(into, name)
            for collection, value in getattr(fetch.stats, name).items():
                total[collection] = total.get(collection, 0) + value
    return into


@dlt.source(name="nightscout", max_table_nesting=0)
def sites_source(items: Iterable, collections: tuple[str, ...] = COLLECTIONS):
    """One merge resource dispatching every site's typed pages to their raw tables (one table
    per collection, plus `quarantine`): all sites land in one merge per table."""
    return dlt.resource(
        items,
        name="nightscout_sites",
        write_disposition={"disposition": "merge", "strategy": "upsert"},
        primary_key=list(PRIMARY_KEY),
        columns=SORT_HINTS,
    )
