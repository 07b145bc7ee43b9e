"""What the CLI runs: the pipeline in-process, a backfill, the Dagster UI (`cascade dev`).

Public and stable: `cascade.cli` imports these names.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from cascade.backfill import BackfillReport, RunSummary, chunks, run_backfill
from cascade.pipeline import (
    PipelineResult,
    last_days,
    nightscout_pipeline_job,
    partition_range_tags,
    prepare_dagster_home,
    root_cause,
    run_pipeline,
)
from cascade.settings import Settings

__all__ = [
    "BackfillReport",
    "PipelineResult",
    "RunSummary",
    "chunks",
    "dagster_dev_command",
    "dev",
    "last_days",
    "nightscout_pipeline_job",
    "partition_range_tags",
    "prepare_dagster_home",
    "root_cause",
    "run_backfill",
    "run_pipeline",
]


def dagster_dev_command(settings: Settings, port: int | None = None) -> tuple[list[str], dict]:
    """(argv, environment) of `dagster dev` over cascade's code location and instance."""
    home = prepare_dagster_home(settings)
    dagster = str(Path(sys.executable).parent / "dagster")
    argv = [dagster, "dev", "-m", "cascade.definitions"]
    if port is not None:
        argv += ["--port", str(port)]
    return argv, {**os.environ, "DAGSTER_HOME": str(home)}


def dev(settings: Settings, port: int | None = None) -> None:
    """Replace this process by `dagster dev` (the UI) over cascade's definitions."""
    argv, env = dagster_dev_command(settings, port)
    os.execve(argv[0], argv, env)
