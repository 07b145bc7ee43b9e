"""Shared fixtures: a local lake per test, and PostgreSQL + S3 (moto's server over HTTP).

PostgreSQL tests run wherever 127.0.0.1:5432 (or CASCADE_TEST_PG_URL) is reachable; with
CI=true an unreachable PostgreSQL fails the run instead of skipping it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from cascade.settings import Settings
from tests.support import PG_PASSWORD, S3_KEY_ID, S3_SECRET, s3_client


@pytest.fixture(autouse=True)
def _clean_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """No test sees the developer's CASCADE_* settings or .env file.

    dbt's unit tests check the models' SQL on fixtures, the same in every build, and take about
    a third of one: as in production they are left out, except in the tests marked
    `dbt_unit_tests` (a build on each profile, and on lakes missing a collection), which set
    CASCADE_DBT_UNIT_TESTS.
    """
    for name in list(os.environ):
        if name.startswith("CASCADE_") and name != "CASCADE_TEST_PG_URL":
            monkeypatch.delenv(name)
    if request.node.get_closest_marker("dbt_unit_tests") is not None:
        monkeypatch.setenv("CASCADE_DBT_UNIT_TESTS", "true")
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def local_settings(tmp_path: Path) -> Settings:
    """Settings of a fresh local lake (SQLite catalog, local files) in this test's tmp dir."""
    return Settings(home=tmp_path / ".cascade", _env_file=None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


@pytest.fixture(scope="session")
def moto_endpoint() -> str:
    """moto's S3 server on a free loopback port, for the whole session."""
    port = _free_port()
    moto = Path(sys.executable).parent / "moto_server"
    process = subprocess.Popen(
        [str(moto), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _pg_admin_url() -> str:
    return os.environ.get("CASCADE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """A reachable PostgreSQL admin URL; skips (fails under CI=true) when there is none."""
    parts = urlsplit(_pg_admin_url())
    try:
        with socket.create_connection((parts.hostname, parts.port or 5432), timeout=3):
            pass
    except OSError as exc:
        message = f"PostgreSQL at {parts.hostname}:{parts.port or 5432} unreachable: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return _pg_admin_url()


def pg_execute(admin_url: str, sql: str) -> list[tuple]:
    """Run one statement in autocommit mode against the admin database."""
    import psycopg2

    con = psycopg2.connect(admin_url)
    con.autocommit = True
    try:
        with con.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall() if cur.description else []
    finally:
        con.close()


@pytest.fixture
def pg_database(pg_admin_url: str):
    """A fresh PostgreSQL database for one test, dropped afterwards. Yields its URL."""
    name = f"cascade_test_{uuid.uuid4().hex[:10]}"
    pg_execute(pg_admin_url, f"create database {name}")
    parts = urlsplit(pg_admin_url)
    user = parts.username or "postgres"
    url = f"postgresql://{user}:{PG_PASSWORD}@{parts.hostname}:{parts.port or 5432}/{name}"
    try:
        yield url
    finally:
        pg_execute(
            pg_admin_url,
            f"select pg_terminate_backend(pid) from pg_stat_activity where datname = '{name}'",
        )
        pg_execute(pg_admin_url, f"drop database if exists {name}")


@pytest.fixture
def s3_bucket(moto_endpoint: str) -> str:
    """A fresh bucket on moto's server; yields its name."""
    name = f"lake-{uuid.uuid4().hex[:10]}"
    s3_client(moto_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture
def scale_settings(
    pg_database: str, s3_bucket: str, moto_endpoint: str, tmp_path: Path
) -> Settings:
    """Settings of a fresh scale lake: PostgreSQL catalog, data on moto's S3 over HTTP."""
    return Settings(
        home=tmp_path / ".cascade",
        catalog_url=pg_database,
        data_path=f"s3://{s3_bucket}/lake",
        s3_endpoint=moto_endpoint,
        s3_use_ssl=False,
        s3_access_key_id=S3_KEY_ID,
        s3_secret_access_key=S3_SECRET,
        _env_file=None,
    )


@pytest.fixture(params=["local", pytest.param("scale", marks=pytest.mark.pg)])
def lake_settings(request: pytest.FixtureRequest) -> Settings:
    """Each test using this runs twice: on a local lake and on PostgreSQL + S3."""
    return request.getfixturevalue(f"{request.param}_settings")
