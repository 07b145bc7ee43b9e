"""The AGP v5 additions to the report's data: insulin, episodes, the period before, daily traces,
partial days, data sufficiency and the GRI's components.

Each reader checks that its table (and the columns it needs) exists in the lake, so a lake built
before a mart existed shows "not available" instead of failing.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import duckdb
import numpy as np

PARTIAL_DAY_GAP = timedelta(hours=1)  # readings ending earlier than this before midnight: partial
AGP_SMOOTHING_BINS = 5  # the AGP's moving average: 5 × 15-min bins, centred, wrapping midnight
GRI_ZONES = (("A", 0, 20), ("B", 20, 40), ("C", 40, 60), ("D", 60, 80), ("E", 80, 100))
EPISODE_ROWS = (  # (type, level, plain label, threshold)
    ("hypo", "lv1", "Low glucose events, level 1", "<70 mg/dL for ≥15 min"),
    ("hypo", "lv2", "Low glucose events, level 2", "<54 mg/dL for ≥15 min"),
    ("hypo", "extended", "Extended low glucose events", "<70 mg/dL for >120 min"),
    ("hyper", "lv1", "High glucose events, level 1", ">180 mg/dL for ≥15 min"),
    ("hyper", "lv2", "High glucose events, level 2", ">250 mg/dL for ≥15 min"),
)


def columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> set[str]:
    """The columns of `schema.table` in the current lake (empty when the table does not exist)."""
    rows = con.execute(
        "select column_name from information_schema.columns "
        "where table_catalog = current_database() and table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchall()
    return {r[0] for r in rows}


def smooth_agp(values: np.ndarray, width: int = AGP_SMOOTHING_BINS) -> np.ndarray:
    """A centred moving average over `width` time-of-day bins, wrapping across midnight.

    The IDC's AGP draws each percentile curve smoothed across time of day; here each bin becomes
    the mean of itself and its (width-1)/2 neighbours on each side (bins without readings are
    left out of the mean, and stay empty). A display step only: the marts keep raw percentiles.
    """
    half = width // 2
    stacked = np.stack([np.roll(values, shift) for shift in range(-half, half + 1)])
    finite = np.isfinite(stacked)
    total = np.where(finite, stacked, 0.0).sum(axis=0)
    count = finite.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        smoothed = total / count
    return np.where(np.isfinite(values), smoothed, np.nan)


@dataclass(frozen=True)
class Gri:
    """The Glycemia Risk Index and its two components (Klonoff et al., 2023)."""

    hypo: float  # very low + 0.8 × low, % of readings
    hyper: float  # very high + 0.5 × high
    value: float  # 3.0 × hypo + 1.6 × hyper, capped at 100

    @property
    def zone(self) -> str:
        return next(z for z, low, high in GRI_ZONES if self.value < high or high == 100)


def gri(bands: dict[str, float], stored: float | None = None) -> Gri:
    """The GRI of a period's five bands; `stored` (the mart's value) wins where present."""
    hypo = bands["very_low"] + 0.8 * bands["low"]
    hyper = bands["very_high"] + 0.5 * bands["high"]
    value = stored if stored is not None else min(100.0, 3.0 * hypo + 1.6 * hyper)
    return Gri(round(hypo, 4), round(hyper, 4), round(value, 4))


COMPARATORS = {">": operator.gt, "<": operator.lt, "<=": operator.le, ">=": operator.ge}
SHOWN = {">": ">", "<": "<", "<=": "≤", ">=": "≥"}


@dataclass(frozen=True)
class Target:
    """One International Consensus target, as gold.mrt_consensus_targets holds it (the same
    rows the marts' meets_* flags are made from)."""

    key: str
    metric: str
    comparator: str
    threshold: float
    min_days: int | None = None

    def met(self, value: float | None, days: int) -> bool:
        """Whether a period with this metric value over `days` days meets the target."""
        if value is None or (self.min_days is not None and days < self.min_days):
            return False
        return COMPARATORS[self.comparator](value, self.threshold)

    @property
    def goal(self) -> str:
        """'>70%', '≤36%'."""
        return f"{SHOWN[self.comparator]}{self.threshold:g}%"


def read_consensus(con: duckdb.DuckDBPyConnection) -> dict[str, Target]:
    """The lake's consensus targets by key (tir, below_70, ..., wear); empty on a lake built
    before gold.mrt_consensus_targets existed."""
    if not columns(con, "gold", "mrt_consensus_targets"):
        return {}
    rows = con.execute(
        "select target, metric, comparator, threshold, min_days from gold.mrt_consensus_targets"
    ).fetchall()
    return {row[0]: Target(*row) for row in rows}


@dataclass(frozen=True)
class Sufficiency:
    """Whether the period meets the consensus minimum of data (the wear target's days and
    wear, e.g. ≥14 days, ≥70 % CGM active)."""

    days: int
    wear_pct: float
    meets_days: bool
    meets_wear: bool
    min_days: int
    min_wear_pct: float

    @property
    def sufficient(self) -> bool:
        return self.meets_days and self.meets_wear

    def reason(self) -> str:
        missing = []
        if not self.meets_days:
            missing.append(f"{self.days} days of data (fewer than {self.min_days})")
        if not self.meets_wear:
            missing.append(f"CGM active {self.wear_pct:.1f}% (under {self.min_wear_pct:g}%)")
        return " and ".join(missing)


def sufficiency(row: dict | None, days: int, wear_pct: float, wear: Target) -> Sufficiency:
    """From mrt_period_summary's sufficiency columns when it has them, else the wear target's
    minimum (`wear`, from mrt_consensus_targets) applied here."""
    row = row or {}
    days = row.get("days_with_data") if row.get("days_with_data") is not None else days
    meets_days = row.get("meets_min_days")
    meets_wear = row.get("meets_min_wear")
    min_days = wear.min_days or 0
    return Sufficiency(
        days=days,
        wear_pct=wear_pct,
        meets_days=days >= min_days if meets_days is None else bool(meets_days),
        meets_wear=wear_pct >= wear.threshold if meets_wear is None else bool(meets_wear),
        min_days=min_days,
        min_wear_pct=wear.threshold,
    )


@dataclass(frozen=True)
class DayInsulin:
    """One local day of mrt_daily_insulin."""

    local_date: date
    basal_u: float
    bolus_u: float
    total_u: float


@dataclass(frozen=True)
class Insulin:
    """Mean total daily insulin over the window's full days (partial days left out)."""

    days: int
    total_u: float
    basal_u: float
    bolus_u: float
    daily: list[DayInsulin]

    @property
    def basal_pct(self) -> float | None:
        """Basal share of the mean total (mean basal ÷ mean total)."""
        return 100 * self.basal_u / self.total_u if self.total_u else None


def read_insulin(
    con: duckdb.DuckDBPyConnection, subject: str, first: date, last: date, partial: set[date]
) -> Insulin | None:
    """Daily insulin of the window; None when the lake has no mrt_daily_insulin."""
    if not {"basal_u", "bolus_u", "total_u"} <= columns(con, "gold", "mrt_daily_insulin"):
        return None
    rows = con.execute(
        "select local_date, basal_u, bolus_u, total_u from gold.mrt_daily_insulin "
        "where subject_id = ? and local_date between ? and ? order by local_date",
        [subject, first, last],
    ).fetchall()
    daily = [DayInsulin(d, b or 0.0, s or 0.0, t or 0.0) for d, b, s, t in rows]
    full = [d for d in daily if d.local_date not in partial]
    if not full:
        return None
    n = len(full)
    return Insulin(
        days=n,
        total_u=sum(d.total_u for d in full) / n,
        basal_u=sum(d.basal_u for d in full) / n,
        bolus_u=sum(d.bolus_u for d in full) / n,
        daily=daily,
    )


@dataclass(frozen=True)
class EpisodeRow:
    """One consensus episode count of the period."""

    type: str
    level: str
    label: str
    threshold: str
    episodes: int | None
    per_day: float | None
    mean_duration_min: float | None


@dataclass(frozen=True)
class Episodes:
    """The consensus episode counts of one mrt_period_episodes period."""

    period: str
    rows: list[EpisodeRow]


def read_episodes(con: duckdb.DuckDBPyConnection, subject: str, period: str) -> Episodes | None:
    """The period's episode counts; None when the lake has no mrt_period_episodes yet."""
    have = columns(con, "gold", "mrt_period_episodes")
    if not {"subject_id", "period", "episode_type", "level", "episodes"} <= have:
        return None
    optional = [c for c in ("episodes_per_day", "mean_duration_min") if c in have]
    select = ", ".join(["episode_type", "level", "episodes", *optional])
    found = {
        (r[0], r[1]): dict(zip(["episodes", *optional], r[2:], strict=True))
        for r in con.execute(
            f"select {select} from gold.mrt_period_episodes where subject_id = ? and period = ?",
            [subject, period],
        ).fetchall()
    }
    rows = []
    for kind, level, label, threshold in EPISODE_ROWS:
        row = found.get((kind, level), {})
        rows.append(
            EpisodeRow(
                kind,
                level,
                label,
                threshold,
                row.get("episodes", 0 if found else None),
                row.get("episodes_per_day"),
                row.get("mean_duration_min"),
            )
        )
    return Episodes(period, rows)


@dataclass(frozen=True)
class Trace:
    """One local day's readings: hours since local midnight and glucose (mg/dL)."""

    local_date: date
    hours: np.ndarray
    glucose: np.ndarray


def read_traces(
    con: duckdb.DuckDBPyConnection, subject: str, first: date, last: date
) -> dict[date, Trace]:
    """Each day's readings from silver.fct_glucose_readings (no gold mart holds single readings)."""
    table = con.execute(
        "select local_date, (epoch(local_at) - epoch(local_date::timestamp)) / 3600.0 as hours, "
        "glucose_mg_dl from silver.fct_glucose_readings "
        "where subject_id = ? and local_date between ? and ? order by local_at",
        [subject, first, last],
    ).fetchnumpy()
    traces = {}
    dates = table["local_date"]
    for day in np.unique(dates):
        mask = dates == day
        key = day.astype("datetime64[D]").astype(date) if hasattr(day, "astype") else day
        traces[key] = Trace(key, table["hours"][mask], table["glucose_mg_dl"][mask])
    return traces


def derive_partial_days(
    con: duckdb.DuckDBPyConnection, subject: str, first: date, last: date
) -> dict[date, str]:
    """The lake's first and last day when their readings start/end over an hour from midnight.

    Returns each partial day with a plain description ('until 06:59', 'from 17:02'). Used where
    mrt_daily_glycaemia has no is_partial_day column.
    """
    partial = {}
    rows = con.execute(
        "select local_date, min(local_at), max(local_at) from silver.fct_glucose_readings "
        "where subject_id = ? and local_date in (?, ?) group by local_date",
        [subject, first, last],
    ).fetchall()
    for day, earliest, latest in rows:
        midnight = datetime(day.year, day.month, day.day)
        if day == last and latest < midnight + timedelta(days=1) - PARTIAL_DAY_GAP:
            partial[day] = f"until {latest:%H:%M}"
        elif day == first and earliest > midnight + PARTIAL_DAY_GAP:
            partial[day] = f"from {earliest:%H:%M}"
    return partial
