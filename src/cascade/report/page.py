"""The whole report as one tall matplotlib figure: the PNG, and the charts the HTML page embeds.

The figure is drawn once; the HTML's chart images are crops of its sections, so the page and
the PNG always show the same pictures (and the drawing, the slow part, happens once).
"""

from __future__ import annotations

import io
import textwrap
from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure, SubFigure
from PIL import Image

from . import charts
from .data import ReportData
from .units import Units, pct

WIDTH_IN = 8.5
DPI = 120
TITLE = "AGP Report: Continuous Glucose Monitoring"
HEADER_BG = "#1f3b5c"
DAILY_PANEL_IN = 0.8
DAILY_GAP_IN = 0.55  # a row's labels below and the next row's dates above
DAILY_TOP_IN = 0.55
DAILY_BOTTOM_IN = 0.6
NOTE_WIDTH = 150  # characters of a footnote line at 7 pt across the page
DAILY_KEY = (
    "Each day midnight to midnight (local time): the readings, orange above and red below the "
    "target range (shaded);\na gap over 45 min breaks the line; below each day: its time in range."
)

FOOTNOTES = (
    "Percentages are of CGM readings. AGP curves are smoothed for display, as the IDC AGP "
    "draws them: each 15-minute percentile is the mean of itself and the two bins either side "
    "(a 75-minute moving average), wrapping around midnight.",
    "Total daily insulin = basal (scheduled and temporary rates, none while suspended) + "
    "boluses (manual and automatic), as recorded in Nightscout; per-day means leave out a "
    "day still in progress, which the daily profiles mark as partial.",
    "GMI and targets are provisional when the period holds under 14 days of data or the CGM was "
    "active under 70% of the time (Battelino et al., 2019). The period comparison pools both "
    "periods' days the same way; GRI zones A (lowest risk) to E as in Klonoff et al., 2023.",
)


@dataclass
class Rendered:
    """The one-page PNG and PNG crops of its chart sections, by name."""

    page: bytes
    sections: dict[str, bytes]
    size: tuple[int, int]
    pdf: bytes = b""


def period_line(data: ReportData) -> str:
    """'1 Mar 2024 – 14 Mar 2024 · 14 days'."""
    s = data.summary
    return f"{s.first_day:%-d %b %Y} – {s.last_day:%-d %b %Y} · {s.days} days"


def agp_title(data: ReportData) -> str:
    """The AGP heading with the days its percentiles describe."""
    span = data.agp.span
    return (
        f"Ambulatory Glucose Profile (AGP) · {span.first:%-d %b %Y} – {span.last:%-d %b %Y} "
        f"({span.days} days)"
    )


def daily_title(data: ReportData) -> str:
    """The daily section's heading, saying when only the last days of the window are shown."""
    shown = charts.daily_days(data)
    total = (data.days[-1].local_date - data.days[0].local_date).days + 1
    suffix = f" (the last {len(shown)} of {total} days)" if len(shown) < total else ""
    return f"Daily glucose profiles{suffix}"


def _title(fig: SubFigure, text: str) -> None:
    fig.suptitle(text, x=0.01, ha="left", fontsize=11, weight="bold")


def _header(fig: SubFigure, data: ReportData) -> None:
    s = data.summary
    enough = data.sufficiency.sufficient if data.sufficiency else s.meets["wear_target"]
    wear = "meets" if enough else "below"
    muted = {"fontsize": 7.5, "va": "center", "color": charts.MUTED}
    fig.text(0.01, 0.82, f"Subject: {data.subject}", fontsize=12, weight="bold", va="center")
    fig.text(0.01, 0.55, period_line(data), fontsize=10.5, va="center")
    active = f"Time CGM active: {pct(s.wear_pct)}%"
    fig.text(0.99, 0.82, active, fontsize=10.5, ha="right", va="center", weight="bold")
    minimum = data.consensus.get("wear")
    goal = f"{s.readings:,} readings"
    if minimum is not None:
        goal += f" · {wear} the goal of ≥{minimum.min_days} days with {minimum.goal}"
    fig.text(0.99, 0.55, goal, ha="right", **{**muted, "fontsize": 8.5})
    fig.text(0.01, 0.30, f"Statistics: {s.source}", **muted)
    fig.text(0.01, 0.12, f"AGP: {data.agp_source}", **muted)
    if data.provisional:
        fig.text(
            0.99,
            0.25,
            f"PROVISIONAL: {data.sufficiency.reason()}",
            ha="right",
            va="center",
            fontsize=8.5,
            weight="bold",
            color=charts.WORSE,
        )


def note_lines(data: ReportData) -> list[str]:
    """The notes and footnotes wrapped to the page's width."""
    return [line for note in [*data.notes, *FOOTNOTES] for line in textwrap.wrap(note, NOTE_WIDTH)]


def _notes(fig: SubFigure, data: ReportData) -> None:
    lines = note_lines(data)
    for i, note in enumerate(lines):
        fig.text(
            0.01, 1 - (i + 0.6) / len(lines), note, fontsize=7, color=charts.MUTED, va="center"
        )


def _adjust(
    fig: SubFigure, size: tuple[float, float], margins: tuple[float, ...], **spaces
) -> None:
    """Place the section's axes by margins in inches (left, right, top, bottom)."""
    (width, height), (left, right, top, bottom) = size, margins
    fig.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        top=1 - top / height,
        bottom=bottom / height,
        **spaces,
    )


def daily_height(rows: int) -> float:
    """Inches of the daily section: heading, rows of panels with their labels, the key."""
    return DAILY_TOP_IN + rows * DAILY_PANEL_IN + (rows - 1) * DAILY_GAP_IN + DAILY_BOTTOM_IN


def draw_page(data: ReportData, units: Units) -> tuple[Figure, dict[str, SubFigure]]:
    """The report laid out like the AGP report; returns the figure and its sections by name.

    Sections are placed by fixed margins in inches rather than a layout engine: the page has a
    fixed width, and constrained layout would cost a third of the drawing time.
    """
    rows = charts.daily_rows(data)
    size = {
        "title": 0.45,
        "header": 1.0,
        "statistics": 3.5,
        "agp": 3.6,
        "risk": 3.0,
        "episodes": 1.5 if data.episodes else 0.7,
        "daily": daily_height(rows),
        "treatments": 2.8 if data.has_treatments else 0,
        "notes": 0.2 + 0.14 * len(note_lines(data)),
    }
    size = {name: height for name, height in size.items() if height}
    fig = Figure(figsize=(WIDTH_IN, sum(size.values())), facecolor="white")
    sections = dict(
        zip(size, fig.subfigures(len(size), 1, height_ratios=list(size.values())), strict=True)
    )
    title = sections["title"]
    title.set_facecolor(HEADER_BG)
    title.text(0.01, 0.5, TITLE, color="white", fontsize=14, weight="bold", va="center")
    title.text(
        0.99, 0.5, "cascade · gold marts", color="#c9d6e3", fontsize=8.5, ha="right", va="center"
    )
    _header(sections["header"], data)

    ratios = (1.25, 0.95, 1.1)
    left, middle, right = sections["statistics"].subfigures(1, 3, width_ratios=ratios)
    charts.draw_statistics(left, data, units)
    middle.suptitle("Time in ranges", x=0.04, ha="left", fontsize=11, weight="bold")
    charts.draw_band_bar(middle, data.summary, units)
    middle_size = (WIDTH_IN * ratios[1] / sum(ratios), size["statistics"])
    _adjust(middle, middle_size, (0.05, 0.05, 0.4, 0.1))
    charts.draw_targets(right, data, units)

    _title(sections["agp"], agp_title(data))
    charts.draw_agp(sections["agp"], data.agp, units)
    _adjust(sections["agp"], (WIDTH_IN, size["agp"]), (0.75, 0.25, 0.45, 0.85))

    gri, comparison = sections["risk"].subfigures(1, 2, width_ratios=(1.0, 1.15))
    _title(gri, "Glycemia Risk Index (GRI)")
    charts.draw_gri(gri, data)
    _adjust(gri, (WIDTH_IN * 1.0 / 2.15, size["risk"]), (0.85, 0.15, 0.4, 0.6))
    sections["gri"] = gri
    charts.draw_comparison(comparison, data, units)
    charts.draw_episodes(sections["episodes"], data)

    daily = sections["daily"]
    _title(daily, daily_title(data))
    daily.supxlabel(
        DAILY_KEY, x=0.01, y=0.02, ha="left", va="bottom", fontsize=7, color=charts.MUTED
    )
    charts.draw_daily(daily, data, units)
    _adjust(
        daily,
        (WIDTH_IN, size["daily"]),
        (0.45, 0.12, DAILY_TOP_IN, DAILY_BOTTOM_IN),
        wspace=0.1,
        hspace=DAILY_GAP_IN / DAILY_PANEL_IN,
    )
    if data.has_treatments:
        treatments = sections["treatments"]
        _title(treatments, "Daily insulin (basal + bolus) and carbohydrates")
        charts.draw_treatments(treatments, data)
        _adjust(treatments, (WIDTH_IN, size["treatments"]), (0.75, 0.25, 0.45, 0.5), hspace=0.25)
    _notes(sections["notes"], data)
    return fig, sections


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


def render(
    data: ReportData,
    units: Units,
    crops: tuple[str, ...] = ("agp", "gri", "daily", "treatments"),
) -> Rendered:
    """Draw the page once; return it as PNG and the named sections as PNG crops."""
    with charts.style():
        fig, sections = draw_page(data, units)
        canvas = FigureCanvasAgg(fig)
        fig.set_dpi(DPI)
        canvas.draw()
        pdf = io.BytesIO()
        # the same figure as vector PDF: one page, the PNG's layout (text stays selectable)
        fig.savefig(pdf, format="pdf", dpi=DPI, metadata={"Title": TITLE, "Creator": "cascade"})
    image = Image.fromarray(np.asarray(canvas.buffer_rgba())).convert("RGB")
    height = image.height
    cropped = {}
    for name in crops:
        if name in sections:
            box = sections[name].bbox
            edges = (box.x0, height - box.y1, box.x1, height - box.y0)
            cropped[name] = _png(image.crop(tuple(round(edge) for edge in edges)))
    return Rendered(_png(image), cropped, image.size, pdf.getvalue())
