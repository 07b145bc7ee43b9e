"""The PostgreSQL catalog server as `cascade health` sees it: one read-only probe session.

The session is read-only with lock and statement timeouts, so a locked catalog fails the
check instead of hanging it; it reports other sessions and locks of the catalog database.
"""

from __future__ import annotations

from datetime import timedelta

from cascade.settings import Settings

Result = tuple[bool, str, dict]
PG_CONNECT_TIMEOUT_S = 3
# for every libpq session of a health run, DuckDB's included (libpq reads PGOPTIONS)
PG_OPTIONS = "-c default_transaction_read_only=on -c lock_timeout=2000 -c statement_timeout=10000"

PG_SESSIONS = """
select pid, usename, application_name, state,
    extract(epoch from now() - query_start)::float8,
    extract(epoch from now() - state_change)::float8,
    left(regexp_replace(query, '\\s+', ' ', 'g'), 160)
from pg_stat_activity
where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'
"""
# advisory locks are cascade's own queue (one dbt build at a time): waiting there is normal
PG_LOCKS = """
select l.pid, l.locktype, l.mode, l.granted, coalesce(c.relname, l.locktype),
    extract(epoch from now() - coalesce(l.waitstart, a.xact_start))::float8,
    pg_blocking_pids(l.pid)
from pg_locks l join pg_stat_activity a on a.pid = l.pid left join pg_class c on c.oid = l.relation
where a.datname = current_database() and l.pid <> pg_backend_pid()
    and (not l.granted or l.locktype = 'relation') and l.locktype <> 'advisory'
"""


def probe_postgres(settings: Settings) -> dict:
    """One read-only session on the catalog database, closed before returning."""
    import psycopg2
    from psycopg2 import sql

    catalog = settings.catalog
    password = catalog.password.get_secret_value()
    con = psycopg2.connect(
        host=catalog.host,
        port=catalog.port,
        user=catalog.user,
        dbname=catalog.database,
        connect_timeout=PG_CONNECT_TIMEOUT_S,
        application_name="cascade-health",
        options=PG_OPTIONS,
        **({"password": password} if password else {}),
    )
    try:
        con.set_session(readonly=True, autocommit=True)
        with con.cursor() as cur:
            cur.execute("show server_version")
            probe = {"server_version": cur.fetchone()[0], "version": None}
            cur.execute(
                "select table_name from information_schema.tables where table_schema = %s",
                [settings.metadata_schema],
            )
            probe["tables"] = {row[0] for row in cur.fetchall()}
            if "ducklake_metadata" in probe["tables"]:
                query = sql.SQL("select value from {}.ducklake_metadata where key = 'version'")
                cur.execute(query.format(sql.Identifier(settings.metadata_schema)))
                probe["version"] = (cur.fetchone() or [None])[0]
            cur.execute(PG_SESSIONS)
            probe["sessions"] = cur.fetchall()
            cur.execute(PG_LOCKS)
            probe["locks"] = cur.fetchall()
    finally:
        con.close()
    return probe


def sessions(probe: dict, stale_after: timedelta) -> Result:
    """Queries running, and transactions left idle, for longer than `stale_after`."""
    limit = stale_after.total_seconds()
    long_running, idle = [], []
    for pid, user, app, state, query_age, state_age, query in probe["sessions"]:
        info = {"pid": pid, "user": user, "application": app, "state": state, "query": query}
        if state == "active" and (query_age or 0) > limit:
            long_running.append(info | {"seconds": round(query_age)})
        elif (state or "").startswith("idle in transaction") and (state_age or 0) > limit:
            idle.append(info | {"seconds": round(state_age)})
    data = {"sessions": len(probe["sessions"]), "long_running": long_running, "idle": idle}
    detail = f"{len(probe['sessions'])} other sessions on the catalog database"
    if long_running or idle:
        pids = ", ".join(str(s["pid"]) for s in long_running + idle)
        return (
            False,
            f"{detail}: {len(long_running)} queries running and {len(idle)} transactions idle "
            f"for over {humanize(stale_after)} (pids {pids})",
            data,
        )
    return True, f"{detail}; none running or idle in a transaction too long", data


def locks(probe: dict, stale_after: timedelta) -> Result:
    """Lock waits, and exclusive locks held, for longer than `stale_after`: a stuck catalog."""
    limit = stale_after.total_seconds()
    waiting, exclusive, old = [], [], []
    for pid, kind, mode, granted, target, age, blockers in probe["locks"]:
        info = {"pid": pid, "lock": kind, "mode": mode, "on": target, "seconds": round(age or 0)}
        if (age or 0) <= limit:
            continue
        if not granted:
            waiting.append(info | {"blocked_by": list(blockers or [])})
        elif mode == "AccessExclusiveLock":
            exclusive.append(info)
        else:
            old.append(info)
    data = {"waiting": waiting, "exclusive": exclusive, "held_by_old_transactions": old}
    over = f"for over {humanize(stale_after)}"
    if waiting or exclusive:
        who = [f"pid {w['pid']} waits on {w['on']} (blocked by {w['blocked_by']})" for w in waiting]
        who += [f"pid {x['pid']} holds an exclusive lock on {x['on']}" for x in exclusive]
        return False, f"{over}: {'; '.join(who)} (end them with pg_terminate_backend)", data
    note = f"; {len(old)} locks held by transactions open {over}" if old else ""
    return True, f"no lock waited on or held exclusively {over}{note}", data


def humanize(delta: timedelta) -> str:
    seconds = abs(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:,.3g} {unit}"
    return f"{seconds:.0f} s"


def pg_hint(message: str) -> str:
    """What to check, given a PostgreSQL error message."""
    lowered = message.lower()
    if "role" in lowered or "password" in lowered or "authentication" in lowered:
        return "check the user and password in CASCADE_CATALOG_URL"
    if "timeout" in lowered and "canceling statement" in lowered:
        return "the catalog is locked or overloaded: look for the session holding it in pg_locks"
    if "database" in lowered and "does not exist" in lowered:
        return "check the database name in CASCADE_CATALOG_URL; create it with `createdb`"
    return "is PostgreSQL running and reachable? check host and port in CASCADE_CATALOG_URL"
