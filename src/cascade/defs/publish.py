"""Copy the gold marts into a PostgreSQL schema `marts` for BI tools.

Each table is replaced atomically: the new copy is built beside the old one and swapped in by
a rename inside one PostgreSQL transaction, so a reader always sees a complete table.
"""

from collections.abc import Iterable

import dagster as dg

from cascade.defs.partitions import LAKE_POOL
from cascade.defs.resources import CascadeResource
from cascade.lake.connection import connect_at_build, quote
from cascade.settings import GOLD_MARTS, CatalogUrl, Settings

MARTS_SCHEMA = "marts"
MARTS_SECRET = "cascade_marts"


def publish_marts(settings: Settings, tables: Iterable[str] = GOLD_MARTS) -> dict[str, int]:
    """Replace marts.<table> in CASCADE_MARTS_URL with the lake's gold.<table>; rows per table."""
    if settings.marts_url is None:
        raise ValueError("set CASCADE_MARTS_URL (postgresql://...) to publish the marts")
    target = CatalogUrl(settings.marts_url.get_secret_value())
    published = {}
    # as of the last completed build: never a mart half-way through a dbt build
    with connect_at_build(settings) as con:
        con.execute(
            f"create or replace secret {MARTS_SECRET} (type postgres, host {quote(target.host)}, "
            f"port {target.port}, database {quote(target.database)}, user {quote(target.user)}, "
            f"password {quote(target.password.get_secret_value())})"
        )
        con.execute(f"attach '' as marts_pg (type postgres, secret {MARTS_SECRET})")
        con.execute(f"create schema if not exists marts_pg.{MARTS_SCHEMA}")
        for table in tables:
            staged = f"marts_pg.{MARTS_SCHEMA}.{table}__next"
            con.execute("begin")
            con.execute(f"drop table if exists {staged}")
            con.execute(
                f"create table {staged} as select * from {settings.lake_alias}.gold.{table}"
            )
            con.execute(f"drop table if exists marts_pg.{MARTS_SCHEMA}.{table}")
            con.execute(f"alter table {staged} rename to {table}")
            con.execute("commit")
            published[table] = con.execute(
                f"select count(*) from marts_pg.{MARTS_SCHEMA}.{table}"
            ).fetchone()[0]
    return published


@dg.asset(
    key=dg.AssetKey(["marts", "published"]),
    deps=[dg.AssetKey(["gold", table]) for table in GOLD_MARTS],
    group_name="publish",
    kinds={"postgres"},
    pool=LAKE_POOL,
    description="The gold marts copied into PostgreSQL schema `marts` (CASCADE_MARTS_URL)",
)
def published_marts(context: dg.AssetExecutionContext, cascade: CascadeResource):
    rows = publish_marts(cascade.settings())
    context.log.info(f"published {len(rows)} marts: {rows}")
    return dg.MaterializeResult(metadata={f"rows_{t}": n for t, n in rows.items()})
