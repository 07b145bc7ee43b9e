"""The lake: `connect()` for a fresh DuckDB session with the lake attached (read-write, or
read-only), `connect_at_build()` for readers that must see one completed dbt build."""

from cascade.lake.connection import LakeError, connect, connect_at_build

__all__ = ["LakeError", "connect", "connect_at_build"]
