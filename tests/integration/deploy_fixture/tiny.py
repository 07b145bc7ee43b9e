"""The smallest code location for the deploy test: one op in the lake_writers pool."""

import dagster as dg


@dg.op(pool="lake_writers")
def hello() -> int:
    return 1


@dg.job
def tiny() -> None:
    hello()


defs = dg.Definitions(jobs=[tiny])
