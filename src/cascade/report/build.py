"""Make the report: read the gold marts, draw once, write the HTML page, the PNG and the PDF."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from cascade.settings import Settings

from .data import ReportData, ReportError, load_report
from .html import render_html
from .page import render
from .units import Units


@dataclass
class ReportFiles:
    """Where the report was written, and what it showed."""

    html: Path
    png: Path
    data: ReportData
    pdf: Path | None = None


def settings_units(settings: Settings) -> Units:
    """The glucose units the settings ask for (mg/dL unless set)."""
    try:
        return Units(settings.glucose_units)
    except ValueError as exc:
        raise ReportError(f"CASCADE_GLUCOSE_UNITS: {exc}") from None


def subject_slug(subject: str) -> str:
    """A file-name-safe, readable and unique form of `subject`: '<safe characters>-<hash>'.

    Reducing a name to safe characters maps 'ana b' and 'ana/b' to one slug; the short hash of
    the full subject id keeps their files apart.
    """
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", subject).strip("-.")[:60] or "subject"
    return f"{readable}-{hashlib.sha256(subject.encode()).hexdigest()[:8]}"


def file_stem(data: ReportData) -> str:
    """'agp_<subject slug>_<first day>_<last day>': one file per subject and period."""
    return f"agp_{subject_slug(data.subject)}_{data.summary.first_day}_{data.summary.last_day}"


def write_report(
    settings: Settings,
    out_dir: Path,
    subject: str | None = None,
    days: int | None = None,
    start: date | None = None,
    end: date | None = None,
    units: Units | None = None,
) -> ReportFiles:
    """Write `<stem>.html`, `<stem>.png` and `<stem>.pdf` into `out_dir` (created if missing)."""
    units = units or settings_units(settings)
    data = load_report(settings, subject, days, start, end)
    rendered = render(data, units)
    page = render_html(data, units, rendered)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        html = out_dir / f"{file_stem(data)}.html"
        png = html.with_suffix(".png")
        pdf = html.with_suffix(".pdf")
        html.write_text(page, encoding="utf-8")
        png.write_bytes(rendered.page)
        pdf.write_bytes(rendered.pdf)
    except OSError as exc:
        raise ReportError(f"cannot write the report to {out_dir}: {exc.strerror or exc}") from None
    return ReportFiles(html, png, data, pdf)
