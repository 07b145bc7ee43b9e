"""Weekly lake maintenance: compaction and snapshot expiry, safe beside running writers."""

from datetime import timedelta

import dagster as dg

from cascade.defs.resources import CascadeResource
from cascade.lake.maintenance import run_maintenance

KEEP_SNAPSHOTS = timedelta(days=7)


@dg.op
def maintain_lake(context: dg.OpExecutionContext, cascade: CascadeResource) -> None:
    """Flush inlined data, merge small files, expire week-old snapshots, delete old files."""
    report = run_maintenance(cascade.settings(), KEEP_SNAPSHOTS)
    context.log.info(report.describe())


@dg.job
def lake_maintenance() -> None:
    maintain_lake()
