"""The report's charts, drawn with matplotlib's object API for the Agg canvas (no pyplot state).

Each `draw_*` function fills a Figure or SubFigure, so the same drawing makes a chart of the
HTML page and a section of the one-page PNG.
"""

from __future__ import annotations

from datetime import date, timedelta

import matplotlib
import numpy as np
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, DateFormatter, DayLocator
from matplotlib.figure import Figure, SubFigure
from matplotlib.patches import Rectangle

from .data import AGP_BINS, Agp, Day, ReportData, Summary, targets
from .units import BANDS, TARGET_HIGH, TARGET_LOW, Units, pct

Canvas = Figure | SubFigure
INK = "#1f2933"
MUTED = "#5f6b7a"
TARGET_FILL = "#e3f2e6"
TARGET_LINE = "#3a9e4f"
BAND_5_95 = "#c9dcef"
BAND_25_75 = "#7fa9d6"
MEDIAN = "#0b3b75"
INSULIN = "#3f6fb5"
CARBS = "#e39b2d"
THRESHOLDS = (54, 70, 180, 250)
MAX_DAILY_PANELS = 28  # four rows of small multiples; longer windows show their last days
MAX_BARS = 60  # more days than this are drawn as thin lines: 700 bar patches take seconds
DAYS_PER_ROW = 7
STYLE = {
    "font.size": 9,
    "axes.edgecolor": "#9aa5b1",
    "axes.labelcolor": INK,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "text.color": INK,
}


def style():
    """The report's matplotlib settings, for the block that draws it."""
    return matplotlib.rc_context(STYLE)


def _glucose_axis(
    ax, units: Units, top_mg_dl: float, ticks: list[float], labels: bool = True
) -> None:
    ax.set_ylim(0, units.convert(top_mg_dl))
    ax.set_yticks([units.convert(v) for v in ticks])
    ax.set_yticklabels([units.threshold(int(v)) for v in ticks] if labels else [])
    # behind the percentile bands: the target range is context, not data
    ax.axhspan(
        units.convert(TARGET_LOW), units.convert(TARGET_HIGH), color=TARGET_FILL, lw=0, zorder=0
    )
    for limit in (TARGET_LOW, TARGET_HIGH):
        ax.axhline(units.convert(limit), color=TARGET_LINE, lw=1.0)
    for limit in (54, 250):
        ax.axhline(units.convert(limit), color="#b0b8c1", lw=0.6, ls=(0, (3, 3)))


def _wrap(values: np.ndarray) -> np.ndarray:
    """Extend the 96 bins by one on each side across midnight, so the curve spans 00:00–24:00."""
    return np.concatenate([values[-1:], values, values[:1]])


def draw_agp(fig: Canvas, agp: Agp, units: Units) -> None:
    """The 24-hour profile: median, 25–75 and 5–95 percentile bands over the target range."""
    ax = fig.add_subplot()
    hours = (np.arange(-1, AGP_BINS + 1) + 0.5) / 4
    p = {name: units.convert(_wrap(values)) for name, values in agp.percentiles.items()}
    ax.fill_between(hours, p["p05"], p["p95"], color=BAND_5_95, lw=0, label="5–95%")
    ax.fill_between(hours, p["p25"], p["p75"], color=BAND_25_75, lw=0, label="25–75%")
    ax.plot(hours, p["p50"], color=MEDIAN, lw=2.2, label="Median (50%)")
    top = np.nanmax(agp.percentiles["p95"]) if np.isfinite(agp.percentiles["p95"]).any() else 0
    top = 350 if top <= 340 else 400
    _glucose_axis(ax, units, top, [*THRESHOLDS, top])
    ax.plot([], [], color=TARGET_LINE, lw=6, alpha=0.35, label=f"Target range {target(units)}")
    ax.set_xlim(0, 24)
    ax.set_xticks(range(0, 25, 3))
    ax.set_xticklabels([f"{h:02d}:00" for h in range(0, 25, 3)])
    ax.grid(axis="x", color="#e4e7eb", lw=0.6)
    ax.set_axisbelow(True)
    ax.set_ylabel(f"Glucose ({units.name})")
    ax.set_xlabel("Local time of day")
    ax.legend(
        loc="lower center",
        bbox_to_anchor=(0.5, 0.0),
        bbox_transform=fig.transSubfigure,
        ncol=4,
        frameon=False,
    )


def target(units: Units) -> str:
    """'70–180 mg/dL' in the report's units."""
    return f"{units.threshold(TARGET_LOW)}–{units.threshold(TARGET_HIGH)} {units.name}"


def draw_band_bar(fig: Canvas, summary: Summary, units: Units) -> None:
    """The five-band stacked bar, each band's range and % on evenly spaced rows beside it."""
    ax = fig.add_subplot()
    ax.set_axis_off()
    width, bar = 10.0, 2.0
    ax.set_xlim(0, width)
    ax.set_ylim(0, 100)
    bottom = 0.0
    centres = {}
    for band in reversed(BANDS):
        height = summary.bands[band.key] or 0.0
        ax.add_patch(Rectangle((0, bottom), bar, height, color=band.colour, lw=0))
        centres[band.key] = bottom + height / 2
        bottom += height
    rows = np.linspace(92, 8, len(BANDS))
    for band, y in zip(BANDS, rows, strict=True):
        ax.plot([bar, bar + 0.3, bar + 0.7], [centres[band.key], y, y], color="#9aa5b1", lw=0.7)
        ax.text(bar + 0.85, y + 2.5, band.label, va="bottom", fontsize=8.5, weight="bold")
        ax.text(
            bar + 0.85,
            y + 1.5,
            f"{units.band_range(band)} {units.name}",
            va="top",
            fontsize=7.5,
            color=MUTED,
        )
        ax.text(
            width,
            y,
            f"{pct(summary.bands[band.key])}%",
            ha="right",
            va="center",
            fontsize=11,
            weight="bold",
        )


def draw_statistics(fig: Canvas, data: ReportData, units: Units) -> None:
    """The statistics block as a two-column list of labels and values."""
    s = data.summary
    rows = [
        ("Mean glucose", f"{units.glucose(s.mean_mg_dl)} {units.name}"),
        ("Glucose Management Indicator (GMI)", f"{pct(s.gmi_pct)}%"),
        ("Glucose variability (CV)", f"{pct(s.cv_pct)}%"),
        ("Standard deviation (SD)", f"{units.glucose(s.sd_mg_dl)} {units.name}"),
        ("Readings", f"{s.readings:,}"),
        ("Time CGM active", f"{pct(s.wear_pct)}%"),
    ]
    if data.has_treatments:
        rows.append(("Bolus insulin, mean per day", f"{data.insulin_per_day:.1f} U"))
        rows.append(("Carbohydrates, mean per day", f"{data.carbs_per_day:.0f} g"))
    fig.text(0.02, 0.97, "Glucose statistics", va="top", fontsize=11, weight="bold")
    for i, (label, value) in enumerate(rows):
        y = 0.82 - i * 0.1
        fig.text(0.04, y, label, va="center", fontsize=8.5)
        fig.text(0.98, y, value, va="center", ha="right", fontsize=10, weight="bold")


def draw_targets(fig: Canvas, data: ReportData, units: Units) -> None:
    """The consensus targets, the period's values and whether each is met."""
    fig.text(0.02, 0.97, "Consensus targets", va="top", fontsize=11, weight="bold")
    fig.text(
        0.02,
        0.88,
        "Battelino et al., Diabetes Care 2019 (most adults)",
        va="top",
        fontsize=7.5,
        color=MUTED,
    )
    rows = targets(data.summary, units)
    step = 0.7 / len(rows)
    for i, row in enumerate(rows):
        y = 0.74 - i * step
        colour = TARGET_LINE if row.met else "#c62828"
        fig.text(0.04, y + 0.02, row.label, va="bottom", fontsize=8.5)
        fig.text(0.04, y + 0.015, f"goal {row.goal}", va="top", fontsize=7.5, color=MUTED)
        fig.text(0.72, y, row.shown, va="center", ha="right", fontsize=10, weight="bold")
        fig.text(
            0.98,
            y,
            "✓ met" if row.met else "✗ not met",
            va="center",
            ha="right",
            fontsize=8,
            color=colour,
            weight="bold",
        )


def daily_days(data: ReportData) -> list[date]:
    """The days the daily panels show: the window's days with data, at most MAX_DAILY_PANELS."""
    last = data.days[-1].local_date
    first = max(data.days[0].local_date, last - timedelta(days=MAX_DAILY_PANELS - 1))
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def daily_rows(data: ReportData) -> int:
    """Rows of the daily grid, seven days to a row."""
    return -(-len(daily_days(data)) // DAYS_PER_ROW)


def draw_daily(fig: Canvas, data: ReportData, units: Units) -> None:
    """Small multiples, seven days to a row: range, mean ± SD and time in ranges of each day."""
    shown = daily_days(data)
    by_date = {d.local_date: d for d in data.days}
    axes = fig.subplots(daily_rows(data), DAYS_PER_ROW, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for i, day in enumerate(shown):
        row, column = divmod(i, DAYS_PER_ROW)
        _day_panel(axes[row][column], day, by_date.get(day), units, column == 0)


def _day_panel(ax, day: date, stats: Day | None, units: Units, first_column: bool) -> None:
    ax.set_axis_on()
    ax.set_xlim(0, 1)
    _glucose_axis(ax, units, 400, [TARGET_LOW, TARGET_HIGH, 250], labels=first_column)
    ax.tick_params(axis="y", labelsize=6, length=2, pad=1)
    ax.set_xticks([])
    ax.set_title(f"{day:%a} {day.day} {day:%b}", fontsize=7, pad=2, loc="left")
    for spine in ax.spines.values():
        spine.set_color("#c3cad3")
    if stats is None:
        ax.text(
            0.42, 0.5, "no data", transform=ax.transAxes, ha="center", fontsize=6.5, color=MUTED
        )
        return
    c = units.convert
    ax.plot([0.42, 0.42], [c(stats.min_mg_dl), c(stats.max_mg_dl)], color="#6b7785", lw=1)
    sd = stats.sd_mg_dl or 0.0
    low, high = (
        max(stats.mean_mg_dl - sd, stats.min_mg_dl),
        min(stats.mean_mg_dl + sd, stats.max_mg_dl),
    )
    ax.add_patch(Rectangle((0.27, c(low)), 0.3, c(high) - c(low), color=BAND_25_75, lw=0))
    ax.plot([0.42], [c(stats.mean_mg_dl)], "o", color=MEDIAN, ms=3.5)
    bottom = 0.0
    for band in reversed(BANDS):
        height = (stats.bands[band.key] or 0.0) / 100
        ax.add_patch(
            Rectangle((0.8, bottom), 0.16, height, transform=ax.transAxes, color=band.colour, lw=0)
        )
        bottom += height
    lines = [f"TIR {stats.bands['target']:.0f}%"]
    if stats.bolus_insulin_u or stats.carbs_g:
        lines.append(f"{stats.bolus_insulin_u:.1f} U · {stats.carbs_g:.0f} g")
    ax.set_xlabel("\n".join(lines), fontsize=6.5, labelpad=2, color=INK)


def draw_treatments(fig: Canvas, data: ReportData) -> list:
    """Daily bolus insulin (U) above daily carbohydrates (g), sharing the date axis."""
    insulin_ax, carbs_ax = fig.subplots(2, 1, sharex=True)
    dates = np.array([d.local_date for d in data.days], dtype="datetime64[D]")
    series = [
        (insulin_ax, [d.bolus_insulin_u for d in data.days], INSULIN, "Bolus insulin (U)"),
        (carbs_ax, [d.carbs_g for d in data.days], CARBS, "Carbs (g)"),
    ]
    for ax, values, colour, label in series:
        if len(dates) <= MAX_BARS:
            ax.bar(dates, values, width=0.7, color=colour)
        else:
            ax.vlines(dates, 0, values, color=colour, lw=max(0.5, 300 / len(dates)))
        ax.set_ylim(0, max(max(values), 1) * 1.15)
        ax.set_ylabel(label, color=colour)
        ax.grid(axis="y", color="#e4e7eb", lw=0.6)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    half_day = np.timedelta64(12, "h")
    carbs_ax.set_xlim(dates[0] - half_day, dates[-1] + half_day)
    if len(dates) <= 31:
        # whole days only: the automatic locator puts 12:00 ticks between a few days
        carbs_ax.xaxis.set_major_locator(DayLocator(interval=-(-len(dates) // 8)))
        carbs_ax.xaxis.set_major_formatter(DateFormatter("%-d %b"))
    else:
        locator = AutoDateLocator(minticks=4, maxticks=10)
        carbs_ax.xaxis.set_major_locator(locator)
        carbs_ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    return [insulin_ax, carbs_ax]
