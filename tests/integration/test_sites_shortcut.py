"""CASCADE_NIGHTSCOUT_URL stays the one-site shortcut of `ingest_sites`: not stored, named
`default` (or CASCADE_SUBJECT_ID), incremental from what raw already holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cascade.demo.server import DemoServer
from cascade.ingest import ingest_sites
from cascade.lake.connection import connect
from cascade.settings import Settings
from cascade.sites import list_sites

NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)


def test_shortcut_site_is_ingested_incrementally_without_a_registry_row(
    local_settings: Settings,
) -> None:
    with DemoServer(now=NOW, uploader="trio") as server:
        settings = local_settings.model_copy(
            update={"nightscout_url": server.url, "start_date": "2024-03-10"}
        )
        first = ingest_sites(settings)
        assert [(s.name, s.subject_id, s.status) for s in first.sites] == [
            ("default", "default", "ok")
        ]
        server.set_now(NOW + timedelta(hours=1))
        server.request_log.clear()
        second = ingest_sites(settings)
        assert not second.failed
        lows = [int(p["find[date][$gte]"]) for path, p in server.request_log if "entries" in path]
        with connect(settings) as con:
            newest = con.execute("select max(date_ms) from raw.entries").fetchone()[0]
            subjects = con.execute("select distinct subject_id from raw.entries").fetchall()
    # from raw's newest reading minus the 3 h look-back, not from CASCADE_START_DATE again
    assert min(lows) >= round((NOW - timedelta(hours=3, minutes=10)).timestamp() * 1000)
    assert newest > round(NOW.timestamp() * 1000)
    assert subjects == [("default",)]
    assert list_sites(settings, include_removed=True) == []
