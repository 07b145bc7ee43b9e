"""Dagster definitions for cascade: ingestion, dbt, checks, jobs, schedules, publishing."""

from cascade.defs.build import build_definitions

__all__ = ["build_definitions"]
