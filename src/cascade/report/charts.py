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

from .clinical import GRI_ZONES, Trace, gri
from .data import AGP_BINS, MAX_TRACE_DAYS, Agp, Day, ReportData, Summary, targets
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
MAX_DAILY_PANELS = MAX_TRACE_DAYS
BASAL = "#8fb3e0"
BETTER, WORSE = "#2e7d32", "#c62828"
GRI_COLOURS = ("#d4edda", "#fff3b0", "#ffd59a", "#f9b38a", "#f28b82")
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
    """The 24-hour profile: median, 25–75 and 5–95 percentile bands over the target range.

    The curves are the smoothed percentiles (Agp.smoothed), as the IDC's AGP draws them.
    """
    ax = fig.add_subplot()
    hours = (np.arange(-1, AGP_BINS + 1) + 0.5) / 4
    p = {name: units.convert(_wrap(values)) for name, values in agp.smoothed.items()}
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
    gmi = "GMI, provisional" if data.provisional else "Glucose Management Indicator (GMI)"
    rows = [
        ("Mean glucose", f"{units.glucose(s.mean_mg_dl)} {units.name}"),
        (gmi, f"{pct(s.gmi_pct)}%"),
        ("Glucose variability (CV)", f"{pct(s.cv_pct)}%"),
        ("Standard deviation (SD)", f"{units.glucose(s.sd_mg_dl)} {units.name}"),
        ("Readings", f"{s.readings:,}"),
        ("Time CGM active", f"{pct(s.wear_pct)}%"),
    ]
    insulin = data.insulin
    if insulin is not None:
        rows += [
            (f"Total daily insulin (mean of {insulin.days} full days)", f"{insulin.total_u:.1f} U"),
            ("   basal", f"{insulin.basal_u:.1f} U · {pct(insulin.basal_pct)}%"),
            ("   bolus", f"{insulin.bolus_u:.1f} U · {pct(100 - (insulin.basal_pct or 100))}%"),
        ]
    elif data.has_treatments:
        rows.append(("Bolus insulin, mean per day", f"{data.insulin_per_day:.1f} U"))
    else:
        rows.append(("Total daily insulin", "not available"))
    if data.has_treatments:
        rows.append(("Carbohydrates, mean per day", f"{data.carbs_per_day:.0f} g"))
    fig.text(0.02, 0.97, "Glucose statistics", va="top", fontsize=11, weight="bold")
    step = min(0.1, 0.8 / len(rows))
    for i, (label, value) in enumerate(rows):
        y = 0.85 - i * step
        fig.text(0.04, y, label, va="center", fontsize=8.5)
        fig.text(0.98, y, value, va="center", ha="right", fontsize=10, weight="bold")


def draw_targets(fig: Canvas, data: ReportData, units: Units) -> None:
    """The consensus targets, the period's values and whether each is met."""
    fig.text(0.02, 0.97, "Consensus targets", va="top", fontsize=11, weight="bold")
    fig.text(
        0.02,
        0.88,
        "Battelino et al., Diabetes Care 2019 (most adults)"
        + ("\nPROVISIONAL: too little data" if data.provisional else ""),
        va="top",
        fontsize=7.5,
        color=WORSE if data.provisional else MUTED,
    )
    rows = targets(data, units)
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
    """Daily glucose profiles, seven days to a row: each day's readings over 24 hours."""
    shown = daily_days(data)
    by_date = {d.local_date: d for d in data.days}
    axes = fig.subplots(daily_rows(data), DAYS_PER_ROW, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for i, day in enumerate(shown):
        row, column = divmod(i, DAYS_PER_ROW)
        _day_panel(
            axes[row][column], day, by_date.get(day), data.traces.get(day), units, column == 0
        )


def _day_panel(
    ax, day: date, stats: Day | None, trace: Trace | None, units: Units, first_column: bool
) -> None:
    ax.set_axis_on()
    ax.set_xlim(0, 24)
    _glucose_axis(ax, units, 400, [TARGET_LOW, TARGET_HIGH, 250], labels=first_column)
    ax.tick_params(axis="both", labelsize=6, length=2, pad=1)
    ax.set_xticks([0, 12, 24])
    ax.set_xticklabels(["", "12", ""])
    partial = stats is not None and stats.partial
    title = f"{day:%a} {day.day} {day:%b}" + (" · partial" if partial else "")
    ax.set_title(title, fontsize=6.5, pad=2, loc="left", color=WORSE if partial else INK)
    for spine in ax.spines.values():
        spine.set_color("#c3cad3")
    if stats is None or trace is None or not len(trace.hours):
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", fontsize=6.5, color=MUTED)
        return
    hours = trace.hours
    # a gap over 45 min breaks the line rather than bridging missing data
    glucose = np.asarray(trace.glucose, dtype=float)
    breaks = np.flatnonzero(np.diff(hours) > 0.75) + 1
    hours = np.insert(hours, breaks, np.nan)
    glucose = np.insert(glucose, breaks, np.nan)
    g = units.convert(glucose)
    high, low = units.convert(TARGET_HIGH), units.convert(TARGET_LOW)
    ax.fill_between(hours, high, g, where=g > high, color="#f5b83d", lw=0, interpolate=True)
    ax.fill_between(hours, low, g, where=g < low, color="#e53935", lw=0, interpolate=True)
    ax.plot(hours, g, color=MEDIAN, lw=0.6)
    lines = [f"in range {stats.bands['target']:.0f}%" + (f" · {stats.partial}" if partial else "")]
    ax.set_xlabel("\n".join(lines), fontsize=6.5, labelpad=1, color=INK)


def draw_gri(fig: Canvas, data: ReportData) -> None:
    """The GRI grid (Klonoff et al., 2023): hypoglycaemia component against hyperglycaemia
    component, zones A–E by GRI = 3.0 × hypo + 1.6 × hyper, and this period's point on it."""
    ax = fig.add_subplot()
    x, y = np.meshgrid(np.linspace(0, 30, 301), np.linspace(0, 60, 301))
    levels = [0, *(high for _, _, high in GRI_ZONES[:-1]), 1000]
    ax.contourf(x, y, 3.0 * x + 1.6 * y, levels=levels, colors=GRI_COLOURS)
    ax.contour(x, y, 3.0 * x + 1.6 * y, levels=levels[1:-1], colors="#9aa5b1", linewidths=0.6)
    for zone, low, high in GRI_ZONES:
        # on the diagonal hyper = 2 × hypo, halfway through the zone: 3x + 1.6 × 2x = middle
        x = (low + high) / 2 / 6.2
        ax.text(x, 2 * x, zone, fontsize=10, weight="bold", color="#4a5563", ha="center")
    previous = data.comparison.previous if data.comparison else None
    if previous is not None:
        before = gri(previous.bands)
        ax.plot(
            before.hypo,
            before.hyper,
            "o",
            ms=6,
            mfc="white",
            mec=INK,
            mew=1.2,
            label=f"period before: GRI {before.value:.0f}",
            clip_on=False,
        )
    now = data.gri
    ax.plot(
        now.hypo,
        now.hyper,
        "o",
        ms=8,
        color=INK,
        clip_on=False,
        label=f"this period: GRI {now.value:.0f} (zone {now.zone})",
    )
    ax.set_xlim(0, 30)
    ax.set_ylim(0, 60)
    ax.set_xlabel("Hypoglycaemia component (%)\nvery low + 0.8 × low", fontsize=7.5)
    ax.set_ylabel("Hyperglycaemia component (%)\nvery high + 0.5 × high", fontsize=7.5)
    ax.tick_params(labelsize=7)
    ax.legend(loc="upper right", fontsize=6.5, frameon=True, framealpha=0.9)


def draw_episodes(fig: Canvas, data: ReportData) -> None:
    """The consensus episode counts of the period, or 'not available' before the mart exists."""
    fig.text(
        0.02, 0.95, "Glucose events (consensus episodes)", va="top", fontsize=11, weight="bold"
    )
    episodes = data.episodes
    if episodes is None:
        fig.text(
            0.04,
            0.4,
            "Not available: this lake has no episode counts yet.",
            va="top",
            fontsize=8.5,
            color=MUTED,
        )
        return
    fig.text(
        0.02,
        0.8,
        "≥15 min beyond the threshold opens an event, ≥15 min back ends it "
        "(Battelino et al., 2023)",
        va="top",
        fontsize=7,
        color=MUTED,
    )
    heads = [(0.62, "events"), (0.8, "per day"), (0.98, "mean duration")]
    for x, head in heads:
        fig.text(x, 0.66, head, ha="right", va="center", fontsize=7.5, color=MUTED)
    step = 0.6 / len(episodes.rows)
    for i, row in enumerate(episodes.rows):
        y = 0.55 - i * step
        fig.text(0.04, y, f"{row.label} ({row.threshold})", va="center", fontsize=8)
        values = [
            "–" if row.episodes is None else f"{row.episodes}",
            "–" if row.per_day is None else f"{row.per_day:.1f}",
            "–" if row.mean_duration_min is None else f"{row.mean_duration_min:.0f} min",
        ]
        for (x, _), value in zip(heads, values, strict=True):
            fig.text(x, y, value, ha="right", va="center", fontsize=9, weight="bold")


def comparison_rows(data: ReportData, units: Units) -> list[tuple]:
    """(key, label, previous, current, change as shown, arrow, colour) of the period comparison.

    An arrow is green when the change goes the consensus's way (more time in range, less time
    below or above, lower CV, more CGM wear), red when it goes against it, grey for mean and GMI,
    whose better direction depends on the time below.
    """
    c = data.comparison
    if c is None:
        return []
    metrics = [
        ("tir", "Time in range", lambda s: s.bands["target"], 1),
        ("below_70", f"Time below {units.threshold(70)}", lambda s: s.pct_below_70, -1),
        ("above_180", f"Time above {units.threshold(180)}", lambda s: s.pct_above_180, -1),
        ("mean", "Mean glucose", lambda s: s.mean_mg_dl, 0),
        ("gmi", "GMI", lambda s: s.gmi_pct, 0),
        ("cv", "Variability (CV)", lambda s: s.cv_pct, -1),
        ("wear", "Time CGM active", lambda s: s.wear_pct, 1),
    ]
    rows = []
    for key, label, value, better in metrics:
        now = value(c.current)
        before = value(c.previous) if c.previous is not None else None
        shown = units.glucose if key == "mean" else pct
        suffix = "" if key == "mean" else "%"
        if before is None or now is None:
            rows.append((key, label, before, now, "–", "", MUTED, shown, suffix))
            continue
        change = now - before
        delta = units.convert(change) if key == "mean" else change
        text = (f"{delta:+.1f}" if units.is_mmol or key != "mean" else f"{delta:+.0f}") + (
            "" if key == "mean" else " pts"
        )
        arrow = "▲" if change > 0 else "▼" if change < 0 else "="
        colour = MUTED if better == 0 or change == 0 else BETTER if change * better > 0 else WORSE
        rows.append((key, label, before, now, text, arrow, colour, shown, suffix))
    return rows


def draw_comparison(fig: Canvas, data: ReportData, units: Units) -> None:
    """This period against the one before, metric by metric, with the change and its direction."""
    c = data.comparison
    fig.text(0.02, 0.95, "Compared with the period before", va="top", fontsize=11, weight="bold")
    if c is None:
        return
    before = c.previous_span
    fig.text(
        0.02,
        0.84,
        f"before: {before.first:%-d %b} – {before.last:%-d %b %Y}"
        + ("" if c.previous else " · no data"),
        va="top",
        fontsize=7.5,
        color=MUTED,
    )
    heads = [(0.6, "before"), (0.78, "this period"), (0.98, "change")]
    for x, head in heads:
        fig.text(x, 0.72, head, ha="right", va="center", fontsize=7.5, color=MUTED)
    rows = comparison_rows(data, units)
    step = 0.66 / len(rows)
    for i, (_, label, prev, now, change, arrow, colour, shown, suffix) in enumerate(rows):
        y = 0.62 - i * step
        fig.text(0.04, y, label, va="center", fontsize=8)
        fig.text(
            0.6,
            y,
            f"{shown(prev)}{suffix}" if prev is not None else "–",
            ha="right",
            va="center",
            fontsize=8.5,
        )
        fig.text(
            0.78, y, f"{shown(now)}{suffix}", ha="right", va="center", fontsize=8.5, weight="bold"
        )
        fig.text(
            0.98,
            y,
            f"{arrow} {change}",
            ha="right",
            va="center",
            fontsize=8.5,
            color=colour,
            weight="bold",
        )


def draw_treatments(fig: Canvas, data: ReportData) -> list:
    """Daily insulin (basal + bolus, U) above daily carbohydrates (g), sharing the date axis."""
    insulin_ax, carbs_ax = fig.subplots(2, 1, sharex=True)
    dates = np.array([d.local_date for d in data.days], dtype="datetime64[D]")
    if data.insulin is not None:
        by_date = {d.local_date: d for d in data.insulin.daily}
        basal = [by_date[d.local_date].basal_u if d.local_date in by_date else 0 for d in data.days]
        bolus = [by_date[d.local_date].bolus_u if d.local_date in by_date else 0 for d in data.days]
        insulin_label = "Insulin (U)"
    else:
        basal, bolus = [0.0] * len(dates), [d.bolus_insulin_u for d in data.days]
        insulin_label = "Bolus insulin (U)"
    series = [
        (insulin_ax, bolus, basal, INSULIN, insulin_label),
        (carbs_ax, [d.carbs_g for d in data.days], [0.0] * len(dates), CARBS, "Carbs (g)"),
    ]
    for ax, values, base, colour, label in series:
        tops = np.add(values, base)
        if len(dates) <= MAX_BARS:
            if any(base):
                ax.bar(dates, base, width=0.7, color=BASAL, label="basal")
            ax.bar(
                dates,
                values,
                width=0.7,
                bottom=base,
                color=colour,
                label="bolus" if any(base) else None,
            )
        else:
            ax.vlines(dates, 0, tops, color=colour, lw=max(0.5, 300 / len(dates)))
        if any(base) and len(dates) <= MAX_BARS:
            ax.legend(loc="upper left", fontsize=7, ncol=2, frameon=False)
        ax.set_ylim(0, max(max(tops), 1) * 1.25)
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
