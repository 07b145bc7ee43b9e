"""Twenty demo people in one lake, on both profiles: one load, opaque ids, incremental refresh.

The demo server serves person-001 ... person-020 under their own paths and requires an API
secret; every site names the variable holding it, except person-020, whose variable holds a
wrong one. Its clock is fixed, so a refresh after `set_now(+1 h)` has exactly one new hour.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from cascade.demo.server import DemoServer
from cascade.ingest import ingest_sites
from cascade.lake.connection import connect
from cascade.lake.layout import unsorted_raw_tables
from cascade.settings import Settings
from cascade.sites import import_sites, list_sites, remove_site
from tests.integration.test_layout import out_of_order

NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
SITES = 20
SECRET = "many-sites-demo-secret"
SECRET_VAR, WRONG_VAR = "NS_DEMO_SECRET", "NS_WRONG_SECRET"
RAW = ("entries", "treatments", "devicestatus")
OPAQUE = re.compile(r"^s_[0-9a-f]{16}$")


def _settings(settings: Settings, **changes) -> Settings:
    return settings.model_copy(
        update={"start_date": NOW.date().isoformat(), "subject_key": None, **changes}
    )


def _register(settings: Settings, server: DemoServer, tmp_path: Path) -> None:
    lines = ["name,url,api_secret_env,token_env,timezone"]
    for index, (person, url) in enumerate(zip(server.people, server.site_urls, strict=True)):
        var = WRONG_VAR if index == SITES - 1 else SECRET_VAR
        lines.append(f"{person.slug},{url}/,{var},,{person.zone}")
    csv = tmp_path / "sites.csv"
    csv.write_text("\n".join(lines) + "\n")
    assert len(import_sites(settings, csv).added) == SITES
    assert len(import_sites(settings, csv).unchanged) == SITES  # idempotent


def _served(server: DemoServer, slug: str, collection: str, low_ms: int, high_ms: int) -> set:
    field = "date" if collection == "entries" else "created_at"
    to = (lambda ms: ms) if field == "date" else _iso
    params = {f"find[{field}][$gte]": to(low_ms), f"find[{field}][$lte]": to(high_ms)}
    response = requests.get(
        f"{server.url}/{slug}/api/v1/{collection}.json",
        params={**params, "count": 100_000},
        headers={"api-secret": hashlib.sha1(SECRET.encode()).hexdigest()},
        timeout=30,
    )
    return {r["_id"] for r in response.json()}


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _counts(settings: Settings) -> dict[tuple[str, str], tuple[int, int]]:
    with connect(settings) as con:
        return {
            (table, subject): (rows, keys)
            for table in RAW
            for subject, rows, keys in con.execute(
                f"select subject_id, count(*), count(distinct record_key) from raw.{table} "
                "group by all"
            ).fetchall()
        }


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASCADE_")}
    env["CASCADE_HOME"] = str(settings.home)
    if settings.profile == "scale":
        env |= {
            "CASCADE_CATALOG_URL": settings.catalog_url.get_secret_value(),
            "CASCADE_DATA_PATH": settings.data_path,
            "CASCADE_S3_ENDPOINT": settings.s3_endpoint,
            "CASCADE_S3_USE_SSL": "false",
            "CASCADE_S3_ACCESS_KEY_ID": settings.s3_access_key_id.get_secret_value(),
            "CASCADE_S3_SECRET_ACCESS_KEY": settings.s3_secret_access_key.get_secret_value(),
        }
    return env


def _scale_key(settings: Settings) -> Settings:
    # scale refuses to invent a key: many machines must agree on it
    key = "many-sites-subject-key" if settings.profile == "scale" else None
    return settings.model_copy(update={"subject_key": key and _secret(key)})


def _secret(value: str):
    from pydantic import SecretStr

    return SecretStr(value)


def test_twenty_sites_load_once_opaque_and_refresh_only_the_new_hour(
    lake_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _scale_key(_settings(lake_settings, lookback_hours=0.0))
    monkeypatch.setenv(SECRET_VAR, SECRET)
    monkeypatch.setenv(WRONG_VAR, "not-the-secret-at-all")
    with DemoServer(now=NOW, sites=SITES, api_secret=SECRET) as server:
        _register(settings, server, tmp_path)
        first = ingest_sites(settings)

        # one site with a wrong secret fails alone, with one clear line
        assert [s.name for s in first.failed] == ["person-020"]
        error = first.failed[0].error
        assert "person-020" in error and "401" in error and f"${WRONG_VAR}" in error
        assert "\n" not in error and SECRET not in error
        registry = {s.name: s for s in list_sites(settings)}
        assert registry["person-020"].last_status == "failed"
        assert registry["person-020"].marks["entries"] is None

        # every good site's rows are present once, and only under opaque ids
        counts = _counts(settings)
        start_ms = round(datetime.combine(NOW.date(), datetime.min.time(), UTC).timestamp() * 1000)
        now_ms = round(NOW.timestamp() * 1000)
        for person in server.people[:-1]:
            subject = registry[person.slug].subject_id
            for table in RAW:
                expected = len(_served(server, person.slug, table, start_ms, now_ms))
                assert counts[(table, subject)] == (expected, expected), (person.slug, table)
        subjects = {subject for _, subject in counts}
        assert subjects == {registry[p.slug].subject_id for p in server.people[:-1]}
        assert all(OPAQUE.match(s) for s in subjects)
        with connect(settings) as con:  # the sites' pages landed in time order
            assert unsorted_raw_tables(con, settings) == []
            files = out_of_order(con, "entries")
            assert files and all(rows > 0 and disordered == 0 for rows, disordered in files)
        names_and_urls = [p.slug for p in server.people] + server.site_urls + ["127.0.0.1"]
        assert not [s for s in subjects if any(n in s for n in names_and_urls)]
        # secrets are never stored, only the names of their variables
        assert registry["person-001"].api_secret_env == SECRET_VAR
        assert SECRET not in repr(list_sites(settings, include_removed=True))

        # the registry survives a new process (read through the `sites` command)
        listed = subprocess.run(
            [sys.executable, "-c", "from cascade.sites.commands import sites; sites()", "list"],
            env=_env(settings),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert listed.returncode == 0, listed.stderr
        assert len(listed.stdout.splitlines()) == SITES
        assert registry["person-007"].subject_id in listed.stdout

        # an hourly refresh asks each site for the new hour only
        server.set_now(NOW + timedelta(hours=1))
        server.request_log.clear()
        server.records_served.clear()
        refresh = ingest_sites(settings)
        served = dict(server.records_served)
        asked_paths = [path for path, _ in server.request_log]
        assert [s.name for s in refresh.failed] == ["person-020"]
        after = _counts(settings)
        for person in server.people[:-1]:
            subject = registry[person.slug].subject_id
            mark = registry[person.slug].marks["entries"]
            new_hour = _served(server, person.slug, "entries", mark + 1, now_ms + 3_600_000)
            asked = served[f"/{person.slug}/api/v1/entries.json"]
            # at most the record at the mark besides (the window starts at it; a fractional
            # `date` rounds up into the mark, and then it is not asked for again)
            assert len(new_hour) <= asked <= len(new_hour) + 2
            assert after[("entries", subject)][0] == counts[("entries", subject)][0] + len(new_hour)
            assert after[("entries", subject)][0] == after[("entries", subject)][1]
        for person in server.people[:-1]:
            # 3 collections x (one page + the request that finds nothing new) + profile
            assert sum(p.startswith(f"/{person.slug}/") for p in asked_paths) <= 7
        assert refresh.load.fetched < first.load.fetched / 5


def test_removed_site_stops_refreshing_keeps_data_unless_purged(
    lake_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _scale_key(_settings(lake_settings))  # default look-back: 3 h
    monkeypatch.setenv(SECRET_VAR, SECRET)
    monkeypatch.setenv(WRONG_VAR, SECRET)
    with DemoServer(now=NOW, sites=SITES, api_secret=SECRET) as server:
        _register(settings, server, tmp_path)
        assert not ingest_sites(settings).failed
        registry = {s.name: s for s in list_sites(settings)}
        kept, purged = registry["person-001"].subject_id, registry["person-002"].subject_id
        before = _counts(settings)

        remove_site(settings, "person-001")
        removal = remove_site(settings, "person-002", purge=True)
        assert removal.purged["raw.entries"] == before[("entries", purged)][0]
        assert {s.name for s in list_sites(settings, include_removed=True)} == {
            p.slug for p in server.people[2:]
        } | {"person-001"}

        server.set_now(NOW + timedelta(hours=1))
        server.request_log.clear()
        refresh = ingest_sites(settings)
        assert len(refresh.sites) == SITES - 2 and not refresh.failed
        asked = {path.split("/")[1] for path, _ in server.request_log}
        assert "person-001" not in asked and "person-002" not in asked
        # look-back: the refresh re-reads the 3 h before each mark for late uploads
        for name, site in registry.items():
            lows = [
                int(p["find[date][$gte]"])
                for path, p in server.request_log
                if path == f"/{name}/api/v1/entries.json"
            ]
            if name not in ("person-001", "person-002"):
                assert abs(min(lows) - (site.marks["entries"] - 3 * 3_600_000)) <= 1, name

        after = _counts(settings)
        assert after[("entries", kept)] == before[("entries", kept)]  # data kept, not refreshed
        assert not [key for key in after if key[1] == purged]
