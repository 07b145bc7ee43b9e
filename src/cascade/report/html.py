"""The report as one self-contained HTML page: CSS inline, charts as base64 PNG data URIs."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from .charts import comparison_rows
from .data import ReportData, targets
from .page import FOOTNOTES, Rendered, agp_title, daily_title
from .units import BANDS, Units, pct

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Chart:
    """One embedded chart image."""

    name: str
    alt: str
    base64: str


def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def charts(data: ReportData, rendered: Rendered) -> dict[str, Chart]:
    """The chart images by name, each with a text alternative."""
    alts = {
        "agp": agp_title(data) + ": median, 25–75% and 5–95% percentiles by time of day",
        "gri": "Glycemia Risk Index: hypoglycaemia against hyperglycaemia component, zones A–E",
        "daily": daily_title(data) + ": each day's glucose over 24 hours",
        "treatments": "Daily insulin (basal and bolus) and carbohydrates",
    }
    return {
        name: Chart(name, alts[name], base64.b64encode(image).decode("ascii"))
        for name, image in rendered.sections.items()
    }


def render_html(data: ReportData, units: Units, rendered: Rendered) -> str:
    """The HTML page of the report."""
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            data=data,
            s=data.summary,
            units=units,
            pct=pct,
            bands=BANDS,
            targets=targets(data, units),
            charts=charts(data, rendered),
            comparison=comparison_rows(data, units),
            notes=[*data.notes, *FOOTNOTES],
            generated=datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        )
    )
