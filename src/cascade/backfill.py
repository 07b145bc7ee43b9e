"""Moved to `cascade.defs.runners`; kept while the CLI still imports it from here."""

from cascade.defs.runners import BackfillReport, RunSummary, chunks, run_backfill  # noqa: F401
