"""The AGP v5 sections of `cascade report` on a Loop user's lake (basal and bolus insulin, a
profile zone, a last day still in progress): every number on the page equals the marts'."""

from __future__ import annotations

import math
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from cascade.demo.server import DemoServer
from cascade.ingest import ingest_site
from cascade.lake.connection import connect
from cascade.report.build import write_report
from cascade.report.clinical import columns, gri, read_consensus, smooth_agp, sufficiency
from cascade.settings import Settings
from cascade.sources.nightscout.helpers import Window
from cascade.transform import run_transform

from .test_report import parse, png_size

FIRST = date(2024, 3, 1)
DAYS = 30


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """30 days and 14 hours of Loop uploads (UTC-7 profile): the last local day ends at 07:00."""
    home = tmp_path_factory.mktemp("report_agp") / ".cascade"
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("CASCADE_")]:
            patch.delenv(name)
        settings = Settings(home=home, _env_file=None)
        start = datetime(FIRST.year, FIRST.month, FIRST.day, tzinfo=UTC)
        end = start + timedelta(days=DAYS, hours=14)
        with DemoServer(now=end + timedelta(days=1), uploader="loop") as server:
            ingest_site(settings, Window(start, end), server.url, "demo")
        run_transform(settings)
    return settings


@pytest.fixture(scope="module")
def report(lake: Settings, tmp_path_factory: pytest.TempPathFactory):
    files = write_report(lake, tmp_path_factory.mktemp("out"))
    return files, parse(files.html)


def sql(settings: Settings, query: str, params: list | None = None) -> list[tuple]:
    with connect(settings, read_only=True) as con:
        return con.execute(query, params or []).fetchall()


def value(page, element: str) -> float:
    return float(page.ids[element]["data-value"])


def test_files_html_png_and_pdf_of_one_page(report):
    files, page = report
    pdf = files.pdf.read_bytes()
    assert pdf[:5] == b"%PDF-" and b"/Count 1" in pdf  # one page, the PNG's layout
    width, height = png_size(files.png.read_bytes())
    assert width > 900 and height > 2000
    for section in ("chart-agp", "chart-gri", "chart-daily", "chart-treatments"):
        assert section in page.ids, section
    text = files.html.read_text(encoding="utf-8")
    assert "gold.mrt_" not in text and "silver." not in text  # plain labels, no table names


def test_partial_last_day_is_marked_and_left_out_of_daily_means(report, lake):
    files, page = report
    data = files.data
    last = data.days[-1]
    assert last.partial and last.partial.startswith("until ")
    assert all(d.partial is None for d in data.days[:-1])
    (total, basal, bolus, n) = sql(
        lake,
        "select avg(total_u), avg(basal_u), avg(bolus_u), count(*) from gold.mrt_daily_insulin "
        "where subject_id = 'demo' and local_date between ? and ?",
        [data.summary.first_day, last.local_date - timedelta(days=1)],
    )[0]
    assert n == 13 and data.insulin.days == 13
    assert math.isclose(value(page, "stat-insulin-total"), total, abs_tol=1e-9)
    assert page.text("stat-insulin-total") == f"{total:.1f}"
    assert math.isclose(value(page, "stat-insulin-basal"), basal, abs_tol=1e-9)
    assert math.isclose(value(page, "stat-insulin-bolus"), bolus, abs_tol=1e-9)
    assert math.isclose(value(page, "stat-basal-pct"), 100 * basal / total, abs_tol=1e-9)
    assert basal > 0 and bolus > 0 and math.isclose(basal + bolus, total, abs_tol=1e-3)


def test_gri_equals_the_period_summary(report, lake):
    _, page = report
    stored, very_low, low, high, very_high = sql(
        lake,
        "select gri, pct_very_low, pct_low, pct_high, pct_very_high from gold.mrt_period_summary "
        "where subject_id = 'demo' and period = 'last_14_days'",
    )[0]
    assert value(page, "gri-value") == stored
    assert math.isclose(value(page, "gri-hypo"), very_low + 0.8 * low, abs_tol=1e-3)
    assert math.isclose(value(page, "gri-hyper"), very_high + 0.5 * high, abs_tol=1e-3)
    assert math.isclose(
        stored, min(100, 3 * value(page, "gri-hypo") + 1.6 * value(page, "gri-hyper")), abs_tol=0.01
    )
    assert page.text("gri-zone") == "ABCDE"[min(4, int(stored // 20))]


def test_period_comparison_equals_the_daily_rows(report, lake):
    files, page = report
    first = files.data.summary.first_day
    before = (first - timedelta(days=14), first - timedelta(days=1))
    assert page.ids["cmp-before"]["data-first"] == str(before[0])
    for (low, high), column in (
        (before, "before"),
        ((first, files.data.days[-1].local_date), "now"),
    ):
        mean, tir, below, above, n = sql(
            lake,
            "select sum(mean_mg_dl * readings) / sum(readings), "
            "sum(pct_target * readings) / sum(readings), "
            "sum(pct_below_70 * readings) / sum(readings), "
            "sum(pct_above_180 * readings) / sum(readings), sum(readings) "
            "from gold.mrt_daily_glycaemia where subject_id = 'demo' and local_date between ? and ?",
            [low, high],
        )[0]
        cells = {key: page.ids[f"cmp-{key}"] for key in ("mean", "tir", "below-70", "above-180")}
        shown = {key: _cell(files.html, key, column) for key in cells}
        assert math.isclose(shown["mean"], mean, abs_tol=1e-3), column
        assert math.isclose(shown["tir"], tir, abs_tol=1e-3), column
        assert math.isclose(shown["below-70"], below, abs_tol=1e-3), column
        assert math.isclose(shown["above-180"], above, abs_tol=1e-3), column
        assert math.isclose(
            _cell(files.html, "gmi", column), 3.31 + 0.02392 * mean, abs_tol=1e-3
        ), column
    c = files.data.comparison
    partial = files.data.days[-1].local_date
    present, expected = sql(
        lake,
        "select sum(present_readings), sum(expected_readings) from gold.mrt_quality_coverage "
        "where subject_id = 'demo' and local_date between ? and ? and local_date <> ?",
        [first, partial, partial],
    )[0]
    assert math.isclose(c.current.wear_pct, 100 * present / expected, abs_tol=1e-3)
    change = c.current.bands["target"] - c.previous.bands["target"]
    row = files.html.read_text(encoding="utf-8").split('id="cmp-tir"')[1].split("</tr>")[0]
    assert f"{change:+.1f} pts" in row and ("▲" if change > 0 else "▼") in row


def _cell(html: Path, key: str, column: str) -> float:
    """The data-value of the 'before' (1st) or 'now' (2nd) cell of a comparison row."""
    row = html.read_text(encoding="utf-8").split(f'id="cmp-{key}"')[1].split("</tr>")[0]
    values = [part.split('"')[0] for part in row.split('data-value="')[1:]]
    return float(values[0 if column == "before" else 1])


def test_agp_is_smoothed_from_the_mart(report, lake):
    files, _ = report
    rows = sql(
        lake,
        "select tod_bin, p05_mg_dl, p50_mg_dl, p95_mg_dl from gold.mrt_agp "
        "where subject_id = 'demo' and period = 'last_14_days' order by tod_bin",
    )
    assert len(rows) == 96
    smoothed = files.data.agp.smoothed
    for column, name in ((1, "p05"), (2, "p50"), (3, "p95")):
        raw = [r[column] for r in rows]
        expected = [sum(raw[(i + k) % 96] for k in range(-2, 3)) / 5 for i in range(96)]
        assert np.allclose(smoothed[name], expected), name
        assert np.allclose(files.data.agp.percentiles[name], raw), name
    raw_jump = abs(rows[0][3] - rows[95][3])
    assert abs(smoothed["p95"][0] - smoothed["p95"][95]) <= raw_jump


def test_daily_traces_hold_each_days_readings(report, lake):
    files, page = report
    counts = dict(
        sql(
            lake,
            "select local_date, readings from gold.mrt_daily_glycaemia "
            "where subject_id = 'demo' and local_date >= ?",
            [files.data.summary.first_day],
        )
    )
    assert set(files.data.traces) == set(counts)
    for day, trace in files.data.traces.items():
        assert len(trace.glucose) == counts[day], day
        assert trace.hours.min() >= 0 and trace.hours.max() < 24


def test_episodes_shown_from_the_mart_or_not_available(report, lake):
    files, page = report
    with connect(lake, read_only=True) as con:
        present = "episode_type" in columns(con, "gold", "mrt_period_episodes")
    if not present:
        assert page.ids["episodes"]["data-available"] == "false"
        assert "Not available" in page.text("episodes")
        return
    rows = sql(
        lake,
        "select episode_type, level, episodes from gold.mrt_period_episodes "
        "where subject_id = 'demo' and period = 'last_14_days'",
    )
    shown = {(r.type, r.level): r.episodes for r in files.data.episodes.rows}
    for kind, level, count in rows:
        if (kind, level) in shown:
            assert shown[(kind, level)] == count, (kind, level)
            assert _episodes_cell(files.html, kind, level) == str(count)


def _episodes_cell(html: Path, kind: str, level: str) -> str:
    row = (
        html.read_text(encoding="utf-8").split(f'id="episode-{kind}-{level}"')[1].split("</tr>")[0]
    )
    return row.split('data-value="')[1].split('"')[0]


def test_short_window_is_provisional(lake: Settings, tmp_path: Path):
    files = write_report(lake, tmp_path, days=7)
    page = parse(files.html)
    assert files.data.provisional
    assert page.ids["stat-gmi"]["data-provisional"] == "true"
    assert page.ids["sufficiency"]["data-sufficient"] == "false"
    assert "7 days of data" in page.text("sufficiency")


def test_default_window_follows_the_marts_sufficiency(report, lake):
    """13 full days and a partial one: provisional exactly when the period summary says so."""
    _, page = report
    with connect(lake, read_only=True) as con:
        have = columns(con, "gold", "mrt_period_summary")
    flag = "is_sufficient" if "is_sufficient" in have else "meets_wear_target"
    (sufficient,) = sql(
        lake,
        f"select {flag} from gold.mrt_period_summary "
        "where subject_id = 'demo' and period = 'last_14_days'",
    )[0]
    assert page.ids["sufficiency"]["data-sufficient"] == str(sufficient).lower()
    assert page.ids["stat-gmi"]["data-provisional"] == str(not sufficient).lower()


def test_smoothing_wraps_midnight_and_keeps_empty_bins():
    values = np.full(96, 100.0)
    values[0] = 600.0
    values[50] = np.nan
    smoothed = smooth_agp(values)
    assert smoothed[95] == smoothed[94] == smoothed[1] == smoothed[2] == 200.0
    assert smoothed[0] == 200.0 and smoothed[3] == 100.0
    assert np.isnan(smoothed[50]) and smoothed[49] == 100.0


def test_gri_components_and_sufficiency_rule(lake: Settings):
    with connect(lake, read_only=True) as con:
        consensus = read_consensus(con)
    wear = consensus["wear"]
    assert (wear.min_days, wear.threshold, wear.goal) == (14, 70.0, "≥70%")
    assert [(t.key, t.goal) for t in consensus.values() if t.key != "wear"] == [
        ("tir", ">70%"),
        ("below_70", "<4%"),
        ("below_54", "<1%"),
        ("above_180", "<25%"),
        ("above_250", "<5%"),
        ("cv", "≤36%"),
    ]
    bands = {"very_low": 1.0, "low": 5.0, "target": 70.0, "high": 16.0, "very_high": 8.0}
    g = gri(bands)
    assert (g.hypo, g.hyper) == (5.0, 16.0)
    assert g.value == pytest.approx(3 * 1 + 2.4 * 5 + 1.6 * 8 + 0.8 * 16) and g.zone == "C"
    assert gri({**bands, "very_low": 40.0}).value == 100.0
    assert sufficiency(None, 14, 70.0, wear).sufficient
    assert not sufficiency(None, 13, 99.0, wear).sufficient
    assert not sufficiency(
        {"meets_min_wear": False, "days_with_data": 20}, 20, 90.0, wear
    ).sufficient
