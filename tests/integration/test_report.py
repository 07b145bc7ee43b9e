"""`cascade report` on a 16-day demo lake: the page parses, shows the gold marts' numbers, and
fails with one clear line when there is nothing to report on."""

from __future__ import annotations

import base64
import math
import os
import struct
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from cascade.cli.report import report
from cascade.demo.server import DemoServer
from cascade.ingest import ingest_site
from cascade.lake.connection import connect
from cascade.report.clinical import Target
from cascade.report.data import (
    Day,
    ReportError,
    Span,
    choose_subject,
    covering_period,
    matching_period,
    resolve_window,
    summarise_days,
)
from cascade.report.units import MG_DL_PER_MMOL_L, Units
from cascade.settings import Settings
from cascade.sources.nightscout.helpers import Window
from cascade.transform import run_transform

FIRST = date(2024, 3, 1)
DAYS = 16
LAST = FIRST + timedelta(days=DAYS - 1)
BANDS = ("very_high", "high", "target", "low", "very_low")
VOID = {"meta", "img", "br", "hr", "link", "input"}


def utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """16 days of demo data through ingest_site and run_transform, shared by this module."""
    home = tmp_path_factory.mktemp("report") / ".cascade"
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("CASCADE_")]:
            patch.delenv(name)
        settings = Settings(home=home, _env_file=None)
        window = Window(utc(FIRST), utc(LAST + timedelta(days=1)))
        with DemoServer(now=utc(LAST + timedelta(days=2))) as server:
            ingest_site(settings, window, server.url, "demo")
        run_transform(settings)
    return settings


class Page(HTMLParser):
    """Elements with an id (attributes and text), image sources; checks tags are balanced."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[tuple[str, str | None]] = []
        self.ids: dict[str, dict] = {}
        self.sources: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "img":
            self.sources.append(attributes["src"])
        self.links += [v for k, v in attrs if k in ("href", "src") and v]
        if "id" in attributes:
            self.ids[attributes["id"]] = {**attributes, "text": ""}
        if tag not in VOID:
            self.open.append((tag, attributes.get("id")))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.open.pop()

    def handle_endtag(self, tag):
        assert self.open and self.open[-1][0] == tag, f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()

    def handle_data(self, data):
        for _, element in self.open:
            if element:
                self.ids[element]["text"] += data

    def text(self, element: str) -> str:
        return " ".join(self.ids[element]["text"].split())


def run_report(settings: Settings, out: Path, *args: str):
    result = CliRunner().invoke(
        report, ["--out", str(out), *args], env={"CASCADE_HOME": str(settings.home)}
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    html, png, pdf = (Path(line) for line in result.stdout.split())
    assert pdf.read_bytes()[:5] == b"%PDF-"
    return html, png


def parse(html: Path) -> Page:
    page = Page()
    page.feed(html.read_text(encoding="utf-8"))
    page.close()
    assert page.open == [], f"unclosed elements: {page.open}"
    return page


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def gold(settings: Settings, sql: str) -> dict:
    with connect(settings, read_only=True) as con:
        cursor = con.execute(sql)
        return dict(zip([c[0] for c in cursor.description], cursor.fetchone(), strict=True))


def test_report_shows_the_gold_numbers(lake: Settings, tmp_path: Path):
    html, png = run_report(lake, tmp_path / "reports")
    assert html.suffix == ".html" and png.suffix == ".png"
    assert png.stat().st_size > 20_000
    width, height = png_size(png.read_bytes())
    assert 800 <= width <= 2000 and 1200 <= height <= 6000

    page = parse(html)
    assert all(link.startswith("data:image/png;base64,") for link in page.links), page.links
    assert len(page.sources) == 4  # AGP, GRI, daily profiles, insulin and carbohydrates
    widths = [
        png_size(base64.b64decode(source.removeprefix("data:image/png;base64,")))[0]
        for source in page.sources
    ]
    assert widths.count(width) == 3 and min(widths) > width // 3  # the GRI is half a row

    row = gold(
        lake,
        "select * from gold.mrt_period_summary where subject_id = 'demo' and period = 'last_14_days'",
    )
    assert page.text("subject") == "demo"
    assert page.ids["first-day"]["data-value"] == str(row["first_day"])
    assert page.ids["last-day"]["data-value"] == str(LAST)
    assert page.text("stat-days") == "14"
    assert page.text("stat-mean") == f"{row['mean_mg_dl']:.0f}"
    assert page.text("stat-sd") == f"{row['sd_mg_dl']:.0f}"
    assert page.text("stat-readings") == f"{row['readings']:,}"
    for element, column in [("gmi", "gmi_pct"), ("cv", "cv_pct"), ("wear", "wear_pct")]:
        assert page.text(f"stat-{element}") == f"{row[column]:.1f}"
        assert float(page.ids[f"stat-{element}"]["data-value"]) == row[column]
    for band in BANDS:
        element = f"band-{band.replace('_', '-')}"
        assert page.text(element) == f"{row[f'pct_{band}']:.1f}", band
        assert float(page.ids[element]["data-value"]) == row[f"pct_{band}"]
    for target in ("tir", "below_70", "below_54", "above_180", "above_250", "cv", "wear"):
        shown = page.ids[f"target-{target.replace('_', '-')}"]["data-met"]
        assert shown == str(row[f"meets_{target}_target"]).lower(), target
    assert page.ids["agp-source"]["data-period"] == "last_14_days"

    day = gold(
        lake,
        "select avg(carbs_g) as carbs from gold.mrt_daily_glycaemia "
        f"where subject_id = 'demo' and local_date >= date '{row['first_day']}'",
    )
    insulin = gold(
        lake,
        "select avg(total_u) as total from gold.mrt_daily_insulin "
        f"where subject_id = 'demo' and local_date >= date '{row['first_day']}'",
    )
    assert page.text("stat-insulin-total") == f"{insulin['total']:.1f}"
    assert page.text("stat-carbs") == f"{day['carbs']:.0f}"


def test_other_window_is_pooled_from_daily_rows_and_labelled(lake: Settings, tmp_path: Path):
    html, _ = run_report(
        lake, tmp_path, "--start", "2024-03-05", "--end", "2024-03-12", "--units", "mmol/L"
    )
    page = parse(html)
    # an independent check: the same metrics straight from the readings
    row = gold(
        lake,
        "select count(*) as n, avg(g) as mean, stddev_samp(g) as sd, "
        "100.0 * count(*) filter (where g < 54) / count(*) as very_low, "
        "100.0 * count(*) filter (where g >= 70 and g <= 180) / count(*) as target, "
        "100.0 * count(*) filter (where g > 250) / count(*) as very_high "
        "from (select glucose_mg_dl as g from silver.fct_glucose_readings "
        "where local_date between date '2024-03-05' and date '2024-03-11')",
    )
    assert page.text("stat-days") == "7"
    assert page.text("stat-readings") == f"{row['n']:,}"
    assert math.isclose(float(page.ids["stat-mean"]["data-value"]), row["mean"], abs_tol=1e-3)
    assert page.text("stat-mean") == f"{row['mean'] / MG_DL_PER_MMOL_L:.1f}"
    assert math.isclose(float(page.ids["stat-sd"]["data-value"]), row["sd"], abs_tol=1e-3)
    for band in ("very_low", "target", "very_high"):
        value = float(page.ids[f"band-{band.replace('_', '-')}"]["data-value"])
        assert math.isclose(value, row[band], abs_tol=1e-3), band
    assert page.ids["agp-source"]["data-period"] == "last_14_days"
    assert "shortest stored period covering the window" in page.text("agp-source")
    assert "3.9–10.0 mmol/L" in html.read_text(encoding="utf-8")


def test_unknown_subject_is_one_clear_line(lake: Settings, tmp_path: Path):
    result = CliRunner().invoke(
        report,
        ["--subject", "nobody", "--out", str(tmp_path)],
        env={"CASCADE_HOME": str(lake.home)},
    )
    assert result.exit_code == 1
    assert "unknown subject 'nobody'; subjects in the lake: demo" in result.output
    assert "Traceback" not in result.output


def test_no_lake_fails_cleanly(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASCADE_")}
    done = subprocess.run(
        [sys.executable, "-m", "cascade.cli", "report", "--out", str(tmp_path / "out")],
        env={**env, "CASCADE_HOME": str(tmp_path / "nowhere")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "no lake at" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "out").exists()


def test_lake_without_gold_marts_fails_cleanly(local_settings: Settings, tmp_path: Path):
    with connect(local_settings):
        pass  # creates the catalog and empty schemas
    result = CliRunner().invoke(
        report, ["--out", str(tmp_path)], env={"CASCADE_HOME": str(local_settings.home)}
    )
    assert result.exit_code == 1
    assert "gold marts are missing" in result.output and "cascade transform" in result.output


def test_subject_choice():
    assert choose_subject(["a"], None) == "a"
    assert choose_subject(["a", "b"], "b") == "b"
    with pytest.raises(ReportError, match=r"several subjects \(a, b\).*--subject"):
        choose_subject(["a", "b"], None)
    with pytest.raises(ReportError, match="no data"):
        choose_subject([], None)


def test_windows_and_periods():
    data = Span(date(2024, 1, 1), date(2024, 3, 31))
    assert resolve_window(data.last, None, None, None) == Span(date(2024, 3, 18), data.last)
    assert resolve_window(data.last, 30, None, None).days == 30
    assert resolve_window(data.last, None, date(2024, 2, 1), date(2024, 2, 8)) == Span(
        date(2024, 2, 1), date(2024, 2, 7)
    )
    with pytest.raises(ReportError, match="not before"):
        resolve_window(data.last, None, date(2024, 2, 8), date(2024, 2, 8))
    assert matching_period(Span(date(2024, 3, 18), data.last), data) == "last_14_days"
    assert matching_period(data, data) == "all"
    assert matching_period(Span(date(2024, 2, 1), date(2024, 2, 7)), data) is None
    assert covering_period(Span(date(2024, 3, 20), date(2024, 3, 25)), data) == "last_14_days"
    assert covering_period(Span(date(2024, 2, 1), date(2024, 2, 7)), data) == "last_90_days"
    assert covering_period(Span(date(2024, 1, 1), date(2024, 2, 7)), data) == "all"


def test_pooled_days_equal_the_metrics_of_all_readings():
    import numpy as np

    rng = np.random.default_rng(7)
    readings = [rng.normal(150, 60, size=n).clip(39, 401).round() for n in (288, 250, 3, 1)]

    def day(i: int, g: np.ndarray) -> Day:
        share = {
            "very_low": g < 54,
            "low": (g >= 54) & (g < 70),
            "target": (g >= 70) & (g <= 180),
            "high": (g > 180) & (g <= 250),
            "very_high": g > 250,
        }
        return Day(
            local_date=date(2024, 1, 1 + i),
            readings=len(g),
            wear_pct=100.0,
            mean_mg_dl=round(g.mean(), 4),
            sd_mg_dl=round(g.std(ddof=1), 4) if len(g) > 1 else None,
            min_mg_dl=g.min(),
            max_mg_dl=g.max(),
            bands={k: round(100 * v.mean(), 4) for k, v in share.items()},
            bolus_insulin_u=0.0,
            carbs_g=0.0,
        )

    wear = Target("wear", "wear_pct", ">=", 70.0, 14)
    summary = summarise_days(
        [day(i, g) for i, g in enumerate(readings)], wear_pct=90.0, consensus={"wear": wear}
    )
    every = np.concatenate(readings)
    assert summary.readings == len(every) and summary.days == 4
    assert math.isclose(summary.mean_mg_dl, every.mean(), abs_tol=1e-3)
    assert math.isclose(summary.sd_mg_dl, every.std(ddof=1), abs_tol=1e-3)
    assert math.isclose(
        summary.bands["target"], 100 * ((every >= 70) & (every <= 180)).mean(), abs_tol=1e-3
    )
    assert math.isclose(summary.pct_below_70, 100 * (every < 70).mean(), abs_tol=1e-3)
    assert summary.meets["wear_target"] is False  # 4 days
    assert Units("mmol/L").glucose(summary.mean_mg_dl) == f"{every.mean() / 18.0182:.1f}"
