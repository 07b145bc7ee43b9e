"""What the AGP report shows, read from the gold marts (and, for the daily traces, silver's
readings; never raw).

The period statistics come from `mrt_period_summary` when the report's window is one of its
periods (last 14/30/90 days, all data); any other window is summarised from the per-day rows of
`mrt_daily_glycaemia` (exact pooled mean and SD, band counts recovered from the day's
percentages) with wear from `mrt_quality_coverage`. `mrt_agp` holds percentiles for the fixed
periods only, so an arbitrary window shows the smallest period that covers it, and says so.
The percentile curves are drawn smoothed (`clinical.smooth_agp`); the raw ones stay alongside.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta

import duckdb
import numpy as np

from cascade.lake.connection import LakeError, connect_at_build
from cascade.settings import Settings

from .clinical import (
    Episodes,
    Gri,
    Insulin,
    Sufficiency,
    Target,
    Trace,
    columns,
    derive_partial_days,
    gri,
    read_consensus,
    read_episodes,
    read_insulin,
    read_traces,
    smooth_agp,
    sufficiency,
)
from .units import BANDS, TARGET_HIGH, TARGET_LOW, Units, pct

PERIOD_DAYS = {"last_14_days": 14, "last_30_days": 30, "last_90_days": 90, "all": None}
DEFAULT_DAYS = 14
AGP_BINS = 96
PERCENTILES = ("p05", "p25", "p50", "p75", "p95")
DECIMALS = 4  # the marts' precision (macros/glycaemia.sql)
MAX_TRACE_DAYS = 28  # four rows of daily profiles; longer windows show their last days


class ReportError(RuntimeError):
    """The report cannot be made; the message says why and what to do."""


@dataclass(frozen=True)
class Span:
    """Local dates first..last, both inclusive."""

    first: date
    last: date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


@dataclass
class Summary:
    """Consensus metrics of the report's period."""

    first_day: date
    last_day: date
    days: int
    readings: int
    wear_pct: float
    mean_mg_dl: float
    sd_mg_dl: float | None
    cv_pct: float | None
    gmi_pct: float
    bands: dict[str, float]
    pct_below_70: float
    pct_above_180: float
    meets: dict[str, bool]
    source: str
    period: str | None = None
    gri: float | None = None


@dataclass
class Day:
    """One local day of `mrt_daily_glycaemia`."""

    local_date: date
    readings: int
    wear_pct: float | None
    mean_mg_dl: float
    sd_mg_dl: float | None
    min_mg_dl: float
    max_mg_dl: float
    bands: dict[str, float]
    bolus_insulin_u: float
    carbs_g: float
    partial: str | None = None  # how much of the day has readings ('until 06:59'), if not all


@dataclass
class Agp:
    """Percentiles per 15-minute bin of local time (NaN where a bin has no readings)."""

    period: str
    span: Span
    readings: int
    percentiles: dict[str, np.ndarray]

    @property
    def smoothed(self) -> dict[str, np.ndarray]:
        """The percentile curves as drawn: each smoothed across time of day (smooth_agp)."""
        return {name: smooth_agp(values) for name, values in self.percentiles.items()}


@dataclass
class Comparison:
    """This period against the same number of days just before it, both pooled from daily rows."""

    current: Summary
    previous: Summary | None
    previous_span: Span


@dataclass
class ReportData:
    """Everything one report shows."""

    subject: str
    requested: Span
    summary: Summary
    agp: Agp
    days: list[Day]
    notes: list[str] = field(default_factory=list)
    insulin: Insulin | None = None
    episodes: Episodes | None = None
    comparison: Comparison | None = None
    traces: dict[date, Trace] = field(default_factory=dict)
    sufficiency: Sufficiency | None = None
    consensus: dict[str, Target] = field(default_factory=dict)

    @property
    def gri(self) -> Gri:
        return gri(self.summary.bands, self.summary.gri)

    @property
    def provisional(self) -> bool:
        """GMI and targets are provisional: the period is below the consensus minimum of data."""
        return self.sufficiency is not None and not self.sufficiency.sufficient

    @property
    def full_days(self) -> list[Day]:
        """Days with readings over the whole day: per-day means are taken over these only."""
        return [d for d in self.days if d.partial is None] or self.days

    @property
    def agp_source(self) -> str:
        """Which mrt_agp period the percentiles are of, flagged when it is not the window."""
        flag = (
            ""
            if self.summary.period == self.agp.period
            else ", the shortest stored period covering the window"
        )
        return f"percentiles of the {describe_period(self.agp.period, self.agp.span)}{flag}"

    @property
    def has_treatments(self) -> bool:
        return self.insulin is not None or any(d.bolus_insulin_u or d.carbs_g for d in self.days)

    @property
    def insulin_per_day(self) -> float:
        """Mean recorded bolus insulin per full day with data, U."""
        return sum(d.bolus_insulin_u for d in self.full_days) / len(self.full_days)

    @property
    def carbs_per_day(self) -> float:
        """Mean recorded carbohydrates per full day with data, g."""
        return sum(d.carbs_g for d in self.full_days) / len(self.full_days)


@dataclass(frozen=True)
class TargetRow:
    """One consensus target as shown: what, the period's value, the goal, met or not."""

    key: str
    label: str
    value: float | None
    shown: str
    goal: str
    met: bool


def choose_subject(subjects: list[str], requested: str | None) -> str:
    """The subject to report on: the requested one, or the only one in the lake."""
    if not subjects:
        raise ReportError("the gold marts hold no data: run `cascade transform` after ingesting")
    listing = ", ".join(subjects)
    if requested is not None:
        if requested not in subjects:
            raise ReportError(f"unknown subject {requested!r}; subjects in the lake: {listing}")
        return requested
    if len(subjects) > 1:
        raise ReportError(f"the lake holds several subjects ({listing}): choose one with --subject")
    return subjects[0]


def resolve_window(last_day: date, days: int | None, start: date | None, end: date | None) -> Span:
    """The requested local days: the last `days` ending at `last_day`, or start..end (exclusive)."""
    if days is not None and start is not None and end is not None:
        raise ReportError("pass either --days or both --start and --end, not all three")
    if start is None and end is None:
        return Span(last_day - timedelta(days=(days or DEFAULT_DAYS) - 1), last_day)
    if end is None:
        end = max(last_day, start) + timedelta(days=1)
    start = start or end - timedelta(days=days or DEFAULT_DAYS)
    if start >= end:
        raise ReportError(f"--start {start} is not before --end {end} (end is exclusive)")
    return Span(start, end - timedelta(days=1))


def clip(window: Span, data: Span) -> Span:
    """The part of `window` inside the data's days; ReportError when they do not meet."""
    first, last = max(window.first, data.first), min(window.last, data.last)
    if first > last:
        raise ReportError(
            f"no data from {window.first} to {window.last}: "
            f"the lake holds {data.first} to {data.last}"
        )
    return Span(first, last)


def period_span(period: str, data: Span) -> Span:
    """The days a summary period covers within the data: each period ends at the last day."""
    days = PERIOD_DAYS[period]
    first = data.first if days is None else max(data.first, data.last - timedelta(days=days - 1))
    return Span(first, data.last)


def matching_period(span: Span, data: Span) -> str | None:
    """The summary period holding exactly the readings of `span` (clipped to the data), if any."""
    return next((p for p in PERIOD_DAYS if period_span(p, data) == span), None)


def covering_period(span: Span, data: Span) -> str:
    """The shortest summary period that holds every day of `span`."""
    return next(p for p in PERIOD_DAYS if period_span(p, data).first <= span.first)


def summary_from_period(row: dict, period: str) -> Summary:
    """The period's row of mrt_period_summary as it stands, the meets_* flags included."""
    return Summary(
        first_day=row["first_day"],
        last_day=row["last_day"],
        days=row["days"],
        readings=row["readings"],
        wear_pct=row["wear_pct"],
        mean_mg_dl=row["mean_mg_dl"],
        sd_mg_dl=row["sd_mg_dl"],
        cv_pct=row["cv_pct"],
        gmi_pct=row["gmi_pct"],
        bands={b.key: row[f"pct_{b.key}"] for b in BANDS},
        pct_below_70=row["pct_below_70"],
        pct_above_180=row["pct_above_180"],
        meets={k.removeprefix("meets_"): v for k, v in row.items() if k.startswith("meets_")},
        source=f"summary of the {describe_period(period, None)}",
        period=period,
        gri=row.get("gri"),
    )


def metric(summary: Summary, name: str) -> float | None:
    """The value of an mrt_period_summary column (`pct_target`, `cv_pct`, ...) in `summary`."""
    band = name.removeprefix("pct_")
    return summary.bands[band] if band in summary.bands else getattr(summary, name)


def meets_targets(summary: Summary, consensus: dict[str, Target]) -> dict[str, bool]:
    """The meets_* flags of mrt_period_summary, from the same targets (mrt_consensus_targets)."""
    return {
        f"{key}_target": target.met(metric(summary, target.metric), summary.days)
        for key, target in consensus.items()
    }


def summarise_days(days: list[Day], wear_pct: float, consensus: dict[str, Target]) -> Summary:
    """Period metrics pooled from whole days: exact mean and SD, bands from recovered counts."""
    n = sum(d.readings for d in days)
    mean = sum(d.mean_mg_dl * d.readings for d in days) / n
    squares = sum(
        (d.readings - 1) * (d.sd_mg_dl or 0.0) ** 2 + d.readings * (d.mean_mg_dl - mean) ** 2
        for d in days
    )
    sd = math.sqrt(squares / (n - 1)) if n > 1 else None
    counts = {b.key: sum(round(d.bands[b.key] * d.readings / 100) for d in days) for b in BANDS}
    bands = {key: round(100 * count / n, DECIMALS) for key, count in counts.items()}
    first, last = days[0].local_date, days[-1].local_date
    summary = Summary(
        first_day=first,
        last_day=last,
        days=(last - first).days + 1,
        readings=n,
        wear_pct=round(wear_pct, DECIMALS),
        mean_mg_dl=round(mean, DECIMALS),
        sd_mg_dl=None if sd is None else round(sd, DECIMALS),
        cv_pct=None if sd is None else round(100 * sd / mean, DECIMALS),
        gmi_pct=round(3.31 + 0.02392 * mean, DECIMALS),
        bands=bands,
        pct_below_70=round(100 * (counts["very_low"] + counts["low"]) / n, DECIMALS),
        pct_above_180=round(100 * (counts["high"] + counts["very_high"]) / n, DECIMALS),
        meets={},
        source="pooled from the daily summaries of the window's days",
    )
    summary.meets = meets_targets(summary, consensus)
    return summary


def targets(data: ReportData, units: Units) -> list[TargetRow]:
    """The consensus targets (mrt_consensus_targets) with the period's values."""
    t = units.threshold
    labels = {
        "tir": f"Time in range {t(TARGET_LOW)}–{t(TARGET_HIGH)}",
        "below_70": f"Time below {t(70)}",
        "below_54": f"Time below {t(54)}",
        "above_180": f"Time above {t(180)}",
        "above_250": f"Time above {t(250)}",
        "cv": "Glucose variability (CV)",
    }
    summary = data.summary
    rows = []
    for key, label in labels.items():
        target = data.consensus.get(key)
        if target is None:
            continue
        value = metric(summary, target.metric)
        met = summary.meets.get(f"{key}_target", False)
        rows.append(TargetRow(key, label, value, f"{pct(value)}%", target.goal, met))
    return rows


def _dicts(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> list[dict]:
    cursor = con.execute(sql, params)
    names = [c[0] for c in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _day(row: dict, partial: dict[date, str]) -> Day:
    flagged = row.get("is_partial_day")
    if flagged is None:
        shown = partial.get(row["local_date"])
    else:
        shown = partial.get(row["local_date"], "partial day") if flagged else None
    return Day(
        local_date=row["local_date"],
        readings=row["readings"],
        wear_pct=row["wear_pct"],
        mean_mg_dl=row["mean_mg_dl"],
        sd_mg_dl=row["sd_mg_dl"],
        min_mg_dl=row["min_mg_dl"],
        max_mg_dl=row["max_mg_dl"],
        bands={b.key: row[f"pct_{b.key}"] for b in BANDS},
        bolus_insulin_u=row["bolus_insulin_u"] or 0.0,
        carbs_g=row["carbs_g"] or 0.0,
        partial=shown,
    )


def _agp(con: duckdb.DuckDBPyConnection, subject: str, period: str, span: Span) -> Agp:
    rows = _dicts(
        con,
        "select tod_bin, readings, p05_mg_dl, p25_mg_dl, p50_mg_dl, p75_mg_dl, p95_mg_dl "
        "from gold.mrt_agp where subject_id = ? and period = ? order by tod_bin",
        [subject, period],
    )
    if not rows:
        raise ReportError(f"gold.mrt_agp has no rows for {subject!r}: run `cascade transform`")
    percentiles = {p: np.full(AGP_BINS, np.nan) for p in PERCENTILES}
    for row in rows:
        for p in PERCENTILES:
            value = row[f"{p}_mg_dl"]
            percentiles[p][row["tod_bin"]] = np.nan if value is None else value
    return Agp(period, span, sum(r["readings"] for r in rows), percentiles)


def _wear(
    con: duckdb.DuckDBPyConnection, subject: str, span: Span, partial: frozenset[date] = frozenset()
) -> float:
    """Readings present ÷ expected over the span's days; partial days (not over) left out."""
    present, expected = con.execute(
        "select sum(present_readings), sum(expected_readings) from gold.mrt_quality_coverage "
        "where subject_id = ? and local_date between ? and ? and not list_contains(?, local_date)",
        [subject, span.first, span.last, sorted(partial)],
    ).fetchone()
    return 100.0 * present / expected if expected else 0.0


def describe_period(period: str, span: Span | None) -> str:
    """'last 14 days (2024-03-03 to 2024-03-16)' or 'all data (...)'."""
    name = "all data" if period == "all" else period.replace("_", " ")
    return name if span is None else f"{name} ({span.first} to {span.last})"


def compare(
    con: duckdb.DuckDBPyConnection,
    subject: str,
    daily: list[Day],
    consensus: dict[str, Target],
) -> Comparison:
    """The window's days against as many days just before them, both from mrt_daily_glycaemia.

    Both periods are pooled the same way (summarise_days); wear is readings present ÷ expected
    over their full days, so a day still in progress does not count as a day of missing data.
    """
    current_span = Span(daily[0].local_date, daily[-1].local_date)
    previous_span = Span(
        current_span.first - timedelta(days=current_span.days),
        current_span.first - timedelta(days=1),
    )
    rows = _dicts(
        con,
        "select * from gold.mrt_daily_glycaemia "
        "where subject_id = ? and local_date between ? and ? order by local_date",
        [subject, previous_span.first, previous_span.last],
    )
    before = [_day(r, {}) for r in rows]
    previous = None
    if before:
        span = Span(before[0].local_date, before[-1].local_date)
        previous = summarise_days(before, _wear(con, subject, span), consensus)
    partial = frozenset(d.local_date for d in daily if d.partial)
    current = summarise_days(daily, _wear(con, subject, current_span, partial), consensus)
    return Comparison(current, previous, previous_span)


def partial_days(con: duckdb.DuckDBPyConnection, subject: str, data: Span) -> dict[date, str]:
    """Partial days with how much of them has readings: the mart's flag, else derived."""
    derived = derive_partial_days(con, subject, data.first, data.last)
    if "is_partial_day" not in columns(con, "gold", "mrt_daily_glycaemia"):
        return derived
    flagged = con.execute(
        "select local_date from gold.mrt_daily_glycaemia where subject_id = ? and is_partial_day",
        [subject],
    ).fetchall()
    return {day: derived.get(day, "partial day") for (day,) in flagged}


def read_report(
    con: duckdb.DuckDBPyConnection,
    subject: str | None = None,
    days: int | None = None,
    start: date | None = None,
    end: date | None = None,
) -> ReportData:
    """Read the report's data from the gold marts on an open lake connection."""
    subjects = [
        r[0]
        for r in con.execute(
            "select distinct subject_id from gold.mrt_period_summary order by 1"
        ).fetchall()
    ]
    subject = choose_subject(subjects, subject)
    consensus = read_consensus(con)
    if "wear" not in consensus:
        raise ReportError(
            "the lake has no gold.mrt_consensus_targets (built by an older cascade): "
            "run `cascade transform`"
        )
    periods = {
        row["period"]: row
        for row in _dicts(
            con, "select * from gold.mrt_period_summary where subject_id = ?", [subject]
        )
    }
    data = Span(periods["all"]["first_day"], periods["all"]["last_day"])
    requested = resolve_window(data.last, days, start, end)
    span = clip(requested, data)
    day_rows = _dicts(
        con,
        "select * from gold.mrt_daily_glycaemia "
        "where subject_id = ? and local_date between ? and ? order by local_date",
        [subject, span.first, span.last],
    )
    if not day_rows:
        raise ReportError(f"no readings for {subject!r} from {span.first} to {span.last}")
    partial = partial_days(con, subject, data)
    daily = [_day(r, partial) for r in day_rows]
    notes = []
    matched = matching_period(span, data)
    if matched:
        summary = summary_from_period(periods[matched], matched)
    else:
        data_days = Span(daily[0].local_date, daily[-1].local_date)
        summary = summarise_days(daily, _wear(con, subject, data_days), consensus)
        notes.append(
            "Statistics are pooled from the daily mart (the window is not one of the summary "
            "periods); wear is readings present ÷ expected per day (mrt_quality_coverage)."
        )
    agp_period = matched or covering_period(span, data)
    agp_span = Span(periods[agp_period]["first_day"], periods[agp_period]["last_day"])
    agp = _agp(con, subject, agp_period, agp_span)
    if agp_period != matched:
        notes.append(
            f"AGP percentiles are of {describe_period(agp_period, agp_span)}, the shortest period "
            f"gold.mrt_agp holds that covers {span.first} to {span.last}."
        )
    if requested != span:
        notes.append(
            f"{requested.days} days requested ({requested.first} to {requested.last}); "
            f"the lake holds data from {data.first} to {data.last}."
        )
    report = ReportData(subject, requested, summary, agp, daily, notes, consensus=consensus)
    report.sufficiency = sufficiency(
        periods[matched] if matched else None, summary.days, summary.wear_pct, consensus["wear"]
    )
    report.insulin = read_insulin(con, subject, span.first, span.last, set(partial))
    report.episodes = read_episodes(con, subject, agp_period)
    report.comparison = compare(con, subject, daily, consensus)
    shown = daily[-1].local_date - timedelta(days=MAX_TRACE_DAYS - 1)
    report.traces = read_traces(con, subject, max(span.first, shown), span.last)
    return report


def load_report(
    settings: Settings,
    subject: str | None = None,
    days: int | None = None,
    start: date | None = None,
    end: date | None = None,
) -> ReportData:
    """Read the report's data as of the last completed build; ReportError says what is missing.

    The lake is pinned to that build's snapshot, so a report made during a dbt build never mixes
    days the build has reached in one mart with days it has not in another.
    """
    with gold_reader(settings, "the gold marts") as con:
        return read_report(con, subject, days, start, end)


@contextmanager
def gold_reader(settings: Settings, what: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """The lake as of the last completed build, for reading `what` (plural: "the gold marts");
    every failure becomes one ReportError naming the lake and the fix."""
    try:
        with connect_at_build(settings) as con:
            yield con
    except LakeError as exc:
        raise ReportError(str(exc)) from None
    except duckdb.CatalogException as exc:
        raise ReportError(
            f"{what} are missing from the lake at {settings.describe_catalog()} "
            f"({first_line(exc)}): run `cascade transform` to build them"
        ) from None
    except duckdb.Error as exc:
        raise ReportError(
            f"could not read {what} of the lake at {settings.describe_catalog()}: {first_line(exc)}"
        ) from None


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
