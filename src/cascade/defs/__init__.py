"""Dagster for cascade: partitions, assets, jobs, schedules, sensors, resources, runners.

`cascade.definitions` assembles them; `cascade.defs.runners` launches them from the CLI.
"""
