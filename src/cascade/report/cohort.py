"""The cohort page: everyone in the lake ranked by risk, from `gold.mrt_cohort_triage`.

One self-contained HTML page for a clinic or a study: per subject the current fortnight (the
last 14 days ending at the subject's last day with data) against the fortnight before, the
consensus flags (Battelino 2019) highlighted, and a link to each subject's AGP report, which is
written into the same folder by the AGP report builder (`build.write_report`), or, with
`agp=False`, linked only when the builder's file for that fortnight is already there.

Subject ids are shown as gold holds them: pseudonymous (no names or URLs reach gold).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb

from cascade.settings import Settings

from .build import settings_units, subject_slug, write_report
from .data import DEFAULT_DAYS, ReportError, gold_reader
from .html import _environment
from .units import Units, pct

# below this magnitude a change prints as 0.0 and gets no arrow or colour
STEADY = 0.05


@dataclass(frozen=True)
class Metric:
    """One column of the page: mart column, header, unit of its change, which way is better.

    `better` is +1 when a rise is better, -1 when a fall is, 0 when the consensus names no
    direction (GMI: its goal depends on the person, and a low GMI can come from hypoglycaemia).
    `flag` is the mart's flag that highlights the cell when the target is missed.
    """

    column: str
    header: str
    goal: str
    better: int
    flag: str | None = None
    suffix: str = "%"


@dataclass(frozen=True)
class Flag:
    """One consensus target as the page names it."""

    column: str
    label: str


@dataclass
class Cell:
    """One metric of one subject, as shown."""

    metric: Metric
    value: float | None
    previous: float | None
    change: float | None
    missed: bool

    @property
    def text(self) -> str:
        return pct(self.value)

    @property
    def arrow(self) -> str:
        if self.change is None:
            return ""
        if abs(self.change) < STEADY:
            return "→"
        return "▲" if self.change > 0 else "▼"

    @property
    def change_text(self) -> str:
        if self.change is None:
            return "none before"
        return f"{self.change:+.1f}" if abs(self.change) >= STEADY else "0.0"

    @property
    def trend(self) -> str:
        """'better', 'worse' or 'neutral': the colour of the change."""
        if self.change is None or abs(self.change) < STEADY or self.metric.better == 0:
            return "neutral"
        return "better" if self.change * self.metric.better > 0 else "worse"


@dataclass
class CohortRow:
    """One subject of the triage mart, with where its AGP report is."""

    subject: str
    rank: int
    period_start: date
    period_last_day: date
    readings: int
    flags: int
    cells: list[Cell]
    missed: list[Flag]
    agp_first_day: date | None = None
    agp_last_day: date | None = None
    agp: str | None = None  # the AGP report's file name, relative to the page
    agp_problem: str | None = None

    @property
    def slug(self) -> str:
        return subject_slug(self.subject)


@dataclass
class CohortFiles:
    """Where the cohort page was written, its rows, and the AGP reports it links to."""

    html: Path
    rows: list[CohortRow]
    agp: dict[str, Path] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)


def metrics(units: Units) -> tuple[Metric, ...]:
    """The page's metric columns, headers in plain language and in `units`."""
    low, very_low, high = units.threshold(70), units.threshold(54), units.threshold(180)
    return (
        Metric(
            "pct_target",
            f"Time in range ({low}–{high} {units.name})",
            "goal > 70%",
            +1,
            "flag_tir_low",
        ),
        Metric(
            "pct_very_low",
            f"Time very low (below {very_low})",
            "goal < 1%",
            -1,
            "flag_below_54",
        ),
        Metric(
            "pct_below_70",
            f"Time low (below {low})",
            "goal < 4%",
            -1,
            "flag_below_70",
        ),
        Metric("cv_pct", "Glucose variability (CV)", "goal ≤ 36%", -1, "flag_cv_high"),
        Metric("gmi_pct", "Estimated A1c (GMI)", "goal set per person", 0),
        Metric("gri", "Glycaemia risk index (GRI)", "0–100, lower is better", -1, suffix=""),
        Metric(
            "wear_pct",
            "Time the sensor was worn",
            "goal ≥ 70%",
            +1,
            "flag_low_wear",
        ),
    )


def flags(units: Units) -> tuple[Flag, ...]:
    """The consensus targets the mart flags, in the page's words."""
    low, very_low = units.threshold(70), units.threshold(54)
    high, very_high = units.threshold(180), units.threshold(250)
    return (
        Flag("flag_below_54", f"≥1% very low (<{very_low})"),
        Flag("flag_below_70", f"≥4% low (<{low})"),
        Flag("flag_tir_low", "<70% in range"),
        Flag("flag_above_250", f"≥5% very high (>{very_high})"),
        Flag("flag_above_180", f"≥25% high (>{high})"),
        Flag("flag_cv_high", "CV >36%"),
        Flag("flag_low_wear", "sensor worn <70%"),
    )


def cohort_rows(records: list[dict], units: Units) -> list[CohortRow]:
    """The mart's rows (dicts of its columns) as the page's rows, in risk order."""
    shown, targets = metrics(units), flags(units)
    rows = []
    for record in sorted(records, key=lambda r: r["risk_rank"]):
        cells = [
            Cell(
                m,
                record[m.column],
                record[f"previous_{m.column}"],
                record[f"change_{m.column}"],
                bool(m.flag and record[m.flag]),
            )
            for m in shown
        ]
        rows.append(
            CohortRow(
                subject=record["subject_id"],
                rank=record["risk_rank"],
                period_start=record["period_start"],
                period_last_day=record["period_last_day"],
                readings=record["readings"],
                flags=record["flags"],
                cells=cells,
                missed=[f for f in targets if record[f.column]],
                agp_first_day=record.get("agp_first_day"),
                agp_last_day=record.get("agp_last_day"),
            )
        )
    return rows


COHORT_SQL = f"""
select t.*, s.first_day as agp_first_day, s.last_day as agp_last_day
from gold.mrt_cohort_triage as t
left join gold.mrt_period_summary as s
    on s.subject_id = t.subject_id and s.period = 'last_{DEFAULT_DAYS}_days'
order by t.risk_rank
"""


def read_cohort(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """The triage mart's rows as dicts, in risk order, with the default AGP report's days."""
    cursor = con.execute(COHORT_SQL)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def load_cohort(settings: Settings) -> list[dict]:
    """The triage mart as of the last completed build; ReportError says what is missing."""
    with gold_reader(settings, "the cohort marts (gold.mrt_cohort_triage)") as con:
        records = read_cohort(con)
    if not records:
        raise ReportError(
            "gold.mrt_cohort_triage is empty: run `cascade transform` after ingesting"
        )
    return records


def expected_agp(row: CohortRow) -> str | None:
    """The file name the AGP report builder gives this subject's default (14-day) report."""
    if row.agp_first_day is None or row.agp_last_day is None:
        return None
    return f"agp_{row.slug}_{row.agp_first_day}_{row.agp_last_day}.html"


def render_cohort(rows: list[CohortRow], units: Units, agp_written: bool) -> str:
    """The cohort page's HTML."""
    last_days = sorted({r.period_last_day for r in rows})
    return (
        _environment()
        .get_template("cohort.html.j2")
        .render(
            rows=rows,
            metrics=metrics(units),
            flags=flags(units),
            units=units,
            pct=pct,
            days=DEFAULT_DAYS,
            first_last_day=last_days[0],
            latest_last_day=last_days[-1],
            flagged=sum(1 for r in rows if r.flags),
            agp_written=agp_written,
            generated=datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        )
    )


def cohort_file_name(rows: list[CohortRow]) -> str:
    """'cohort_<latest last day>.html': one page per state of the lake's data."""
    return f"cohort_{max(r.period_last_day for r in rows)}.html"


def write_cohort(
    settings: Settings,
    out_dir: Path,
    agp: bool = True,
    units: Units | None = None,
) -> CohortFiles:
    """Write the cohort page into `out_dir`, and with `agp` every subject's AGP report too.

    A subject whose AGP report cannot be made (its message is kept in `problems`) is listed
    without a link; the others are not held up.
    """
    units = units or settings_units(settings)
    rows = cohort_rows(load_cohort(settings), units)
    files = CohortFiles(out_dir / cohort_file_name(rows), rows)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"cannot write the report to {out_dir}: {exc.strerror or exc}") from None
    for row in rows:
        if agp:
            try:
                written = write_report(settings, out_dir, subject=row.subject, units=units)
            except ReportError as exc:
                row.agp_problem = files.problems[row.subject] = str(exc)
            else:
                row.agp = written.html.name
                files.agp[row.subject] = written.html
        else:
            name = expected_agp(row)
            if name and (out_dir / name).is_file():
                row.agp = name
                files.agp[row.subject] = out_dir / name
            else:
                row.agp_problem = "no AGP report for this fortnight in this folder yet"
    try:
        files.html.write_text(render_cohort(rows, units, agp), encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"cannot write the report to {out_dir}: {exc.strerror or exc}") from None
    return files
