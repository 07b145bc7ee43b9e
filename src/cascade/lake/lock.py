"""Serialise writers on the local profile; PostgreSQL catalogs take concurrent writers.

A SQLite catalog copes with several processes only by retrying on a busy database, and a dlt
merge or dbt build is many commits long: an exclusive file lock next to the catalog makes local
writers queue instead of racing. It is an OS lock (flock), so a killed process releases it.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager

from cascade.settings import Settings


@contextmanager
def writer_lock(settings: Settings, timeout_s: float = 3600.0) -> Iterator[float]:
    """Hold the lake's writer lock (local profile only); yields the seconds spent waiting."""
    if settings.profile == "scale":
        yield 0.0
        return
    settings.home.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with open(settings.home / "writer.lock", "w") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() - started > timeout_s:
                    raise TimeoutError(
                        f"another cascade process has held {settings.home / 'writer.lock'} "
                        f"for over {timeout_s:.0f} s"
                    ) from None
                time.sleep(0.1)
        try:
            yield time.monotonic() - started
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def transform_lock(settings: Settings) -> Iterator[float]:
    """Hold the lake's dbt lock; yields the seconds spent waiting.

    dbt rebuilds shared tables through fixed temporary names (`<model>__dbt_tmp`), so two
    builds on one lake must not overlap even where ingestion runs in parallel. Locally the
    writer lock serves; on PostgreSQL a session-level advisory lock in the catalog database,
    which the server releases by itself if the holder dies.
    """
    if settings.profile == "local":
        with writer_lock(settings) as waited:
            yield waited
        return
    import psycopg2

    catalog = settings.catalog
    started = time.monotonic()
    con = psycopg2.connect(
        host=catalog.host,
        port=catalog.port,
        dbname=catalog.database,
        user=catalog.user,
        password=catalog.password.get_secret_value() or None,
        connect_timeout=10,
        application_name="cascade transform lock",
    )
    con.autocommit = True
    key = f"cascade:transform:{settings.lake_alias}"
    try:
        with con.cursor() as cursor:
            cursor.execute("select pg_advisory_lock(hashtext(%s))", [key])
            try:
                yield time.monotonic() - started
            finally:
                cursor.execute("select pg_advisory_unlock(hashtext(%s))", [key])
    finally:
        con.close()
