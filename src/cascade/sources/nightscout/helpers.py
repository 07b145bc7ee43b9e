"""HTTP access to a Nightscout site: authentication, retries, and paging by the date bound.

Nightscout has no `skip`: the only correct way through a window is to move its upper date
bound to the oldest record of each page until a page comes back short. A query without a date
filter would silently be cut to the last 4 days, so every query here carries both bounds.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests

from cascade.sources.nightscout.records import iso_to_ms
from cascade.sources.nightscout.settings import API_PREFIX, DATE_FIELD, RETRY_STATUSES


class NightscoutError(RuntimeError):
    """The Nightscout site refused or failed a request; the message says which and why."""


@dataclass(frozen=True)
class Window:
    """A half-open time window [start, end) in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("window bounds must be timezone-aware")
        if self.end <= self.start:
            raise ValueError(f"empty window: end {self.end} is not after start {self.start}")

    @classmethod
    def all_time(cls) -> Window:
        """From the epoch to far in the future: for collections that are not windowed."""
        return cls(datetime(1970, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC))

    @property
    def start_ms(self) -> int:
        return int(self.start.timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        return int(self.end.timestamp() * 1000)


def iso_ms(epoch_ms: int) -> str:
    """ISO 8601 UTC with milliseconds, the format Nightscout stores in `created_at`."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def window_params(collection: str, lower: int, upper: int, count: int) -> dict[str, str]:
    """Query parameters for records of `collection` with lower <= date <= upper (epoch ms).

    The upper bound is inclusive so that records sharing the boundary timestamp are not lost
    between pages; the caller skips the ones it has already seen.
    """
    field = DATE_FIELD[collection]
    if field == "date":
        low, high = str(lower), str(upper)
    else:
        low, high = iso_ms(lower), iso_ms(upper)
    return {f"find[{field}][$gte]": low, f"find[{field}][$lte]": high, "count": str(count)}


def without_query(url: str) -> str:
    """The URL without its query string (which may carry a token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


class NightscoutClient:
    """A session against one Nightscout site with auth, timeouts and retries with backoff."""

    def __init__(
        self,
        base_url: str,
        api_secret: str | None = None,
        token: str | None = None,
        timeout_s: float = 30.0,
        retries: int = 5,
        backoff_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.sleep = sleep
        self.session = requests.Session()
        self.session.headers["Accept"] = "application/json"
        if api_secret:
            digest = hashlib.sha1(api_secret.encode()).hexdigest()
            self.session.headers["api-secret"] = digest
        self._token = token
        self.requests_made = 0
        self.retries_made = 0

    def close(self) -> None:
        self.session.close()

    def get_json(self, path: str, params: dict[str, str]) -> list[dict]:
        """GET `path` and return its JSON list, retrying 5xx, timeouts and connection errors."""
        url = f"{self.base_url}{API_PREFIX}/{path}"
        if self._token:
            params = {**params, "token": self._token}
        last_problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self.retries_made += 1
                self.sleep(self.backoff_s * 2 ** (attempt - 1))
            self.requests_made += 1
            try:
                response = self.session.get(url, params=params, timeout=self.timeout_s)
            except (requests.ConnectionError, requests.Timeout) as exc:
                last_problem = f"{type(exc).__name__}"
                continue
            if response.status_code in (401, 403):
                raise NightscoutError(
                    f"{without_query(url)} answered {response.status_code}: not authorised "
                    "(set CASCADE_NIGHTSCOUT_API_SECRET or CASCADE_NIGHTSCOUT_TOKEN)"
                )
            if response.status_code in RETRY_STATUSES:
                last_problem = f"HTTP {response.status_code}"
                continue
            if response.status_code != 200:
                raise NightscoutError(f"{without_query(url)} answered HTTP {response.status_code}")
            try:
                body = response.json()
            except ValueError:
                snippet = " ".join(response.text[:80].split())
                last_problem = f"a non-JSON body ({snippet!r})"
                continue
            if not isinstance(body, list):
                raise NightscoutError(
                    f"{without_query(url)} returned {type(body).__name__}, not a list"
                )
            return body
        raise NightscoutError(
            f"{without_query(url)} failed after {self.retries + 1} attempts: {last_problem}"
        )

    def pages(self, collection: str, window: Window, page_size: int) -> Iterator[list[dict]]:
        """Every record of `collection` in `window`, one page at a time, newest first."""
        upper = window.end_ms - 1
        seen_at_bound: set[str] = set()
        while True:
            params = window_params(collection, window.start_ms, upper, page_size)
            page = self.get_json(f"{collection}.json", params)
            fresh = [r for r in page if _identity(r) not in seen_at_bound]
            if fresh:
                yield fresh
            if len(page) < page_size:
                return
            stamps = [ms for r in page if (ms := _sort_ms(r, collection)) is not None]
            oldest = min(stamps, default=None)
            if not fresh or oldest is None:
                raise NightscoutError(
                    f"more than {page_size} {collection} share one timestamp near {iso_ms(upper)}; "
                    "raise CASCADE_PAGE_SIZE"
                )
            seen_at_bound = {_identity(r) for r in page if _sort_ms(r, collection) == oldest}
            upper = oldest


def _identity(record: dict) -> str:
    return str(record.get("_id") or sorted(record.items()))


def _sort_ms(record: dict, collection: str) -> int | None:
    value = record.get(DATE_FIELD[collection])
    if DATE_FIELD[collection] == "date":
        return int(value) if isinstance(value, (int, float)) else None
    return iso_to_ms(value)
