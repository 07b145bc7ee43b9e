"""`cascade health` on real lakes: healthy, missing, empty, unreachable, locked; read-only."""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest
from click.testing import CliRunner

from cascade.cli.ops import health
from cascade.demo.server import DemoServer
from cascade.ingest import ingest_site
from cascade.lake.connection import connect, metadata_prefix
from cascade.lake.health import CHECKS, HealthOptions, check_health
from cascade.settings import Settings
from cascade.sources.nightscout.helpers import Window
from cascade.transform import run_transform
from tests.support import PG_PASSWORD, S3_KEY_ID, S3_SECRET, s3_client

SECRETS = (PG_PASSWORD, S3_KEY_ID, S3_SECRET)
REPORT_KEYS = {"ok", "profile", "lake_alias", "catalog", "seconds", "checks"}
CHECK_KEYS = {"name", "ok", "required", "detail", "data", "seconds"}


def cli_env(settings: Settings) -> dict[str, str]:
    """The CASCADE_* variables that make `Settings()` describe the same lake."""
    env = {"CASCADE_HOME": str(settings.home)}
    if settings.catalog_url is not None:
        env |= {
            "CASCADE_CATALOG_URL": settings.catalog_url.get_secret_value(),
            "CASCADE_DATA_PATH": settings.data_path,
            "CASCADE_S3_ENDPOINT": settings.s3_endpoint,
            "CASCADE_S3_USE_SSL": "false",
            "CASCADE_S3_ACCESS_KEY_ID": S3_KEY_ID,
            "CASCADE_S3_SECRET_ACCESS_KEY": S3_SECRET,
        }
    return env


def run_health(env: dict[str, str], *args: str) -> tuple[int, str, float]:
    """(exit code, stdout, seconds) of `cascade health ARGS`."""
    started = time.monotonic()
    result = CliRunner().invoke(health, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.stdout, time.monotonic() - started


def health_json(env: dict[str, str], *args: str) -> tuple[int, dict]:
    """Exit code and the JSON document, after checking the document's shape."""
    code, stdout, _ = run_health(env, "--json", *args)
    assert not any(secret in stdout for secret in SECRETS)
    document = json.loads(stdout)
    assert set(document) == REPORT_KEYS
    assert [check["name"] for check in document["checks"]] == list(CHECKS)
    for check in document["checks"]:
        assert set(check) == CHECK_KEYS
        assert isinstance(check["ok"], bool) and isinstance(check["required"], bool)
        assert isinstance(check["detail"], str) and isinstance(check["data"], dict)
    assert document["ok"] == all(c["ok"] for c in document["checks"] if c["required"])
    assert (code == 0) == document["ok"]
    return code, document


def checks(document: dict) -> dict[str, dict]:
    return {check["name"]: check for check in document["checks"]}


def lake_state(settings: Settings) -> tuple:
    """Snapshots and every file under the local home: what a writer would change."""
    with connect(settings, read_only=True) as con:
        snapshots = con.execute(
            f"select count(*), max(snapshot_id) from {metadata_prefix(settings)}.ducklake_snapshot"
        ).fetchone()
    files = sorted(str(p) for p in settings.home.rglob("*") if p.is_file())
    return snapshots, files


def build_healthy_lake(settings: Settings) -> None:
    """Two days up to now from the demo site, then every dbt model."""
    now = datetime.now(UTC)
    with DemoServer(now=now) as server:
        ingest_site(settings, Window(now - timedelta(days=2), now), server.url, "demo")
    run_transform(settings)


def test_a_healthy_lake_passes_every_check_and_health_changes_nothing(lake_settings: Settings):
    build_healthy_lake(lake_settings)
    before = lake_state(lake_settings)
    env = cli_env(lake_settings)

    code, document = health_json(env)
    failed = {name: c["detail"] for name, c in checks(document).items() if not c["ok"]}
    assert code == 0 and failed == {}
    found = checks(document)
    assert found["tables.raw"]["data"]["tables"]["entries"]["rows"] > 500
    assert found["tables.raw"]["data"]["tables"]["entries"]["columns"]["date_ms"] == "BIGINT"
    assert found["catalog"]["data"]["version"]
    assert found["configuration"]["data"]["profile"] == lake_settings.profile
    if lake_settings.profile == "scale":
        secrets = found["configuration"]["data"]["secrets"]
        assert secrets["catalog_password"] == secrets["s3_secret_access_key"] == "***"

    code, stdout, _ = run_health(env)
    assert code == 0 and "healthy" in stdout and "✓ tables.gold" in stdout
    assert not any(secret in stdout for secret in SECRETS)

    # freshness becomes required with --max-age; the newest reading is minutes old
    code, document = health_json(env, "--max-age", "1s")
    assert code == 1 and checks(document)["freshness"]["required"]
    assert lake_state(lake_settings) == before


def test_a_missing_lake_fails_fast_and_creates_nothing(local_settings: Settings):
    code, document = health_json(cli_env(local_settings))
    found = checks(document)
    assert code == 1
    assert "no lake at" in found["catalog"]["detail"]
    assert "cascade ingest" in found["catalog"]["detail"]
    assert found["attached"]["detail"] == "not run: catalog failed"
    assert found["extensions"]["ok"] and found["configuration"]["ok"]
    code, stdout, seconds = run_health(cli_env(local_settings))
    assert code == 1 and "✗ catalog" in stdout and "unhealthy" in stdout
    assert seconds < 10
    assert not local_settings.home.exists()


@pytest.mark.pg
def test_a_missing_scale_catalog_is_not_created(scale_settings: Settings, moto_endpoint: str):
    code, document = health_json(cli_env(scale_settings))
    assert code == 1 and "no DuckLake catalog" in checks(document)["catalog"]["detail"]
    con = psycopg2.connect(scale_settings.catalog_url.get_secret_value())
    try:
        with con.cursor() as cur:
            cur.execute(
                "select count(*) from information_schema.tables where table_schema <> "
                "'pg_catalog' and table_schema <> 'information_schema'"
            )
            assert cur.fetchone()[0] == 0
    finally:
        con.close()
    bucket = scale_settings.data_path.removeprefix("s3://").split("/")[0]
    s3 = s3_client(moto_endpoint)
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_an_empty_lake_says_what_to_run(lake_settings: Settings):
    with connect(lake_settings):
        pass
    before = lake_state(lake_settings)
    code, document = health_json(cli_env(lake_settings))
    found = checks(document)
    assert code == 1
    assert found["catalog"]["ok"] and found["attached"]["ok"] and found["schemas"]["ok"]
    assert found["tables.raw"]["detail"] == "missing raw.entries (run `cascade ingest`)"
    assert "run `cascade transform`" in found["tables.gold"]["detail"]
    assert found["freshness"]["detail"] == "no raw.entries table (run `cascade ingest`)"
    assert lake_state(lake_settings) == before


def test_invalid_configuration_is_a_failed_check_not_a_crash():
    env = {"CASCADE_CATALOG_URL": f"postgresql://cascade:{PG_PASSWORD}@127.0.0.1/lake"}
    code, document = health_json(env)
    found = checks(document)
    assert code == 1 and document["profile"] is None
    assert "CASCADE_DATA_PATH" in found["configuration"]["detail"]
    assert found["catalog"]["detail"] == "not run: a check it depends on failed"


def _with_catalog_url(settings: Settings, **parts: str) -> dict[str, str]:
    catalog = settings.catalog
    values = {
        "user": catalog.user,
        "host": catalog.host,
        "port": str(catalog.port),
        "database": catalog.database,
    } | parts
    url = (
        f"postgresql://{values['user']}:{PG_PASSWORD}@{values['host']}:{values['port']}/"
        f"{values['database']}"
    )
    return cli_env(settings) | {"CASCADE_CATALOG_URL": url}


@pytest.mark.pg
@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ({"user": "cascade_no_such_role"}, "check the user and password"),
        ({"database": "cascade_no_such_db"}, "check the database name"),
        ({"port": "1"}, "is PostgreSQL running"),
    ],
    ids=["unknown-role", "unknown-database", "refused"],
)
def test_an_unusable_catalog_fails_fast_and_redacted(scale_settings: Settings, parts, expected):
    env = _with_catalog_url(scale_settings, **parts)
    started = time.monotonic()
    code, document = health_json(env)
    assert time.monotonic() - started < 10
    found = checks(document)
    assert code == 1 and not found["catalog"]["ok"]
    assert expected in found["catalog"]["detail"]
    assert "***" in found["catalog"]["detail"]
    assert found["attached"]["detail"] == "not run: catalog failed"
    code, stdout, _ = run_health(env)
    assert code == 1 and PG_PASSWORD not in stdout and "✗ catalog" in stdout


@pytest.mark.pg
def test_a_missing_bucket_fails_the_attach_redacted(scale_settings: Settings):
    with connect(scale_settings):
        pass
    env = cli_env(scale_settings) | {"CASCADE_DATA_PATH": "s3://cascade-no-such-bucket/lake"}
    code, document = health_json(env)
    found = checks(document)
    assert code == 1 and found["catalog"]["ok"] and not found["attached"]["ok"]
    assert "CASCADE_DATA_PATH" in found["attached"]["detail"]
    assert found["tables.raw"]["detail"] == "not run: attached failed"


@pytest.mark.pg
def test_a_locked_catalog_fails_instead_of_hanging(scale_settings: Settings):
    with connect(scale_settings):
        pass
    holder = psycopg2.connect(scale_settings.catalog_url.get_secret_value())
    try:
        schema = scale_settings.metadata_schema
        holder.cursor().execute(f"lock table {schema}.ducklake_snapshot in access exclusive mode")
        started = time.monotonic()
        code, document = health_json(cli_env(scale_settings))
        assert time.monotonic() - started < 20
        found = checks(document)
        assert code == 1 and found["catalog"]["ok"] and not found["attached"]["ok"]
        assert "catalog lock" in found["attached"]["detail"]
    finally:
        holder.rollback()
        holder.close()


@pytest.mark.pg
def test_stale_sessions_and_lock_waits_are_named(scale_settings: Settings):
    with connect(scale_settings):
        pass
    url = scale_settings.catalog_url.get_secret_value()
    holder, waiter, idle = (psycopg2.connect(url) for _ in range(3))
    try:
        holder.autocommit = True
        holder.cursor().execute("create table public.health_probe (x int)")
        holder.autocommit = False
        holder.cursor().execute("lock table public.health_probe in access exclusive mode")
        idle.cursor().execute("select 1")
        blocked = threading.Thread(
            target=lambda: waiter.cursor().execute("select * from public.health_probe")
        )
        blocked.start()
        time.sleep(1.5)
        _, document = health_json(cli_env(scale_settings), "--stale-after", "1s")
        found = checks(document)
        assert not found["catalog_locks"]["ok"] and found["catalog_locks"]["required"]
        waiting = found["catalog_locks"]["data"]["waiting"]
        assert [w["pid"] for w in waiting] == [waiter.get_backend_pid()]
        assert waiting[0]["blocked_by"] == [holder.get_backend_pid()]
        idle_pids = {s["pid"] for s in found["catalog_sessions"]["data"]["idle"]}
        assert idle_pids == {holder.get_backend_pid(), idle.get_backend_pid()}
        assert not found["catalog_sessions"]["required"]
    finally:
        holder.rollback()
        blocked.join(timeout=10)
        for con in (holder, waiter, idle):
            con.close()


pytestmark = pytest.mark.timeout(300)


def test_health_warns_of_leftovers_of_killed_loads(local_settings: Settings):
    with connect(local_settings) as con:
        con.execute("create schema raw_staging_0badc0ffee00")
    dead = local_settings.work_dir / "cascade-dlt-killed"
    (dead / "pipelines").mkdir(parents=True)
    (dead / "pipelines" / "state.json").write_text("{}")
    old = time.time() - 7 * 3600
    for path in (dead / "pipelines" / "state.json", dead / "pipelines", dead):
        os.utime(path, (old, old))
    (local_settings.work_dir / "cascade-dlt-running").mkdir()

    report = check_health(local_settings, HealthOptions(leftover_age=timedelta(0)))
    leftover = {check.name: check for check in report.checks}["leftovers"]
    assert not leftover.ok and not leftover.required
    assert leftover.data["staging_schemas"] == ["raw_staging_0badc0ffee00"]
    assert "cascade maintain" in leftover.detail

    report = check_health(local_settings)  # default age: only the folder untouched for 7 h
    leftover = {check.name: check for check in report.checks}["leftovers"]
    assert leftover.data == {
        "staging_schemas": [],
        "work_dirs": [str(dead)],
        "older_than_s": 6 * 3600,
    }


SPECIAL_PASSWORD = "Zq9/xK#Wp?Vj@mR%40vT"


def _fragments(secret: str) -> set[str]:
    return {secret[i : i + 3] for i in range(len(secret) - 2)}


@pytest.mark.pg
@pytest.mark.parametrize("scheme", ["postgresql", "mysql"])
def test_health_json_holds_no_fragment_of_a_special_password(pg_admin_url, tmp_path, scheme):
    url = f"{scheme}://postgres:{SPECIAL_PASSWORD}@127.0.0.1:5432/cascade_no_such_db"
    env = {
        "CASCADE_HOME": str(tmp_path / ".cascade"),
        "CASCADE_CATALOG_URL": url,
        "CASCADE_DATA_PATH": "s3://bucket/lake",
        "CASCADE_S3_ENDPOINT": "127.0.0.1:9",
        "CASCADE_S3_USE_SSL": "false",
    }
    code, stdout, _ = run_health(env, "--json")
    assert code == 1
    decoded = SPECIAL_PASSWORD.replace("%40", "@")
    leaked = sorted(f for f in _fragments(SPECIAL_PASSWORD) | _fragments(decoded) if f in stdout)
    assert not leaked, f"{leaked} in {stdout}"
    assert json.loads(stdout)["ok"] is False
