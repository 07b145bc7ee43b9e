"""The Nightscout client against hostile servers over real HTTP (a purpose-built server here).

Each server misbehaves in one way a real one has: caps replies below `count`, ignores the date
filter, drips its body, asks for a pause with `Retry-After`, serves one `_id` twice in a page.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest

from cascade.sources.nightscout import FetchStats, build_resources
from cascade.sources.nightscout.helpers import NightscoutClient, NightscoutError, Window

START = datetime(2024, 5, 10, tzinfo=UTC)
DAY = Window(START, START + timedelta(days=1))
FIVE_MIN = 300_000


def day_of_entries() -> list[dict]:
    """288 readings, newest first, as Nightscout serves them."""
    base = DAY.start_ms
    return [
        {"_id": f"e{i:03d}", "type": "sgv", "date": base + i * FIVE_MIN, "sgv": 100 + i % 50}
        for i in reversed(range(288))
    ]


class Hostile(ThreadingHTTPServer):
    """A Nightscout-like `/api/v1/entries.json` whose behaviour the test chooses."""

    daemon_threads = True

    def __init__(self, records: list[dict], cap: int | None = None, filter_dates: bool = True):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.records = records
        self.cap = cap
        self.filter_dates = filter_dates
        self.drip: tuple[float, int] | None = None  # (seconds between chunks, bytes per chunk)
        self.busy: list[tuple[int, str]] = []  # (status, Retry-After) answered first, in order
        self.seen: list[float] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def answer(self, query: dict[str, str]) -> list[dict]:
        rows = self.records
        if self.filter_dates:
            low, high = int(query["find[date][$gte]"]), int(query["find[date][$lte]"])
            rows = [r for r in rows if low <= r["date"] <= high]
        count = int(query.get("count", 10))
        return rows[: min(count, self.cap or count)]


class _Handler(BaseHTTPRequestHandler):
    server: Hostile

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.server.seen.append(time.monotonic())
        if self.server.busy:
            status, retry_after = self.server.busy.pop(0)
            self.send_response(status)
            self.send_header("Retry-After", retry_after)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps(self.server.answer(dict(parse_qsl(urlsplit(self.path).query)))).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.server.drip is None:
            self.wfile.write(body)
            return
        pause, size = self.server.drip
        try:
            for start in range(0, len(body), size):
                self.wfile.write(body[start : start + size])
                self.wfile.flush()
                time.sleep(pause)
        except OSError:
            pass  # the client gave up, as it should


@pytest.fixture
def serve():
    servers: list[Hostile] = []

    def start(*args, **kwargs) -> Hostile:
        server = Hostile(*args, **kwargs)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def fetch(client: NightscoutClient, page_size: int = 10_000) -> list[dict]:
    return [r for page in client.pages("entries", DAY, page_size) for r in page]


def test_a_server_that_caps_replies_at_50_still_delivers_the_whole_day(serve):
    server = serve(day_of_entries(), cap=50)
    records = fetch(NightscoutClient(server.url))
    assert len(records) == len({r["_id"] for r in records}) == 288
    # one request per 49 new records plus the one that brings nothing new
    assert len(server.seen) <= 288 // 49 + 2


def test_a_full_day_in_one_page_costs_two_requests(serve):
    server = serve(day_of_entries())
    assert len(fetch(NightscoutClient(server.url))) == 288
    assert len(server.seen) == 2


def test_a_server_that_ignores_the_date_filter_is_an_error_not_a_loop(serve):
    server = serve(day_of_entries(), filter_dates=False)
    started = time.monotonic()
    with pytest.raises(NightscoutError, match="ignores the date filter") as info:
        fetch(NightscoutClient(server.url), page_size=50)
    assert time.monotonic() - started < 5
    assert len(server.seen) <= 3
    assert str(info.value).startswith(f"{server.url}/api/v1/entries.json ")
    assert "\n" not in str(info.value)


def test_a_slow_drip_fails_within_the_whole_request_deadline(serve):
    server = serve(day_of_entries())
    server.drip = (0.125, 1)  # 8 bytes a second: every read succeeds, the body never ends
    client = NightscoutClient(server.url, timeout_s=1.0, retries=1, sleep=lambda _s: None)
    started = time.monotonic()
    with pytest.raises(NightscoutError, match="failed after 2 attempts: Timeout"):
        fetch(client)
    assert time.monotonic() - started < 4


def test_retry_after_is_honoured_and_capped(serve):
    server = serve(day_of_entries())
    server.busy = [(429, "2"), (503, "3600")]
    client = NightscoutClient(server.url, retries=3, backoff_s=0.01, retry_after_cap_s=2.5)
    assert len(fetch(client)) == 288
    first, second, third = server.seen[:3]
    assert 2.0 <= second - first < 2.5  # Retry-After: 2, not the 0.01 s backoff
    assert 2.5 <= third - second < 3.5  # an hour asked for, the cap granted
    assert client.retries_made == 2


def test_retry_after_as_an_http_date(serve):
    server = serve(day_of_entries())
    moment = datetime.now(UTC) + timedelta(seconds=2)
    server.busy = [(503, moment.strftime("%a, %d %b %Y %H:%M:%S GMT"))]
    client = NightscoutClient(server.url, retries=1, backoff_s=0.01)
    assert len(fetch(client)) == 288
    assert server.seen[1] - server.seen[0] >= 0.9


def test_one_id_twice_in_a_page_keeps_the_newest_version(serve):
    records = day_of_entries()
    first = {**records[0], "sgv": 80, "srvModified": 2}
    stale = {**records[0], "sgv": 70, "srvModified": 1}
    again = {**records[1], "sgv": 90}  # no srvModified: the last one seen wins
    server = serve([first, stale, *records[1:], again])
    client = NightscoutClient(server.url)
    stats = FetchStats()
    [resource] = build_resources(
        lambda c: client.pages(c, DAY, 10_000), stats, "s", collections=("entries",)
    )
    tables = list(resource)
    rows = [row for table in tables for row in table.to_pylist()]
    keys = [r["record_key"] for r in rows]
    assert len(keys) == len(set(keys)) == 288
    by_key = {r["record_key"]: r for r in rows}
    assert by_key[records[0]["_id"]]["sgv"] == 80
    assert by_key[records[1]["_id"]]["sgv"] == 90
    assert stats.duplicates["entries"] == 2
