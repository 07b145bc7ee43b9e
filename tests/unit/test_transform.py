"""The pure parts of cascade.transform: dbt's environment, arguments and variables."""

from __future__ import annotations

import json
import os
import re
from datetime import date
from pathlib import Path

import pytest
import yaml

from cascade.settings import Settings
from cascade.transform import (
    PROJECT_DIR,
    SECRET_PREFIX,
    TransformError,
    TransformResult,
    dbt_args,
    dbt_env,
    parse_inputs,
    patched_environ,
    run_transform,
    unit_test_exclusions,
    window_env,
)

PASSWORD = "pg-pass-word"
KEY_ID = "s3-key-id"
SECRET = "s3-secret-key"


@pytest.fixture
def scale(tmp_path: Path) -> Settings:
    return Settings(
        home=tmp_path,
        catalog_url=f"postgresql://lake:{PASSWORD}@db.internal:6543/catalog",
        data_path="s3://bucket/prefix",
        s3_endpoint="http://127.0.0.1:9000/",
        s3_use_ssl=False,
        s3_access_key_id=KEY_ID,
        s3_secret_access_key=SECRET,
        lake_alias="lake",
        _env_file=None,
    )


def profile_env_vars(target: str) -> set[str]:
    """The env vars a target of profiles.yml reads."""
    profile = yaml.safe_load((PROJECT_DIR / "profiles.yml").read_text())
    text = json.dumps(profile["cascade"]["outputs"][target])
    return set(re.findall(r"env_var\('([A-Z_]+)'", text))


def test_local_env_points_dbt_at_the_sqlite_catalog(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("CASCADE_DUCKDB_MEMORY_LIMIT", raising=False)
    settings = Settings(home=tmp_path, timezone="Europe/Berlin", _env_file=None)

    env = dbt_env(settings)

    assert env["CASCADE_DBT_TARGET"] == "local"
    assert env["CASCADE_LAKE_ALIAS"] == "ducklake"
    assert env["CASCADE_DBT_CATALOG_PATH"] == str(tmp_path.absolute() / "catalog.sqlite")
    assert env["CASCADE_DBT_DATA_PATH"] == str(tmp_path.absolute() / "lake") + "/"
    assert env["CASCADE_TIMEZONE"] == "Europe/Berlin"
    assert env["CASCADE_DUCKDB_MEMORY_LIMIT"] == "-1"  # DuckDB's default
    # one folder for the lake's builds, which take turns: the profile, which dbt hashes to
    # decide whether to parse the whole project again, is the same in every build
    assert env["CASCADE_DUCKDB_TEMP_DIRECTORY"] == str(
        tmp_path.absolute() / "tmp/duckdb-dbt-ducklake"
    )
    assert dbt_env(settings) == env
    assert all(name.startswith("CASCADE_") for name in env)
    assert profile_env_vars("local") <= set(env)


def test_scale_env_keeps_secrets_in_dbt_secret_variables(scale: Settings):
    env = dbt_env(scale)

    assert env["CASCADE_DBT_TARGET"] == "scale"
    assert env["CASCADE_LAKE_ALIAS"] == "lake"
    assert (env["CASCADE_DBT_PG_HOST"], env["CASCADE_DBT_PG_PORT"]) == ("db.internal", "6543")
    assert (env["CASCADE_DBT_PG_DATABASE"], env["CASCADE_DBT_PG_USER"]) == ("catalog", "lake")
    assert env["CASCADE_DBT_DATA_PATH"] == "s3://bucket/prefix/"
    assert env["CASCADE_DBT_S3_ENDPOINT"] == "127.0.0.1:9000"
    assert env["CASCADE_S3_USE_SSL"] == "false"
    assert env[f"{SECRET_PREFIX}CASCADE_PG_PASSWORD"] == PASSWORD
    assert env[f"{SECRET_PREFIX}CASCADE_S3_ACCESS_KEY_ID"] == KEY_ID
    assert env[f"{SECRET_PREFIX}CASCADE_S3_SECRET_ACCESS_KEY"] == SECRET
    for name, value in env.items():
        if not name.startswith(SECRET_PREFIX):
            assert name.startswith("CASCADE_")
            assert not {PASSWORD, KEY_ID, SECRET} & {value}, name
            assert PASSWORD not in value
    assert profile_env_vars("scale") <= set(env)


def test_profile_mirrors_the_python_attach():
    profile = yaml.safe_load((PROJECT_DIR / "profiles.yml").read_text())["cascade"]
    scale = profile["outputs"]["scale"]
    attach = scale["attach"][0]
    assert attach["path"] == "ducklake:postgres:connect_timeout=10"
    assert attach["options"]["meta_secret"] == "cascade_catalog"
    assert (
        "CASCADE_LAKE_ALIAS" in attach["alias"]
        and "CASCADE_LAKE_ALIAS" in attach["options"]["metadata_schema"]
    )
    assert [s["name"] for s in scale["secrets"]] == ["cascade_s3", "cascade_catalog"]
    local = profile["outputs"]["local"]["attach"][0]
    assert (
        local["path"].startswith("ducklake:sqlite:")
        and local["options"]["meta_journal_mode"] == "WAL"
    )
    assert "CASCADE_DBT_TARGET" in profile["target"]


def test_args_point_at_the_project_and_stay_the_same_for_every_window(tmp_path: Path):
    settings = Settings(home=tmp_path, timezone="America/Chicago", _env_file=None)

    args = dbt_args(settings, full_refresh=True, select="gold")

    assert args[0] == "build"
    assert args[args.index("--project-dir") + 1] == str(PROJECT_DIR)
    assert args[args.index("--profiles-dir") + 1] == str(PROJECT_DIR)
    assert args[args.index("--target-path") + 1] == str(tmp_path.absolute() / "dbt" / "target")
    # no window in --vars: a new window must not make dbt parse the project again
    assert json.loads(args[args.index("--vars") + 1]) == {
        "timezone": "America/Chicago",
        "timezone_override": False,
        "subject_batch_readings": 250_000,
    }
    assert "--full-refresh" in args and args[args.index("--select") + 1] == "gold"
    assert "--no-send-anonymous-usage-stats" in args


def test_the_window_reaches_the_models_through_the_environment():
    assert window_env(date(2024, 3, 1), date(2024, 3, 2), ["b", "a", "a"]) == {
        "CASCADE_WINDOW_START_DATE": "2024-03-01",
        "CASCADE_WINDOW_END_DATE": "2024-03-02",
        "CASCADE_WINDOW_SUBJECTS": "a,b",
    }
    assert set(window_env().values()) == {""}  # everything, every subject


def test_args_without_options_build_everything(tmp_path: Path):
    args = dbt_args(Settings(home=tmp_path, _env_file=None))

    assert "--full-refresh" not in args and "--select" not in args


@pytest.mark.parametrize("wanted", [False, True])
def test_unit_tests_run_only_where_settings_ask(tmp_path, wanted):
    settings = Settings(home=tmp_path, dbt_unit_tests=wanted, _env_file=None)

    args = dbt_args(settings, exclude=unit_test_exclusions(settings))

    left_out = args[args.index("--exclude-resource-type") + 1] if not wanted else None
    assert ("--exclude-resource-type" in args) is not wanted and left_out in (None, "unit_test")
    # with no lake yet every raw table is missing: each staging model's unit tests are left out
    assert ("--exclude" in args) is wanted


def test_project_dir_is_the_repository_dbt_project():
    assert (PROJECT_DIR / "dbt_project.yml").is_file()
    assert (PROJECT_DIR / "profiles.yml").is_file()


@pytest.mark.parametrize(
    ("start", "end"), [(date(2024, 3, 2), date(2024, 3, 1)), (date(2024, 3, 1), date(2024, 3, 1))]
)
def test_empty_windows_are_refused(start, end):
    with pytest.raises(ValueError, match="window is empty"):
        window_env(start, end)


@pytest.mark.parametrize("timezone", ["Mars/Olympus", "UTC'; drop table x; --", ""])
def test_an_invalid_timezone_is_a_settings_error_at_start_up(tmp_path, timezone):
    with pytest.raises(ValueError, match="CASCADE_TIMEZONE .* is not an IANA timezone"):
        Settings(home=tmp_path, timezone=timezone, _env_file=None)


@pytest.mark.parametrize(
    ("spelled", "canonical"), [("ETC/GMT+7", "Etc/GMT+7"), ("europe/berlin", "Europe/Berlin")]
)
def test_timezone_names_are_matched_case_insensitively(tmp_path, spelled, canonical):
    assert Settings(home=tmp_path, timezone=spelled, _env_file=None).timezone == canonical


def test_environment_is_restored_after_the_call(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CASCADE_TEST_KEPT", "before")
    monkeypatch.delenv("CASCADE_TEST_ADDED", raising=False)

    with patched_environ({"CASCADE_TEST_KEPT": "during", "CASCADE_TEST_ADDED": "during"}):
        assert os.environ["CASCADE_TEST_KEPT"] == os.environ["CASCADE_TEST_ADDED"] == "during"

    assert os.environ["CASCADE_TEST_KEPT"] == "before"
    assert "CASCADE_TEST_ADDED" not in os.environ


def test_transform_without_a_lake_says_what_to_do(tmp_path: Path):
    with pytest.raises(TransformError, match="no lake at .*cascade ingest"):
        run_transform(Settings(home=tmp_path / "nothing", _env_file=None))
    assert not (tmp_path / "nothing").exists()


def test_result_summary_names_the_window():
    result = TransformResult(models=["a", "b"], tests_passed=3, unit_tests_passed=1, seconds=2.5)
    result.window = (date(2024, 3, 1), date(2024, 3, 2))

    assert result.success
    assert result.summary() == (
        "2 models built (2024-03-01 to 2024-03-02), 3 tests passed, 0 failed, "
        "1 unit tests passed, in 2.5 s"
    )


def test_parse_inputs_change_with_what_dbt_parse_reads(tmp_path: Path, monkeypatch):
    (tmp_path / "models").mkdir()
    model = tmp_path / "models" / "m.sql"
    model.write_text("select 1")
    (tmp_path / "profiles.yml").write_text(
        "a: \"{{ env_var('CASCADE_X') }}\"\nb: \"{{ env_var('DBT_ENV_SECRET_KEY') }}\"\n"
    )
    monkeypatch.setenv("CASCADE_X", "1")
    monkeypatch.setenv("DBT_ENV_SECRET_KEY", "first")
    first = parse_inputs(tmp_path)
    assert parse_inputs(tmp_path) == first

    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "manifest.json").write_text("{}")  # dbt's output, not its input
    monkeypatch.setenv("DBT_ENV_SECRET_KEY", "second")  # a secret never reaches the manifest
    monkeypatch.setenv("CASCADE_UNNAMED", "1")  # no file names it
    assert parse_inputs(tmp_path) == first

    changes = [
        lambda: monkeypatch.setenv("CASCADE_X", "2"),
        lambda: os.utime(model, ns=(0, 0)),
        lambda: model.write_text("select 2"),
        lambda: (tmp_path / "models" / "n.sql").write_text("select 3"),
    ]
    seen = {first}
    for change in changes:
        change()
        seen.add(parse_inputs(tmp_path))
    assert len(seen) == len(changes) + 1
