"""The Nightscout client against the demo server over real HTTP: paging, auth, retries."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from cascade.demo.generator import entries_for_day, treatments_for_day
from cascade.demo.server import DemoServer
from cascade.sources.nightscout.helpers import NightscoutClient, NightscoutError, Window
from tests.support import NS_API_SECRET

DAY = date(2024, 5, 10)
START = datetime(2024, 5, 10, tzinfo=UTC)
NOW = START + timedelta(days=20)


def no_sleep(_seconds: float) -> None:
    """Backoff without waiting, so retry tests stay fast; the retries themselves are real."""


@pytest.fixture
def server():
    with DemoServer(now=NOW) as srv:
        yield srv


def test_paging_returns_every_record_exactly_once(server: DemoServer):
    client = NightscoutClient(server.url)
    window = Window(START, START + timedelta(days=2))
    pages = list(client.pages("entries", window, page_size=100))
    ids = [r["_id"] for page in pages for r in page]
    expected = {e["_id"] for d in (DAY, DAY + timedelta(days=1)) for e in entries_for_day(d)}
    assert len(ids) == len(set(ids)) == len(expected)
    assert set(ids) == expected
    assert len(pages) >= len(expected) // 100
    for path, query in server.request_log:
        assert "find[date][$gte]" in query and "find[date][$lte]" in query, (path, query)
        assert query["find[date][$gte]"].isdigit()  # epoch ms, never an ISO string


def test_a_page_larger_than_the_window_is_not_truncated_at_count(server: DemoServer):
    client = NightscoutClient(server.url)
    window = Window(START, START + timedelta(days=3))
    records = [r for page in client.pages("entries", window, page_size=10) for r in page]
    assert len(records) == sum(len(entries_for_day(DAY + timedelta(days=d))) for d in range(3))


def test_treatments_page_on_created_at(server: DemoServer):
    client = NightscoutClient(server.url)
    window = Window(START, START + timedelta(days=1))
    records = [r for page in client.pages("treatments", window, page_size=3) for r in page]
    assert {r["_id"] for r in records} == {t["_id"] for t in treatments_for_day(DAY)}
    assert all("find[created_at][$gte]" in q for _, q in server.request_log)


def test_api_secret_is_sent_as_sha1_and_checked():
    with DemoServer(now=NOW, api_secret=NS_API_SECRET) as server:
        window = Window(START, START + timedelta(hours=2))
        with pytest.raises(NightscoutError, match="401") as info:
            list(NightscoutClient(server.url).pages("entries", window, 100))
        assert "CASCADE_NIGHTSCOUT_API_SECRET" in str(info.value)
        with pytest.raises(NightscoutError, match="401"):
            list(NightscoutClient(server.url, api_secret="wrong").pages("entries", window, 100))
        good = NightscoutClient(server.url, api_secret=NS_API_SECRET)
        assert sum(len(p) for p in good.pages("entries", window, 100)) > 0


def test_token_auth_keeps_the_token_out_of_errors():
    with DemoServer(now=NOW, token="reader-token-123") as server:
        window = Window(START, START + timedelta(hours=2))
        client = NightscoutClient(server.url, token="reader-token-123")
        assert sum(len(p) for p in client.pages("entries", window, 100)) > 0
        server.inject_faults("entries", 503, times=10)
        failing = NightscoutClient(server.url, token="reader-token-123", retries=1, sleep=no_sleep)
        with pytest.raises(NightscoutError) as info:
            list(failing.pages("entries", window, 100))
        assert "reader-token-123" not in str(info.value)


def test_injected_500s_are_retried(server: DemoServer):
    server.inject_faults("entries", 500, times=2)
    client = NightscoutClient(server.url, retries=3, sleep=no_sleep)
    window = Window(START, START + timedelta(hours=6))
    records = [r for page in client.pages("entries", window, 1000) for r in page]
    assert len(records) > 0
    assert client.retries_made == 2


def test_retries_are_exhausted_with_a_clear_error(server: DemoServer):
    server.inject_faults("entries", 500, times=100)
    client = NightscoutClient(server.url, retries=2, sleep=no_sleep)
    with pytest.raises(NightscoutError, match="failed after 3 attempts: HTTP 500"):
        list(client.pages("entries", Window(START, START + timedelta(hours=1)), 100))


def test_an_html_error_page_is_retried_then_reported(server: DemoServer):
    server.inject_faults(
        "entries", 200, times=100, body="<html><body>502 Bad Gateway</body></html>"
    )
    client = NightscoutClient(server.url, retries=1, sleep=no_sleep)
    with pytest.raises(NightscoutError, match="non-JSON body"):
        list(client.pages("entries", Window(START, START + timedelta(hours=1)), 100))


def test_connection_errors_and_timeouts_are_retried():
    with DemoServer(now=NOW, delay_seconds=2.0) as slow:
        client = NightscoutClient(slow.url, timeout_s=0.2, retries=1, sleep=no_sleep)
        with pytest.raises(NightscoutError, match="Timeout"):
            client.get_json("entries.json", {"count": "1"})
        assert client.requests_made == 2
    dead = NightscoutClient(slow.url, timeout_s=1, retries=2, sleep=no_sleep)
    with pytest.raises(NightscoutError, match="ConnectionError"):
        dead.get_json("entries.json", {"count": "1"})
    assert dead.requests_made == 3


def test_empty_window_is_one_short_page(server: DemoServer):
    client = NightscoutClient(server.url)
    future = Window(NOW + timedelta(days=5), NOW + timedelta(days=6))
    assert list(client.pages("entries", future, 100)) == []
    assert len(server.request_log) == 1
