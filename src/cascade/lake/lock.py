"""Serialise writers on the local profile and dbt builds everywhere, with bounded waits.

A SQLite catalog copes with several processes only by retrying on a busy database, and a dlt
merge or dbt build is many commits long: an exclusive file lock next to the catalog makes local
writers queue instead of racing. It is an OS lock (flock, through filelock), so a killed process
releases it; the holder writes who it is into a file beside it (`<lock>.holder`).
dbt builds share fixed temporary table names, so on PostgreSQL they queue on an advisory lock.

No wait is endless: after `CASCADE_LOCK_TIMEOUT_S` the waiter stops with a message naming the
holder (pid, host and command of a local process; backend pid, application and start time of a
PostgreSQL session), so a stuck build is found instead of silently stalling every later one.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout

from cascade.settings import Settings

POLL_S = 0.1


class LockTimeout(TimeoutError):
    """A lock was not acquired in time; the message names the holder and what to do."""


def _holder_record() -> str:
    command = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))
    return json.dumps(
        {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": command[:200],
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    )


def holder_file(path: Path) -> Path:
    """Where the holder of the file lock at `path` writes its pid, host and command."""
    return path.with_name(path.name + ".holder")


def describe_holder(path: Path) -> str:
    """Who holds the file lock at `path`, as its holder wrote it down."""
    try:
        holder = json.loads(holder_file(path).read_text() or "{}")
    except (OSError, ValueError):
        holder = {}
    if not holder:
        return "an unknown process"
    return (
        f"pid {holder.get('pid')} on {holder.get('host')} ({holder.get('command')!r}, "
        f"holding since {holder.get('since')})"
    )


@contextmanager
def file_lock(path: Path, timeout_s: float) -> Iterator[float]:
    """Hold an exclusive lock on `path`; yields the seconds spent waiting.

    The holder writes its pid, host and command beside the lock, so a waiter that gives up
    after `timeout_s` can say who to look at.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    lock = FileLock(path, timeout=timeout_s, poll_interval=POLL_S)
    try:
        lock.acquire()
    except Timeout:
        raise LockTimeout(
            f"waited {timeout_s:g} s for the lake's writer lock {path}, held by "
            f"{describe_holder(path)}; wait for it to finish, stop it if it is stuck, "
            "or raise CASCADE_LOCK_TIMEOUT_S"
        ) from None
    holder = holder_file(path)
    try:
        holder.write_text(_holder_record())
        yield time.monotonic() - started
    finally:
        holder.write_text("")
        lock.release()


def is_locked(path: Path) -> bool:
    """Whether another holder has the file lock at `path` now (it must exist)."""
    probe = FileLock(path, timeout=0)
    try:
        probe.acquire()
    except Timeout:
        return True
    probe.release()
    return False


@contextmanager
def writer_lock(settings: Settings, timeout_s: float | None = None) -> Iterator[float]:
    """Hold the lake's writer lock (local profile only); yields the seconds spent waiting."""
    if settings.profile == "scale":
        yield 0.0
        return
    timeout = settings.lock_timeout_s if timeout_s is None else timeout_s
    with file_lock(settings.home / "writer.lock", timeout) as waited:
        yield waited


HOLDER_QUERY = """
select a.pid, a.application_name, a.client_addr::text, a.backend_start, a.query_start, a.state
from pg_locks l join pg_stat_activity a on a.pid = l.pid
where l.locktype = 'advisory' and l.granted and l.objsubid = 1
  and l.database = (select oid from pg_database where datname = current_database())
  and l.objid::bigint = (hashtext(%s)::bigint & 4294967295)
"""


def _pg_holder(cursor, key: str) -> str:
    cursor.execute(HOLDER_QUERY, [key])
    row = cursor.fetchone()
    if row is None:
        return "a session that has since let go"
    pid, app, addr, backend_start, query_start, state = row
    return (
        f"PostgreSQL backend pid {pid} ({app or 'no application_name'!r} from "
        f"{addr or 'a local socket'}, connected {backend_start:%Y-%m-%d %H:%M:%S %Z}, "
        f"last query at {query_start:%H:%M:%S}, {state})"
    )


@contextmanager
def advisory_lock(settings: Settings, key: str, timeout_s: float) -> Iterator[float]:
    """Hold a session-level advisory lock on `key` in the catalog database.

    The server releases it by itself if the holder dies. `lock_timeout` bounds the wait; on
    expiry the holder is looked up in pg_locks / pg_stat_activity and named in the error.
    """
    import psycopg2
    from psycopg2 import errors

    catalog = settings.catalog
    started = time.monotonic()
    application = f"cascade lock pid={os.getpid()} host={socket.gethostname()}"[:63]
    con = psycopg2.connect(
        host=catalog.host,
        port=catalog.port,
        dbname=catalog.database,
        user=catalog.user,
        password=catalog.password.get_secret_value() or None,
        connect_timeout=10,
        application_name=application,
    )
    con.autocommit = True
    try:
        with con.cursor() as cursor:
            cursor.execute(
                "select set_config('lock_timeout', %s, false)", [f"{timeout_s * 1000:.0f}"]
            )
            try:
                cursor.execute("select pg_advisory_lock(hashtext(%s))", [key])
            except errors.LockNotAvailable:
                raise LockTimeout(
                    f"waited {timeout_s:g} s for the lock {key!r} on {catalog.redacted()}, held "
                    f"by {_pg_holder(cursor, key)}; wait for it, end it with "
                    "pg_terminate_backend(<pid>) if it is stuck, or raise CASCADE_LOCK_TIMEOUT_S"
                ) from None
            cursor.execute("set lock_timeout = 0")
            try:
                yield time.monotonic() - started
            finally:
                cursor.execute("select pg_advisory_unlock(hashtext(%s))", [key])
    finally:
        con.close()


@contextmanager
def transform_lock(settings: Settings, timeout_s: float | None = None) -> Iterator[float]:
    """Hold the lake's dbt lock; yields the seconds spent waiting.

    dbt rebuilds shared tables through fixed temporary names (`<model>__dbt_tmp`), so two
    builds on one lake must not overlap even where ingestion runs in parallel. Locally the
    writer lock serves; on PostgreSQL a session-level advisory lock in the catalog database.
    """
    timeout = settings.lock_timeout_s if timeout_s is None else timeout_s
    if settings.profile == "local":
        with writer_lock(settings, timeout) as waited:
            yield waited
        return
    with advisory_lock(settings, f"cascade:transform:{settings.lake_alias}", timeout) as waited:
        yield waited


@contextmanager
def merge_lock(settings: Settings, timeout_s: float | None = None) -> Iterator[float]:
    """Serialise the merge step of raw loads on the scale profile; yields the seconds waited.

    DuckLake has no primary keys: two concurrent merges of the same new key each find it
    absent and each insert it, and raw keeps both rows. Fetching and normalising still run in
    parallel; only dlt's load step (staging -> merge, usually well under a second) takes turns.
    Locally the writer lock already serialises whole loads.
    """
    if settings.profile == "local":
        yield 0.0
        return
    timeout = settings.lock_timeout_s if timeout_s is None else timeout_s
    with advisory_lock(settings, f"cascade:merge:{settings.lake_alias}", timeout) as waited:
        yield waited
