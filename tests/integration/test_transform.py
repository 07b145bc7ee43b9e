"""dbt transforms on a real lake: where models land, bad input, windowed runs vs a full refresh."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from filelock import FileLock

from cascade.demo.generator import (
    devicestatus_for_day,
    entries_for_day,
    profile,
    treatments_for_day,
)
from cascade.demo.stamps import day_start_ms, iso_ms
from cascade.ingest import run_load
from cascade.lake.connection import connect
from cascade.settings import Settings
from cascade.sources.nightscout import FetchStats, nightscout_file
from cascade.transform import PROJECT_DIR, run_transform
from tests.support import PG_PASSWORD, S3_KEY_ID, S3_SECRET

DAY = date(2024, 3, 1)
# every model of the project, by layer (its folder), as the files on disk say
LAYERS = {
    layer: sorted(p.stem for p in (PROJECT_DIR / "models" / layer).glob("*.sql"))
    for layer in ("bronze", "silver", "gold")
}
MINUTE = 60_000


def demo_records(first: date, days: int, subject: str = "demo") -> dict[str, list[dict]]:
    """Nightscout records of the demo person for `days` days from `first`."""
    records = {"entries": [], "treatments": [], "devicestatus": [], "profile": profile()}
    for offset in range(days):
        day = first + timedelta(days=offset)
        records["entries"] += entries_for_day(day)
        records["treatments"] += treatments_for_day(day)
        records["devicestatus"] += devicestatus_for_day(day)
    for rows in records.values():
        for row in rows:
            row["subject_id"] = subject
    return records


def sgv(ms: int, value, key: str, offset: int = 0, subject: str = "messy") -> dict:
    return {
        "_id": key,
        "type": "sgv",
        "date": ms,
        "dateString": iso_ms(ms),
        "sgv": value,
        "device": "test-cgm",
        "utcOffset": offset,
        "subject_id": subject,
    }


def messy_entries(day: date) -> list[dict]:
    """A subject whose data has every problem the transforms must absorb, out of order.

    On `day`: readings every 5 minutes from 08:00 to 09:55 (24 slots, a low-wear day), with the
    values below at slots 2-9, one reading duplicated by a second uploader in the same second,
    utcOffset jumping 0 -> 600 -> -300, one reading dated in seconds instead of milliseconds,
    and one dated years after it was loaded (a device clock error: left out).
    """
    start = day_start_ms(day) + 8 * 60 * MINUTE
    odd = {2: "LOW", 3: "HIGH", 4: -5, 5: 0, 6: 1000, 7: "???", 8: None, 9: 39}
    records = []
    for slot in range(24):
        ms = start + slot * 5 * MINUTE
        value = odd.get(slot, 100 + slot)
        records.append(sgv(ms, value, f"m{slot:02d}", offset=(0, 600, -300)[slot % 3]))
    records.append(sgv(start + 10 * 5 * MINUTE + 400, 111, "m10-copy"))
    records.append(sgv(day_start_ms(date(2030, 1, 1)), 120, "m-future"))
    seconds = records[11] | {"date": records[11]["date"] // 1000}
    records[11] = seconds
    records.reverse()
    return records


def load(settings: Settings, records: dict[str, list[dict]]) -> None:
    stats = FetchStats()
    run_load(settings, nightscout_file(records, stats), stats)


def query(settings: Settings, sql: str) -> list[tuple]:
    with connect(settings, read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.mark.dbt_unit_tests
def test_models_land_in_lake_layers_and_bad_input_flows_through(lake_settings: Settings):
    records = demo_records(DAY, 2)
    records["entries"] += messy_entries(DAY)
    load(lake_settings, records)

    events = []
    result = run_transform(lake_settings, on_event=events.append)

    assert result.success and result.tests_failed == 0 and result.unit_tests_passed >= 5
    assert sorted(result.models) == sorted(m for models in LAYERS.values() for m in models)
    assert any(e.resource_type == "model" and e.status == "success" for e in events)
    tables = query(
        lake_settings,
        "select table_catalog, table_schema, table_name from information_schema.tables",
    )
    for layer, models in LAYERS.items():
        for model in models:
            assert ("ducklake", layer, model) in tables, f"{model} missing from ducklake.{layer}"
            assert not [t for t in tables if t[2] == model and t[0] != "ducklake"]
    schemas = {t[1] for t in tables if t[0] == "ducklake"}
    assert not {s for s in schemas if s.startswith("main")}, schemas
    manifest = json.loads((lake_settings.home / "dbt/target/manifest.json").read_text())
    for node in manifest["nodes"].values():
        if node["resource_type"] == "model":
            assert node["database"] == "ducklake" and node["schema"] in LAYERS, node["unique_id"]
    written = "".join(
        p.read_text(errors="ignore")
        for p in (lake_settings.home / "dbt").rglob("*")
        if p.is_file() and p.suffix in (".json", ".log", ".sql", ".txt")
    )
    for secret in (PG_PASSWORD, S3_KEY_ID, S3_SECRET):
        assert secret not in written

    assert_bad_input_treatment(lake_settings)


def assert_bad_input_treatment(settings: Settings) -> None:
    statuses = dict(
        query(
            settings,
            "select reading_status, count(*) from ducklake.bronze.stg_entries "
            "where subject_id = 'messy' group by all",
        )
    )
    assert statuses == {
        "valid": 17,
        "sensor_low": 1,
        "sensor_high": 1,
        "out_of_range": 3,
        "missing": 2,
    }
    facts = query(
        settings,
        "select glucose_mg_dl, is_sensor_limit, local_date, minutes_since_previous "
        "from ducklake.silver.fct_glucose_readings where subject_id = 'messy' "
        "order by reading_at",
    )
    values = [f[0] for f in facts]
    assert len(facts) == 19 and 39 in values and 401 in values
    assert all(20 <= v <= 600 for v in values)
    assert {f[2] for f in facts} == {DAY}, "utcOffset jumps must not move readings between days"
    assert all(f[3] is None or f[3] > 0 for f in facts), "readings out of order"
    assert sum(f[1] for f in facts) == 2

    quality = query(
        settings,
        "select present_readings, is_low_wear, duplicates_dropped, "
        "out_of_range_dropped, missing_values_dropped, sensor_low_readings, "
        "sensor_high_readings, longest_gap_min "
        "from ducklake.gold.mrt_quality_coverage where subject_id = 'messy'",
    )
    assert quality == [(19, True, 1, 3, 2, 1, 1, 845.0)]
    daily = query(
        settings,
        "select readings, is_low_wear, wear_pct, mean_mg_dl, pct_very_low "
        "from ducklake.gold.mrt_daily_glycaemia where subject_id = 'messy'",
    )
    assert len(daily) == 1
    readings, low_wear, wear, mean, very_low = daily[0]
    assert (readings, low_wear) == (19, True) and wear == pytest.approx(100 * 19 / 288, abs=1e-3)
    assert mean is not None and very_low == pytest.approx(100 * 2 / 19, abs=1e-3)
    summary = query(
        settings,
        "select period, meets_wear_target from ducklake.gold.mrt_period_summary "
        "where subject_id = 'messy'",
    )
    assert sorted(summary) == [
        ("all", False),
        ("last_14_days", False),
        ("last_30_days", False),
        ("last_90_days", False),
    ]


def _exact(row: tuple) -> tuple:
    """The row with floats to 9 decimals: a sum's last bits depend on DuckDB's thread order."""
    return tuple(round(v, 9) if isinstance(v, float) else v for v in row)


def snapshot(settings: Settings) -> dict[str, list[tuple]]:
    """Every model's rows, sorted, so two builds can be compared."""
    with connect(settings, read_only=True) as con:
        return {
            model: sorted(
                (
                    _exact(r)
                    for r in con.execute(f"select * from ducklake.{layer}.{model}").fetchall()
                ),
                key=repr,
            )
            for layer, models in LAYERS.items()
            for model in models
        }


def inserted_subjects(settings: Settings, since_snapshot: int) -> dict[str, set[str]]:
    """Per incremental model, the subjects of the rows written after `since_snapshot`."""
    found = {}
    with connect(settings, read_only=True) as con:
        models = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_catalog = 'ducklake' and table_schema in ('bronze', 'silver', 'gold')"
        ).fetchall()
        now = con.execute("select max(snapshot_id) from ducklake_snapshots('ducklake')").fetchone()
        for layer, model in models:
            if model not in INCREMENTAL:
                continue
            rows = con.execute(
                f"select distinct subject_id from ducklake_table_insertions('ducklake', "
                f"'{layer}', '{model}', {since_snapshot + 1}, {now[0]})"
            ).fetchall()
            found[model] = {subject for (subject,) in rows}
    return found


INCREMENTAL = {
    p.stem
    for layer in LAYERS
    for p in (PROJECT_DIR / "models" / layer).glob("*.sql")
    if "materialized='incremental'" in p.read_text()
}


def test_window_runs_equal_a_full_refresh(local_settings: Settings):
    records = demo_records(DAY, 3)
    records["entries"] += messy_entries(DAY + timedelta(days=1))
    load(local_settings, records)
    load(local_settings, demo_records(DAY, 2, subject="other"))

    # the later window first (it creates every table), so the earlier one must repair the
    # readings and marts that look back across the windows' boundary
    run_transform(local_settings, start=DAY + timedelta(days=2), end=DAY + timedelta(days=3))
    run_transform(local_settings, start=DAY, end=DAY + timedelta(days=2))
    # another subject's new day: a run for that subject alone rewrites its rows, no one else's
    load(local_settings, demo_records(DAY + timedelta(days=2), 1, subject="other"))
    before = query(local_settings, "select max(snapshot_id) from ducklake_snapshots('ducklake')")
    last = DAY + timedelta(days=2)
    run_transform(local_settings, start=last, end=last + timedelta(days=1), subjects=["other"])
    written = inserted_subjects(local_settings, before[0][0])
    assert written.keys() == INCREMENTAL and written["fct_glucose_readings"] == {"other"}
    assert all(subjects <= {"other"} for subjects in written.values()), written
    windowed = snapshot(local_settings)

    run_transform(local_settings, full_refresh=True)
    full = snapshot(local_settings)

    assert all(full[model] for model in ("fct_glucose_readings", "mrt_glucose_overview"))
    for model, rows in full.items():
        assert windowed[model] == rows, f"{model}: windowed runs differ from a full refresh"
    days = query(
        local_settings,
        "select subject_id, count(*) from ducklake.gold.mrt_daily_glycaemia group by all order by 1",
    )
    assert days == [("demo", 3), ("messy", 1), ("other", 3)]


def test_a_parse_is_skipped_when_nothing_it_reads_changed(monkeypatch):
    from cascade.transform import CascadeDbtCli, prepare_dbt_project

    commands, cli = [], CascadeDbtCli.cli

    def spy(self, args, *rest, **options):  # dbt runs as ever; its command lines are noted
        commands.append(args)
        return cli(self, args, *rest, **options)

    monkeypatch.setattr(CascadeDbtCli, "cli", spy)
    prepare_dbt_project()  # parses if the project changed since the last parse
    commands.clear()
    prepare_dbt_project()
    assert commands == []
    prepare_dbt_project(force=True)
    assert commands == [["parse", "--quiet"]]


def _parse(_: int) -> None:
    from cascade.transform import prepare_dbt_project

    prepare_dbt_project(force=True)


def test_concurrent_parses_never_show_a_half_written_manifest():
    """Two commands (or test workers) of one checkout parse at once while Dagster reads the
    manifest: the parses take turns and each manifest appears whole (os.replace)."""
    import multiprocessing
    import time

    manifest = PROJECT_DIR / "target" / "manifest.json"
    if not manifest.exists():
        _parse(0)
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pending = pool.map_async(_parse, range(2))
        reads = 0
        while not pending.ready():
            assert json.loads(manifest.read_text())["nodes"]
            reads += 1
            time.sleep(0.005)
        pending.get(timeout=300)
    assert reads > 0
    # each private folder removed; under the parse lock, so a parse of the other test worker,
    # whose folder lives exactly as long as it holds the lock, cannot be mistaken for a leftover
    with FileLock(PROJECT_DIR / "target" / "parse.lock"):
        assert not list((PROJECT_DIR / "target").glob("tmp*"))
