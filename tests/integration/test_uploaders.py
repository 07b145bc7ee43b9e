"""Real uploaders' shapes end to end: Loop, Trio, AndroidAPS and xDrip through HTTP, dlt and dbt.

Each personality of the demo server is ingested as its own subject into one lake, then the
lake is transformed once. The numbers a clinician reads are checked against an independent
plain-Python calculation from the generator's records (one reading per 30 s, local days in the
profile's zone, or the uploader's utcOffset where there is no profile), and daily insulin
against the insulin the generator's pump model actually delivered (within 1 %).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cascade.demo.generator import entries_for_day
from cascade.demo.personalities import profile_zone, utc_offset_minutes
from cascade.demo.server import DemoServer
from cascade.demo.truth import delivered_insulin
from cascade.ingest import ingest_site
from cascade.lake.connection import connect
from cascade.sources.nightscout.helpers import Window
from cascade.transform import run_transform

UPLOADERS = ("loop", "trio", "aaps", "xdrip")
FIRST = date(2024, 3, 29)  # AndroidAPS's Berlin switches to summer time on 31 March
DAYS = 4
SEED = "demo"
MERGE_MS = 30_000


def _window() -> Window:
    start = datetime(FIRST.year, FIRST.month, FIRST.day, tzinfo=UTC)
    return Window(start, start + timedelta(days=DAYS))


def _local(ms: float, uploader: str) -> datetime:
    zone = profile_zone(uploader)
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    if zone is not None:
        return moment.astimezone(ZoneInfo(zone))
    return (moment + timedelta(minutes=utc_offset_minutes(uploader, ms))).replace(tzinfo=None)


def _full_local_days(uploader: str) -> list[date]:
    """Local days that lie wholly inside the ingested UTC window."""
    window = _window()
    days = []
    for offset in range(-1, DAYS + 1):
        day = FIRST + timedelta(days=offset)
        zone = profile_zone(uploader)
        tz = ZoneInfo(zone) if zone else UTC
        start = datetime(day.year, day.month, day.day, tzinfo=tz)
        end = start + timedelta(days=1)
        if zone is None:
            shift = timedelta(minutes=utc_offset_minutes(uploader))
            start, end = start - shift, end - shift
        else:
            end = datetime(end.year, end.month, end.day, tzinfo=tz)
        if window.start <= start and end <= window.end:
            days.append(day)
    return days


def expected_daily_readings(uploader: str) -> dict[date, list[int]]:
    """Glucose per local day after the 30 s rule (the earliest of each measurement)."""
    records = [
        r
        for offset in range(DAYS)
        for r in entries_for_day(FIRST + timedelta(days=offset), SEED, uploader)
    ]
    readings = sorted(
        (round(r["date"]), r["sgv"])
        for r in records
        if r.get("type", "sgv") == "sgv" and r.get("sgv")
    )
    kept, previous = [], None
    for ms, value in readings:
        if previous is None or ms - previous >= MERGE_MS:
            kept.append((ms, value))
        previous = ms
    by_day = defaultdict(list)
    for ms, value in kept:
        by_day[_local(ms, uploader).date()].append(value)
    return by_day


def expected_daily_insulin(uploader: str) -> dict[date, dict[str, float]]:
    window = _window()
    totals: dict[date, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for delivery in delivered_insulin(SEED, uploader, window.start_ms, window.end_ms):
        totals[_local(delivery.start_ms, uploader).date()][delivery.kind] += delivery.units
    return totals


@pytest.fixture
def uploader_lake(lake_settings):
    """One lake holding the four personalities, each as its own subject, transformed once."""
    now = datetime.combine(FIRST + timedelta(days=DAYS + 1), datetime.min.time(), UTC)
    for uploader in UPLOADERS:
        with DemoServer(now=now, seed=SEED, uploader=uploader) as server:
            ingest_site(lake_settings, _window(), server.url, uploader)
    run_transform(lake_settings)
    return lake_settings


def test_uploaders_metrics_insulin_and_local_days(uploader_lake):
    with connect(uploader_lake, read_only=True) as con:
        daily = {
            (row[0], row[1]): row[2:]
            for row in con.execute(
                "select subject_id, local_date, readings, mean_mg_dl, sd_mg_dl, pct_target, "
                "pct_below_70, pct_above_180 from ducklake.gold.mrt_daily_glycaemia"
            ).fetchall()
        }
        insulin = {
            (row[0], row[1]): row[2:]
            for row in con.execute(
                "select subject_id, local_date, basal_u, bolus_u, automatic_bolus_u, total_u "
                "from ducklake.gold.mrt_daily_insulin"
            ).fetchall()
        }
        loop = {
            (row[0], row[1]): row[2]
            for row in con.execute(
                "select subject_id, local_date, loop_active_pct from ducklake.gold.mrt_daily_loop"
            ).fetchall()
        }
        duplicates = dict(
            con.execute(
                "select subject_id, sum(duplicates_dropped) from ducklake.gold.mrt_quality_coverage "
                "group by all"
            ).fetchall()
        )

    for uploader in UPLOADERS:
        readings = expected_daily_readings(uploader)
        truth = expected_daily_insulin(uploader)
        days = _full_local_days(uploader)
        assert len(days) >= DAYS - 1, uploader
        for day in days:
            values = readings[day]
            count, mean, sd, tir, below, above = daily[(uploader, day)]
            assert count == len(values), f"{uploader} {day} readings"
            assert mean == pytest.approx(statistics.mean(values), abs=0.01)
            assert sd == pytest.approx(statistics.stdev(values), abs=0.01)
            assert tir == pytest.approx(
                100 * sum(70 <= v <= 180 for v in values) / len(values), abs=0.01
            )
            assert below == pytest.approx(100 * sum(v < 70 for v in values) / len(values), abs=0.01)
            assert above == pytest.approx(
                100 * sum(v > 180 for v in values) / len(values), abs=0.01
            )

            basal, bolus, automatic, total = insulin[(uploader, day)]
            known = truth[day]
            expected_bolus = known["bolus"] + known["automatic_bolus"]
            assert basal == pytest.approx(known["basal"], rel=0.01, abs=0.01), (
                f"{uploader} {day} basal"
            )
            assert bolus == pytest.approx(expected_bolus, rel=0.01, abs=0.01), (
                f"{uploader} {day} bolus"
            )
            assert automatic == pytest.approx(known["automatic_bolus"], rel=0.01, abs=0.01)
            assert total == pytest.approx(known["basal"] + expected_bolus, rel=0.01)

    # Loop uploads every reading twice: the copies are merged and counted, never worn twice
    assert duplicates["loop"] > 250 * (DAYS - 1) and duplicates["xdrip"] == 0
    assert {name for name, _ in loop} == {"loop", "trio", "aaps"}  # xDrip runs no algorithm
    for name in ("loop", "trio", "aaps"):
        assert all(loop[(name, day)] > 90 for day in _full_local_days(name)), name
