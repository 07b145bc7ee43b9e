"""connect(): the real DuckLake extension, on the local lake and on PostgreSQL + S3."""

from __future__ import annotations

import time

import pytest

from cascade.lake.connection import LakeError, connect
from cascade.settings import LAYERS, Settings
from tests.support import PG_PASSWORD, S3_SECRET


def test_connect_attaches_the_lake_and_creates_the_layers(lake_settings: Settings):
    with connect(lake_settings) as con:
        databases = {row[1]: row[2] for row in con.execute("pragma database_list").fetchall()}
        assert "ducklake" in databases
        assert con.execute("select current_database()").fetchone()[0] == "ducklake"
        schemas = {
            row[0]
            for row in con.execute(
                "select schema_name from information_schema.schemata where catalog_name = 'ducklake'"
            ).fetchall()
        }
        assert set(LAYERS) <= schemas
        con.execute("create table raw.probe as select 42 as answer")
    for path in databases.values():
        assert PG_PASSWORD not in (path or "")
    with connect(lake_settings, read_only=True) as con:
        assert con.execute("select answer from ducklake.raw.probe").fetchone() == (42,)
        memory = con.execute(
            "select count(*) from information_schema.tables where table_catalog = 'memory'"
        ).fetchone()[0]
        assert memory == 0


def test_read_only_connect_creates_nothing(local_settings: Settings):
    with pytest.raises(LakeError, match="no lake at"), connect(local_settings, read_only=True):
        pass
    assert not local_settings.home.exists()


def test_read_only_connect_cannot_write(local_settings: Settings):
    with connect(local_settings):
        pass
    with (
        connect(local_settings, read_only=True) as con,
        pytest.raises(Exception, match="read-only|read only"),
    ):
        con.execute("create table raw.nope as select 1")


def test_connection_is_closed_after_an_error(local_settings: Settings):
    with pytest.raises(ZeroDivisionError), connect(local_settings) as con:
        con.execute("begin")
        con.execute("create table raw.partial as select 1 as x")
        raise ZeroDivisionError
    with pytest.raises(Exception, match="closed"):
        con.execute("select 1")
    with connect(local_settings) as fresh:
        found = fresh.execute(
            "select count(*) from information_schema.tables where table_name = 'partial'"
        ).fetchone()[0]
        assert found == 0


@pytest.mark.pg
def test_refused_catalog_fails_fast_and_redacted(scale_settings: Settings):
    url = scale_settings.catalog_url.get_secret_value().replace(":5432/", ":1/")
    settings = scale_settings.model_copy(
        update={"catalog_url": type(scale_settings.catalog_url)(url)}
    )
    settings.__dict__.pop("catalog", None)
    started = time.monotonic()
    with pytest.raises(LakeError) as info, connect(settings):
        pass
    assert time.monotonic() - started < 30
    assert "refused" in str(info.value).lower()
    assert PG_PASSWORD not in str(info.value)


@pytest.mark.pg
def test_missing_bucket_and_dead_endpoint_fail_fast(scale_settings: Settings):
    for update in (
        {"data_path": "s3://no-such-bucket/lake"},
        {"s3_endpoint": "http://127.0.0.1:1"},
    ):
        settings = scale_settings.model_copy(update=update)
        started = time.monotonic()
        with pytest.raises(LakeError) as info, connect(settings):
            pass
        assert time.monotonic() - started < 30
        assert S3_SECRET not in str(info.value) and PG_PASSWORD not in str(info.value)
