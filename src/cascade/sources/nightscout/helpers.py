"""HTTP access to a Nightscout site: authentication, retries, and paging by the date bound.

Nightscout has no `skip`: the only correct way through a window is to move its upper date
bound to the oldest record of each page. A server may cap a reply below the `count` asked for,
so a short page does not mean the window is done: paging ends only when a request brings no
record not seen before. A query without a date filter would silently be cut to the last 4
days, so every query here carries both bounds, and a server that ignores them is an error.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests
import urllib3
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from cascade.sources.nightscout.records import iso_ms, iso_to_ms
from cascade.sources.nightscout.settings import (
    API_PREFIX,
    DATE_FIELD,
    RETRY_AFTER_CAP_S,
    RETRY_AFTER_STATUSES,
    RETRY_STATUSES,
)

READ_CHUNK = 65_536


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


def retry_after_s(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a `Retry-After` header asks to wait (delta seconds or an HTTP date), or None."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


class _Retryable(Exception):
    """One attempt failed in a way another attempt may not: `problem` says how."""

    def __init__(self, problem: str, wait_s: float | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.wait_s = wait_s


def _read_body(response: requests.Response, deadline: float, timeout_s: float) -> bytes:
    """The whole body, or _Retryable once `deadline` passes.

    `timeout` in requests bounds each socket read, so a server dripping a few bytes a second
    could hold a request for ever; reading whatever has arrived (`read1`) and checking the
    clock between reads bounds the request as a whole.
    """
    chunks = []
    while True:
        if time.monotonic() > deadline:
            raise _Retryable(f"Timeout (no complete answer within {timeout_s:g} s)")
        chunk = response.raw.read1(READ_CHUNK, decode_content=True)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


class NightscoutClient:
    """A session against one Nightscout site with auth, a whole-request deadline and retries.

    Retries (tenacity) back off exponentially from `backoff_s`, or wait what a 429/503's
    `Retry-After` asks, up to `retry_after_cap_s`. `sleep` is replaceable so tests stay fast.
    """

    def __init__(
        self,
        base_url: str,
        api_secret: str | None = None,
        token: str | None = None,
        timeout_s: float = 30.0,
        retries: int = 5,
        backoff_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        retry_after_cap_s: float = RETRY_AFTER_CAP_S,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.retry_after_cap_s = retry_after_cap_s
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

    def get_json(self, path: str, params: dict[str, str]) -> list:
        """GET `path` and return its JSON list, retrying 429/5xx, timeouts, connection errors
        and non-JSON bodies; NightscoutError (one line, no query or token) when that fails."""
        url = f"{self.base_url}{API_PREFIX}/{path}"
        if self._token:
            params = {**params, "token": self._token}
        retrying = Retrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=self._wait,
            retry=retry_if_exception_type(_Retryable),
            sleep=self.sleep,
            before_sleep=self._count_retry,
            reraise=True,
        )
        try:
            return retrying(self._get_once, url, params)
        except _Retryable as failure:
            raise NightscoutError(
                f"{without_query(url)} failed after {self.retries + 1} attempts: "
                f"{failure.problem} (is the site up? CASCADE_HTTP_TIMEOUT_S, CASCADE_HTTP_RETRIES)"
            ) from None

    def _wait(self, state: RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome else None
        if isinstance(failure, _Retryable) and failure.wait_s is not None:
            return min(failure.wait_s, self.retry_after_cap_s)
        return self.backoff_s * 2 ** (state.attempt_number - 1)

    def _count_retry(self, _state: RetryCallState) -> None:
        self.retries_made += 1

    def _get_once(self, url: str, params: dict[str, str]) -> list:
        self.requests_made += 1
        deadline = time.monotonic() + self.timeout_s
        try:
            with self.session.get(url, params=params, timeout=self.timeout_s, stream=True) as r:
                status = r.status_code
                if status in (401, 403):
                    raise NightscoutError(
                        f"{without_query(url)} answered {status}: not authorised "
                        "(set CASCADE_NIGHTSCOUT_API_SECRET or CASCADE_NIGHTSCOUT_TOKEN)"
                    )
                if status in RETRY_STATUSES:
                    wait = None
                    if status in RETRY_AFTER_STATUSES:
                        wait = retry_after_s(r.headers.get("Retry-After"))
                    raise _Retryable(f"HTTP {status}", wait)
                if status != 200:
                    raise NightscoutError(f"{without_query(url)} answered HTTP {status}")
                body = _read_body(r, deadline, self.timeout_s)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise _Retryable(type(exc).__name__) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _Retryable(f"ConnectionError ({type(exc).__name__})") from None
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            snippet = " ".join(body[:80].decode("utf-8", "replace").split())
            raise _Retryable(f"a non-JSON body ({snippet!r})") from None
        if not isinstance(document, list):
            raise NightscoutError(
                f"{without_query(url)} returned {type(document).__name__}, not a list"
            )
        return document

    def pages(self, collection: str, window: Window, page_size: int) -> Iterator[list]:
        """Every record of `collection` in `window`, one page at a time, newest first.

        The upper bound moves to the oldest record of each page (inclusive, so records sharing
        that timestamp are not lost); records already seen are skipped; paging ends when a
        request brings nothing new, whatever page size the server honours.
        """
        upper = window.end_ms - 1
        seen: set[str] = set()
        site = without_query(f"{self.base_url}{API_PREFIX}/{collection}.json")
        while True:
            params = window_params(collection, window.start_ms, upper, page_size)
            page = self.get_json(f"{collection}.json", params)
            if not page:
                return
            stamps = [ms for r in page if (ms := _sort_ms(r, collection)) is not None]
            inside = [ms for ms in stamps if window.start_ms <= ms <= upper]
            fresh = [r for r in page if _identity(r) not in seen]
            if stamps and (not inside or (not fresh and len(inside) < len(stamps))):
                raise NightscoutError(
                    f"{site} ignores the date filter: asked for {collection} from "
                    f"{iso_ms(window.start_ms)} to {iso_ms(upper)}, it answered records outside "
                    "that range (is this a Nightscout API v1 site?)"
                )
            if not fresh:
                if len(page) >= page_size and min(inside, default=None) == upper:
                    raise NightscoutError(
                        f"{site}: more than {page_size} {collection} share one timestamp near "
                        f"{iso_ms(upper)}; raise CASCADE_PAGE_SIZE"
                    )
                return
            seen.update(_identity(r) for r in fresh)
            yield fresh
            if not inside:
                return  # no dated record: nothing to move the bound to
            upper = min(inside)


def _identity(record: object) -> str:
    if isinstance(record, dict) and record.get("_id") not in (None, ""):
        return f"id|{record['_id']}"
    return json.dumps(record, sort_keys=True, default=str)


def _sort_ms(record: object, collection: str) -> int | None:
    if not isinstance(record, dict):
        return None
    value = record.get(DATE_FIELD[collection])
    if DATE_FIELD[collection] == "date":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return round(value) if abs(value) < 2**63 else None
    return iso_to_ms(value)
