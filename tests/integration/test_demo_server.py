"""The Nightscout demo server over real HTTP, as a client sees it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import requests

from cascade.demo.generator import entries_for_day
from cascade.demo.server import DemoServer
from cascade.demo.stamps import day_start_ms

NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
NOW_MS = round(NOW.timestamp() * 1000)
FOUR_DAYS_MS = 4 * 86_400_000
SECRET = "correct horse battery"


@pytest.fixture
def server() -> Iterator[DemoServer]:
    with DemoServer(now=NOW) as srv:
        yield srv


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as http:
        yield http


def test_entries_default_to_ten_newest_from_the_last_four_days(server, session) -> None:
    entries = session.get(f"{server.url}/api/v1/entries.json", timeout=5).json()
    assert len(entries) == 10
    dates = [e["date"] for e in entries]
    assert dates == sorted(dates, reverse=True)
    assert NOW_MS - 15 * 60_000 < dates[0] <= NOW_MS
    everything = session.get(f"{server.url}/api/v1/entries.json?count=100000", timeout=5).json()
    assert min(e["date"] for e in everything) >= NOW_MS - FOUR_DAYS_MS
    assert 4 * 250 < len(everything) < 4 * 300


def test_collections_and_status(server, session) -> None:
    def get(path: str) -> requests.Response:
        response = session.get(f"{server.url}{path}", timeout=5)
        assert response.status_code == 200, path
        assert response.headers["Content-Type"].startswith("application/json")
        return response

    sgv = get("/api/v1/entries/sgv.json?count=300").json()
    assert len(sgv) == 300 and {e["type"] for e in sgv} == {"sgv"}
    treatments = get("/api/v1/treatments.json?count=50").json()
    assert len(treatments) == 50 and all("eventType" in t for t in treatments)
    created = [t["created_at"] for t in treatments]
    assert created == sorted(created, reverse=True)
    statuses = get("/api/v1/devicestatus.json").json()
    assert len(statuses) == 10 and "reservoir" in statuses[0]["pump"]
    assert get("/api/v1/profile.json").json()[0]["defaultProfile"] == "Default"
    status = get("/api/v1/status.json").json()
    assert status["apiEnabled"] is True and status["serverTime"] == "2024-03-10T12:00:00.000Z"
    assert status["version"]


def test_paging_by_moving_the_upper_bound_returns_every_record_once(server, session) -> None:
    days = [date(2024, 2, 1) + timedelta(days=i) for i in range(3)]
    expected = {e["_id"] for d in days for e in entries_for_day(d)}
    low, upper = day_start_ms(days[0]), day_start_ms(days[-1]) + 86_400_000
    seen: list[str] = []
    pages = 0
    while True:
        params = {"find[date][$gte]": low, "find[date][$lt]": upper, "count": 100}
        page = session.get(f"{server.url}/api/v1/entries.json", params=params, timeout=5).json()
        if not page:
            break
        pages += 1
        seen += [e["_id"] for e in page]
        upper = page[-1]["date"]
    assert pages == -(-len(expected) // 100)
    assert len(seen) == len(set(seen)) == len(expected)
    assert set(seen) == expected
    assert server.request_log[-1][1]["find[date][$gte]"] == str(low)


def test_api_secret_is_required_when_configured(session) -> None:
    with DemoServer(now=NOW, api_secret=SECRET, token="reader-1234") as srv:
        url = f"{srv.url}/api/v1/entries.json"
        hashed = hashlib.sha1(SECRET.encode()).hexdigest()
        refused = session.get(url, timeout=5)
        assert refused.status_code == 401
        assert refused.json() == {"status": 401, "message": "Unauthorized"}
        assert session.get(url, headers={"api-secret": SECRET}, timeout=5).status_code == 401
        assert session.get(url, headers={"api-secret": "0" * 40}, timeout=5).status_code == 401
        assert session.get(url, headers={"API-SECRET": hashed}, timeout=5).status_code == 200
        assert session.get(url, params={"token": "reader-1234"}, timeout=5).status_code == 200
        assert session.get(url, params={"token": "reader-9999"}, timeout=5).status_code == 401


def test_token_alone_also_closes_the_site(session) -> None:
    with DemoServer(now=NOW, token="reader-1234") as srv:
        url = f"{srv.url}/api/v1/status.json"
        assert session.get(url, timeout=5).status_code == 401
        assert session.get(url, params={"token": "reader-1234"}, timeout=5).status_code == 200


def test_injected_faults_then_recovery(server, session) -> None:
    server.inject_faults("entries", 500, times=1)
    server.inject_faults(
        "treatments", 502, times=2, body="<html><body>502 Bad Gateway</body></html>"
    )
    url = f"{server.url}/api/v1"
    first = session.get(f"{url}/entries.json", timeout=5)
    assert first.status_code == 500 and first.json()["status"] == 500
    assert session.get(f"{url}/entries.json", timeout=5).status_code == 200
    for _ in range(2):
        gateway = session.get(f"{url}/treatments.json", timeout=5)
        assert gateway.status_code == 502
        assert gateway.headers["Content-Type"].startswith("text/html")
        assert gateway.text == "<html><body>502 Bad Gateway</body></html>"
        with pytest.raises(json.JSONDecodeError):
            json.loads(gateway.text)
    assert session.get(f"{url}/treatments.json", timeout=5).status_code == 200
    assert [path for path, _ in server.request_log].count("/api/v1/treatments.json") == 3


def test_unknown_paths_and_bad_queries(server, session) -> None:
    missing = session.get(f"{server.url}/api/v1/nothing.json", timeout=5)
    assert missing.status_code == 404 and missing.json()["status"] == 404
    bad = session.get(f"{server.url}/api/v1/entries.json?find[date][$gte]=yesterday", timeout=5)
    assert bad.status_code == 400 and "yesterday" in bad.json()["message"]


def test_slow_server_makes_clients_time_out(server, session) -> None:
    server.delay_seconds = 1.0
    with pytest.raises(requests.Timeout):
        session.get(f"{server.url}/api/v1/status.json", timeout=0.2)


def test_file_backed_site_windows_on_its_newest_record(tmp_path: Path, session) -> None:
    start = 1_546_300_800_000  # 2019-01-01, long before now
    entries = [
        {"_id": f"{i:024x}", "type": "sgv", "sgv": 100, "date": start + i * 3_600_000}
        for i in range(240)
    ]
    path = tmp_path / "old-site.json"
    path.write_text(json.dumps({"entries": entries}), encoding="utf-8")
    with DemoServer(file=path) as srv:
        url = f"{srv.url}/api/v1/entries.json"
        recent = session.get(url, params={"count": 1000}, timeout=5).json()
        assert len(recent) == 97
        assert recent[0]["subject_id"] == "old-site"
        ranged = session.get(url, params={"find[date][$gte]": start, "count": 1000}, timeout=5)
        assert len(ranged.json()) == 240


def test_a_personality_is_served_over_http(session) -> None:
    with DemoServer(now=NOW, uploader="loop") as loop:
        day = datetime(2024, 3, 9, tzinfo=UTC)
        low, high = round(day.timestamp() * 1000), round(day.timestamp() * 1000) + 3_600_000
        query = {"find[date][$gte]": str(low), "find[date][$lt]": str(high), "count": "1000"}
        entries = session.get(f"{loop.url}/api/v1/entries.json", params=query).json()
        assert len(entries) >= 20 and len({e["device"] for e in entries}) == 2
        assert any(e["date"] != int(e["date"]) for e in entries)
        profile = session.get(f"{loop.url}/api/v1/profile.json").json()
        assert profile[0]["store"]["Default"]["timezone"] == "ETC/GMT+7"
        statuses = session.get(f"{loop.url}/api/v1/devicestatus.json?count=3").json()
        assert statuses[0]["device"] == "loop://iPhone" and "loop" in statuses[0]
    with DemoServer(now=NOW, uploader="xdrip") as xdrip:
        assert session.get(f"{xdrip.url}/api/v1/profile.json").json() == []
    with pytest.raises(ValueError, match="unknown uploader"):
        DemoServer(uploader="medtronic")
