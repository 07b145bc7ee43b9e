"""Moved to `cascade.defs.runners`; kept while the CLI still imports it from here."""

from cascade.defs.runners import (  # noqa: F401
    PipelineResult,
    last_days,
    nightscout_pipeline_job,
    partition_range_tags,
    prepare_dagster_home,
    root_cause,
    run_pipeline,
)
