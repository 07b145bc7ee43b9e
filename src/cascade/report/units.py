"""Glucose units, the five consensus bands and how every number of the report is written.

The marts hold mg/dL; the report converts for display only, so one formatter serves the HTML,
the PNG and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

MG_DL = "mg/dL"
MMOL_L = "mmol/L"
UNITS = (MG_DL, MMOL_L)
MG_DL_PER_MMOL_L = 18.0182


@dataclass(frozen=True)
class Band:
    """One consensus band: mart column suffix, label, its range in each unit, colour."""

    key: str
    label: str
    mg_dl: str
    mmol_l: str
    colour: str


# top to bottom, as the AGP report stacks them
BANDS = (
    Band("very_high", "Very high", ">250", ">13.9", "#d9531e"),
    Band("high", "High", "181–250", "10.1–13.9", "#f5b83d"),
    Band("target", "Target", "70–180", "3.9–10.0", "#3a9e4f"),
    Band("low", "Low", "54–69", "3.0–3.8", "#e53935"),
    Band("very_low", "Very low", "<54", "<3.0", "#8b1a1a"),
)
TARGET_LOW, TARGET_HIGH = 70, 180


@dataclass(frozen=True)
class Units:
    """Display of glucose values in mg/dL or mmol/L (1 mmol/L = 18.0182 mg/dL)."""

    name: str = MG_DL

    def __post_init__(self) -> None:
        if self.name not in UNITS:
            raise ValueError(f"glucose units must be one of {', '.join(UNITS)}, got {self.name!r}")

    @property
    def is_mmol(self) -> bool:
        return self.name == MMOL_L

    def convert(self, mg_dl: float) -> float:
        """A mg/dL value in these units."""
        return mg_dl / MG_DL_PER_MMOL_L if self.is_mmol else mg_dl

    def glucose(self, mg_dl: float | None) -> str:
        """A glucose value as shown: whole mg/dL, or mmol/L to one decimal."""
        if mg_dl is None:
            return "–"
        return f"{self.convert(mg_dl):.1f}" if self.is_mmol else f"{mg_dl:.0f}"

    def threshold(self, mg_dl: int) -> str:
        """A band limit as clinicians write it: 70 mg/dL is 3.9 mmol/L, 54 is 3.0."""
        return f"{self.convert(mg_dl):.1f}" if self.is_mmol else str(mg_dl)

    def band_range(self, band: Band) -> str:
        """The band's range as clinicians write it, e.g. 70–180 or 3.9–10.0."""
        return band.mmol_l if self.is_mmol else band.mg_dl


def pct(value: float | None) -> str:
    """A percentage (of readings, CV, GMI, wear) to one decimal, without the % sign."""
    return "–" if value is None else f"{value:.1f}"
