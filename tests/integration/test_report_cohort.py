"""`cascade report --cohort` on a lake of three demo people: the page ranks them as
gold.mrt_cohort_triage does, shows its numbers, and links every row to an AGP report that
exists (written by the AGP report builder into the same folder)."""

from __future__ import annotations

import os
from datetime import date, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from cascade.cli.report import report
from cascade.demo.generator import (
    devicestatus_for_day,
    entries_for_day,
    profile,
    treatments_for_day,
)
from cascade.ingest import run_load
from cascade.lake.connection import connect
from cascade.report.build import subject_slug
from cascade.report.cohort import metrics
from cascade.report.units import Units, pct
from cascade.settings import Settings
from cascade.sources.nightscout import FetchStats, nightscout_file
from cascade.transform import run_transform

FIRST = date(2024, 3, 1)
# subject: (first day, days, factor on every sensor glucose value)
PEOPLE = {
    "p-3f9a1c": (FIRST, 28, 1.0),
    "p-7b2e44": (FIRST, 28, 0.72),  # runs low: time below 54 over its target, ranked first
    "p-c01d9e": (FIRST + timedelta(days=15), 10, 1.25),  # new, runs high: no fortnight before
}
METRICS = [m.column for m in metrics(Units())]
FLAGS = [
    "flag_tir_low",
    "flag_below_70",
    "flag_below_54",
    "flag_above_180",
    "flag_above_250",
    "flag_cv_high",
    "flag_low_wear",
]


def records(subject: str, first: date, days: int, factor: float) -> dict[str, list[dict]]:
    """Nightscout records of one demo person (its own seed), glucose scaled by `factor`."""
    out = {"entries": [], "treatments": [], "devicestatus": [], "profile": profile(subject)}
    for offset in range(days):
        day = first + timedelta(days=offset)
        out["entries"] += entries_for_day(day, subject)
        out["treatments"] += treatments_for_day(day, subject)
        out["devicestatus"] += devicestatus_for_day(day, subject)
    for entry in out["entries"]:
        if isinstance(entry.get("sgv"), int | float):
            entry["sgv"] = max(40, min(400, round(entry["sgv"] * factor)))
    for rows in out.values():
        for row in rows:
            row["subject_id"] = subject
    return out


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Three demo people loaded from files and transformed, shared by this module."""
    home = tmp_path_factory.mktemp("cohort") / ".cascade"
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("CASCADE_")]:
            patch.delenv(name)
        settings = Settings(home=home, _env_file=None)
        merged: dict[str, list[dict]] = {}
        for subject, (first, days, factor) in PEOPLE.items():
            for collection, rows in records(subject, first, days, factor).items():
                merged.setdefault(collection, []).extend(rows)
        stats = FetchStats()
        run_load(settings, nightscout_file(merged, stats), stats)
        run_transform(settings)
    return settings


def mart(settings: Settings) -> list[dict]:
    with connect(settings, read_only=True) as con:
        cursor = con.execute("select * from gold.mrt_cohort_triage order by risk_rank")
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


class CohortPage(HTMLParser):
    """The subject rows: attributes, metric cells, flag badges, links; tags balanced."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.rows: list[dict] = []
        self.cell: dict | None = None
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag not in self.VOID:
            self.open.append(tag)
        if tag == "tr" and "data-subject" in a:
            self.rows.append({**a, "cells": {}, "flags": [], "links": []})
        if tag == "td" and "data-metric" in a:
            self.cell = {**a, "text": ""}
            self.rows[-1]["cells"][a["data-metric"]] = self.cell
        if tag == "span" and "data-flag" in a:
            self.rows[-1]["flags"].append(a["data-flag"])
        if tag == "a":
            self.links.append(a["href"])
            if self.rows:
                self.rows[-1]["links"].append(a["href"])

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()
        if tag == "td":
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell["text"] += data


def parse(html: Path) -> CohortPage:
    page = CohortPage()
    page.feed(html.read_text(encoding="utf-8"))
    page.close()
    assert page.open == [], f"unclosed elements: {page.open}"
    return page


def run_cohort(settings: Settings, out: Path, *args: str) -> Path:
    result = CliRunner().invoke(
        report,
        ["--cohort", "--out", str(out), *args],
        env={"CASCADE_HOME": str(settings.home)},
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    (line,) = result.stdout.split()
    return Path(line)


def number(text: str) -> float | None:
    return None if text == "" else float(text)


def test_cohort_page_ranks_everyone_with_the_marts_numbers(lake: Settings, tmp_path: Path):
    rows = mart(lake)
    assert sorted(r["subject_id"] for r in rows) == sorted(PEOPLE)
    assert rows[0]["subject_id"] == "p-7b2e44" and rows[0]["flag_below_54"]
    new = next(r for r in rows if r["subject_id"] == "p-c01d9e")
    assert new["previous_pct_target"] is None and new["change_pct_target"] is None

    out = tmp_path / "reports"
    html = run_cohort(lake, out)
    assert (
        html.parent == out.absolute()
        and html.name == f"cohort_{max(r['period_last_day'] for r in rows)}.html"
    )
    page = parse(html)

    # every subject once, in risk order
    assert [r["data-subject"] for r in page.rows] == [r["subject_id"] for r in rows]
    assert [int(r["data-rank"]) for r in page.rows] == [r["risk_rank"] for r in rows]
    for shown, row in zip(page.rows, rows, strict=True):
        assert int(shown["data-flags"]) == row["flags"]
        assert sorted(shown["flags"]) == sorted(f for f in FLAGS if row[f])
        assert list(shown["cells"]) == METRICS
        for column, cell in shown["cells"].items():
            # the values are the mart's, exactly, and printed to one decimal
            assert number(cell["data-value"]) == row[column], column
            assert number(cell["data-previous"]) == row[f"previous_{column}"], column
            assert number(cell["data-change"]) == row[f"change_{column}"], column
            words = cell["text"].split()
            assert words[0].rstrip("%") == pct(row[column]), (column, words)
            change = row[f"change_{column}"]
            if change is None:
                assert "none before" in cell["text"]
            elif abs(change) >= 0.05:
                assert words[1] == ("▲" if change > 0 else "▼")
                assert words[2] == f"{change:+.1f}"
        missed = {c: cell["data-missed"] == "true" for c, cell in shown["cells"].items()}
        assert missed["pct_very_low"] == row["flag_below_54"]
        assert missed["pct_below_70"] == row["flag_below_70"]
        assert missed["pct_target"] == row["flag_tir_low"]
        assert missed["cv_pct"] == row["flag_cv_high"]
        assert missed["wear_pct"] == row["flag_low_wear"]

        # colour: a rise in time in range is better, a rise in time below 54 worse, GMI neutral
        trend = {c: cell["data-trend"] for c, cell in shown["cells"].items()}
        tir_change = row["change_pct_target"]
        if tir_change is not None and abs(tir_change) >= 0.05:
            assert trend["pct_target"] == ("better" if tir_change > 0 else "worse")
        low_change = row["change_pct_very_low"]
        if low_change is not None and abs(low_change) >= 0.05:
            assert trend["pct_very_low"] == ("worse" if low_change > 0 else "better")
        assert trend["gmi_pct"] == "neutral"

        # one link per subject, to its AGP report (written by the builder, same folder)
        (link,) = shown["links"]
        assert "/" not in link and (html.parent / link).is_file()
        assert link.startswith(f"agp_{subject_slug(row['subject_id'])}_")
        assert link.endswith(f"_{row['period_last_day']}.html")
        agp = (html.parent / link).read_text(encoding="utf-8")
        assert f'<span id="subject">{row["subject_id"]}</span>' in agp
        assert f'data-value="{row["period_last_day"]}"' in agp
    assert len(page.links) == len(rows)


def test_no_agp_links_only_reports_already_written(lake: Settings, tmp_path: Path):
    out = tmp_path / "reports"
    page = parse(run_cohort(lake, out, "--no-agp"))
    assert len(page.rows) == len(PEOPLE) and page.links == []
    assert not list(out.glob("agp_*"))

    run_cohort(lake, out)  # writes every AGP report
    written = sorted(p.name for p in out.glob("agp_*.html"))
    assert len(written) == len(PEOPLE)
    (out / written[0]).unlink()
    html = run_cohort(lake, out, "--no-agp")
    page = parse(html)
    assert sorted(page.links) == written[1:]
    assert all((html.parent / link).is_file() for link in page.links)


def test_cohort_options_that_do_not_fit(lake: Settings, tmp_path: Path):
    env = {"CASCADE_HOME": str(lake.home)}
    for args in (["--cohort", "--subject", "x"], ["--cohort", "--days", "30"], ["--no-agp"]):
        result = CliRunner().invoke(report, [*args, "--out", str(tmp_path)], env=env)
        assert result.exit_code == 2, (args, result.output)
        assert "cohort" in result.output
