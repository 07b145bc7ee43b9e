"""Pure pieces of the orchestration: backfill ranges, partition tags, pool sizing, translator."""

from __future__ import annotations

import tomllib
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import yaml

from cascade.defs.partitions import partition_range_tags, pool_limit
from cascade.defs.resources import CascadeResource
from cascade.defs.runners import chunks, dagster_dev_command, prepare_dagster_home
from cascade.defs.transform import CascadeTranslator, daily_models
from cascade.settings import Settings

YEAR = (date(2025, 1, 1), date(2025, 12, 31))


def test_a_year_is_a_few_ranged_runs_covering_every_day_once():
    ranges = list(chunks(*YEAR, runs=4))
    assert len(ranges) == 4
    days = [r[0] + timedelta(days=d) for r in ranges for d in range((r[1] - r[0]).days + 1)]
    assert days == [YEAR[0] + timedelta(days=d) for d in range(365)]
    assert len(list(chunks(*YEAR, runs=1))) == 4  # never more than 92 days a run
    assert len(list(chunks(date(2025, 1, 1), date(2025, 1, 3), runs=8))) == 3


def test_partition_range_tags():
    tags = partition_range_tags(date(2025, 3, 1), date(2025, 3, 7))
    assert tags == {
        "dagster/asset_partition_range_start": "2025-03-01",
        "dagster/asset_partition_range_end": "2025-03-07",
    }


def test_pool_is_one_writer_locally_and_configurable_on_postgresql(tmp_path):
    local = Settings(home=tmp_path, lake_writers=8, _env_file=None)
    scale = Settings(
        home=tmp_path,
        catalog_url="postgresql://u:password1@h:5432/db",
        data_path="s3://b/p",
        lake_writers=6,
        _env_file=None,
    )
    assert pool_limit(local) == 1 and pool_limit(scale) == 6
    config = yaml.safe_load((prepare_dagster_home(scale) / "dagster.yaml").read_text())
    assert config["concurrency"]["pools"]["default_limit"] == 6


def test_translator_keys_groups_and_sources():
    translator = CascadeTranslator()
    model = {
        "resource_type": "model",
        "name": "fct_glucose_readings",
        "fqn": ["cascade", "silver", "fct_glucose_readings"],
    }
    source = {
        "resource_type": "source",
        "source_name": "raw",
        "name": "entries",
        "fqn": ["cascade", "bronze", "raw", "entries"],
    }
    assert translator.get_asset_key(model) == dg.AssetKey(["silver", "fct_glucose_readings"])
    assert translator.get_group_name(model) == "silver"
    assert translator.get_asset_key(source) == dg.AssetKey(["raw", "entries"])


def test_daily_models_are_the_incremental_ones_and_the_models_upstream_of_them():
    def node(materialized: str, *parents: str, kind: str = "model") -> dict:
        return {
            "resource_type": kind,
            "config": {"materialized": materialized},
            "depends_on": {"nodes": list(parents)},
        }

    manifest = {
        "nodes": {
            "model.c.profile": node("table", "source.c.raw.profile"),
            "model.c.periods": node("table", "model.c.profile"),
            "model.c.readings": node("incremental", "source.c.raw.entries", "model.c.periods"),
            "model.c.daily": node("incremental", "model.c.readings"),
            "model.c.agp": node("table", "model.c.readings"),
            "model.c.dates": node("table", "model.c.readings"),
            "test.c.unique_daily": node("test", "model.c.daily", kind="test"),
        }
    }
    assert daily_models(manifest) == {
        "model.c.profile",
        "model.c.periods",
        "model.c.readings",
        "model.c.daily",
    }


def test_resource_rebuilds_settings_without_copying_environment_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("CASCADE_NIGHTSCOUT_TOKEN", "token-from-env")
    monkeypatch.setenv("CASCADE_TIMEZONE", "Europe/Berlin")
    settings = Settings(home=tmp_path, subject_key="key-set-in-code")

    resource = CascadeResource.from_settings(settings, overrides={"subject_id": "demo"})

    assert "nightscout_token" not in resource.overrides  # read again from the environment
    assert "timezone" not in resource.overrides
    assert resource.overrides["subject_key"] == "key-set-in-code"
    rebuilt = resource.settings()
    assert rebuilt.nightscout_token.get_secret_value() == "token-from-env"
    assert (rebuilt.home, rebuilt.subject_id, rebuilt.timezone) == (
        tmp_path,
        "demo",
        "Europe/Berlin",
    )


def test_dagster_dev_command_points_at_the_code_location_and_the_demo_site(tmp_path):
    settings = Settings(home=tmp_path, _env_file=None)

    argv, env = dagster_dev_command(settings, 3333, "http://127.0.0.1:9/", "demo")

    assert argv[1:] == ["dev", "-m", "cascade.definitions", "--port", "3333"]
    assert env["DAGSTER_HOME"] == str(tmp_path.absolute() / "dagster")
    assert env["CASCADE_NIGHTSCOUT_URL"] == "http://127.0.0.1:9/"
    assert env["CASCADE_SUBJECT_ID"] == "demo"
    assert env["DAGSTER_EVENT_BATCH_SIZE"] == "1000"  # its runs store events in batches


def test_pyproject_names_the_code_location():
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert pyproject["tool"]["dagster"]["module_name"] == "cascade.definitions"
