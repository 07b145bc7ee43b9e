#!/bin/sh
# Start a Dagster service after giving the lake_writers pool its limit from CASCADE_LAKE_WRITERS
# (dagster.yaml cannot read a pool limit from the environment; the instance's storage can hold it).
set -eu
dagster instance concurrency set lake_writers "${CASCADE_LAKE_WRITERS:-4}" >/dev/null
exec "$@"
