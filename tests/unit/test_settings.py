"""Settings: one alias everywhere, identifier validation, secret redaction."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from cascade.lake.connection import (
    attach_statement,
    secret_statements,
    session_statements,
    setting_statements,
)
from cascade.settings import Settings, redact_url, validate_identifier

PG = "postgresql://cascade:s3cr3t-pw@db.example:5433/lake"


def scale(**overrides) -> Settings:
    values = dict(
        catalog_url=PG,
        data_path="s3://bucket/prefix",
        s3_endpoint="http://127.0.0.1:9000",
        s3_access_key_id="AKIAEXAMPLEKEY",
        s3_secret_access_key="wJalrXUtnFEMI-secret",
        _env_file=None,
    )
    return Settings(**{**values, **overrides})


def test_local_profile_is_the_default(tmp_path):
    settings = Settings(home=tmp_path, _env_file=None)
    assert settings.profile == "local"
    assert settings.lake_alias == "ducklake"
    assert settings.catalog_path == (tmp_path / "catalog.sqlite").absolute()
    assert settings.lake_data_path == str((tmp_path / "lake").absolute()) + "/"


def test_environment_selects_the_scale_profile(monkeypatch):
    monkeypatch.setenv("CASCADE_CATALOG_URL", PG)
    monkeypatch.setenv("CASCADE_DATA_PATH", "s3://bucket/prefix")
    settings = Settings(_env_file=None)
    assert settings.profile == "scale"
    assert settings.catalog.host == "db.example" and settings.catalog.port == 5433
    assert settings.lake_data_path == "s3://bucket/prefix/"


def test_env_file_is_read(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("CASCADE_LAKE_ALIAS=lake_two\n")
    monkeypatch.chdir(tmp_path)
    assert Settings().lake_alias == "lake_two"


@pytest.mark.parametrize("alias", ["ducklake; drop", "1lake", "lake-name", "", "a" * 64])
def test_alias_must_be_an_identifier(alias):
    with pytest.raises(ValidationError, match="not a valid SQL identifier"):
        Settings(lake_alias=alias, _env_file=None)


def test_identifier_validation():
    assert validate_identifier("bronze") == "bronze"
    with pytest.raises(ValueError, match="schema"):
        validate_identifier("bronze.x", "schema")


def test_half_a_scale_profile_is_rejected():
    with pytest.raises(ValidationError, match="needs both"):
        Settings(catalog_url=PG, _env_file=None)
    with pytest.raises(ValidationError, match="s3://"):
        Settings(catalog_url=PG, data_path="/tmp/x", _env_file=None)
    with pytest.raises(ValidationError, match="postgresql://"):
        Settings(catalog_url="mysql://u:pw@h/db", data_path="s3://b/p", _env_file=None)


def test_secrets_are_redacted_in_repr_and_descriptions():
    settings = scale(nightscout_api_secret="ns-api-secret-1234")
    shown = repr(settings) + str(settings) + settings.describe_catalog()
    for secret in ("s3cr3t-pw", "wJalrXUtnFEMI-secret", "AKIAEXAMPLEKEY", "ns-api-secret-1234"):
        assert secret not in shown
        assert "***" in settings.redact(f"boom {secret} boom")
    assert settings.describe_catalog() == "postgresql://cascade:***@db.example:5433/lake"


def test_invalid_catalog_url_error_does_not_leak_the_password():
    with pytest.raises(ValidationError) as info:
        Settings(catalog_url="mysql://u:leaky-pw@h/db", data_path="s3://b/p", _env_file=None)
    assert "leaky-pw" not in str(info.value)


def test_redact_url():
    assert redact_url(PG) == "postgresql://cascade:***@db.example:5433/lake"
    assert redact_url("postgresql://h/db") == "postgresql://h/db"


def test_one_alias_in_every_statement():
    settings = scale(lake_alias="lake_x")
    attach = attach_statement(settings)
    assert " as lake_x " in attach
    assert "metadata_schema 'lake_x'" in attach
    assert "create_if_not_exists true" in attach
    assert "data_path 's3://bucket/prefix/'" in attach


def test_attach_holds_no_secret_and_secrets_hold_them():
    settings = scale()
    attach = attach_statement(settings)
    assert "s3cr3t-pw" not in attach and "cascade" not in attach.split("meta_secret")[0]
    secrets = " ".join(secret_statements(settings))
    assert "s3cr3t-pw" in secrets and "wJalrXUtnFEMI-secret" in secrets
    assert "endpoint '127.0.0.1:9000'" in secrets and "use_ssl false" in secrets


def test_read_only_attach_creates_nothing(tmp_path):
    settings = Settings(home=tmp_path, _env_file=None)
    attach = attach_statement(settings, read_only=True)
    assert "read_only" in attach and "create_if_not_exists false" in attach
    assert attach.startswith("attach if not exists 'ducklake:sqlite:")


def test_session_statements_attach_last(tmp_path):
    statements = session_statements(scale())
    assert statements[-1].startswith("attach")
    assert any(s.startswith("set ducklake_max_retry_count") for s in statements)


@pytest.mark.parametrize(
    ("given", "kept"),
    [("1.5GiB", "1.5GiB"), (" 800 mb ", "800mb"), ("2GB", "2GB"), ("1G", "1G"), ("", None)]
    + [("-1", None)],  # DuckDB's default, as `cascade env` exports an unset limit
)
def test_memory_limit_is_a_duckdb_size(tmp_path, given, kept):
    settings = Settings(home=tmp_path, duckdb_memory_limit=given, _env_file=None)
    assert settings.duckdb_memory_limit == kept
    limits = [s for s in setting_statements(settings) if s.startswith("set memory_limit")]
    assert limits == ([f"set memory_limit = '{kept}'"] if kept else [])


@pytest.mark.parametrize("given", ["80%", "lots", "1.5", "-2", "1.5 PiB"])
def test_memory_limit_refuses_what_duckdb_would(tmp_path, given):
    with pytest.raises(ValidationError, match="CASCADE_DUCKDB_MEMORY_LIMIT .* is not a size"):
        Settings(home=tmp_path, duckdb_memory_limit=given, _env_file=None)


def test_each_duckdb_spills_under_cascade_home(tmp_path):
    (spill,) = [s for s in setting_statements(scale(home=tmp_path)) if "temp_directory" in s]
    # a new folder for every instance: the uuid is drawn when DuckDB runs the statement
    assert spill == (
        f"set temp_directory = '{tmp_path.absolute() / 'tmp' / f'duckdb-{os.getpid()}-'}' "
        "|| gen_random_uuid()::varchar"
    )


@pytest.mark.parametrize(
    "alias",
    [
        "raw",
        "Bronze",
        "memory",
        "system",
        "temp",
        "main",
        "ops",
        "information_schema",
        "raw_staging",
        "_dlt_loads",
    ],
)
def test_reserved_aliases_are_refused(alias):
    with pytest.raises(ValidationError, match="is reserved"):
        Settings(lake_alias=alias, _env_file=None)


def test_start_date_is_a_date():
    assert Settings(start_date=" 2024-02-29 ", _env_file=None).start_day.isoformat() == "2024-02-29"
    with pytest.raises(ValidationError, match="CASCADE_START_DATE '2024-02-30' is not a date"):
        Settings(start_date="2024-02-30", _env_file=None)


@pytest.mark.parametrize(
    ("endpoint", "use_ssl", "url", "host"),
    [
        ("127.0.0.1:9000", False, "http://127.0.0.1:9000", "127.0.0.1:9000"),
        ("127.0.0.1:9000", None, "https://127.0.0.1:9000", "127.0.0.1:9000"),
        ("http://minio:9000/", None, "http://minio:9000", "minio:9000"),
        ("https://s3.example", True, "https://s3.example", "s3.example"),
    ],
)
def test_s3_endpoint_gets_one_scheme_that_agrees_with_use_ssl(endpoint, use_ssl, url, host):
    extra = {} if use_ssl is None else {"s3_use_ssl": use_ssl}
    settings = scale(s3_endpoint=endpoint, **extra)
    assert (settings.s3_endpoint_url, settings.s3_endpoint_host) == (url, host)
    assert settings.s3_use_ssl == url.startswith("https")
    assert f"use_ssl {str(settings.s3_use_ssl).lower()}" in " ".join(secret_statements(settings))


def test_s3_endpoint_scheme_contradicting_use_ssl_is_refused(monkeypatch):
    monkeypatch.setenv("CASCADE_S3_USE_SSL", "true")
    with pytest.raises(ValidationError, match="says http but CASCADE_S3_USE_SSL is true"):
        scale(s3_endpoint="http://127.0.0.1:9000")
    with pytest.raises(ValidationError, match="http:// or https://"):
        scale(s3_endpoint="ftp://127.0.0.1:9000")


def test_lock_timeout_is_a_setting(monkeypatch):
    assert Settings(_env_file=None).lock_timeout_s == 600
    monkeypatch.setenv("CASCADE_LOCK_TIMEOUT_S", "2.5")
    assert Settings(_env_file=None).lock_timeout_s == 2.5


def test_load_workers_bound_the_load_steps_duckdb_instances(monkeypatch):
    assert Settings(_env_file=None).load_workers == 2  # dlt's own default is 20
    monkeypatch.setenv("CASCADE_LOAD_WORKERS", "4")
    assert Settings(_env_file=None).load_workers == 4
    monkeypatch.setenv("CASCADE_LOAD_WORKERS", "0")
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        Settings(_env_file=None)
