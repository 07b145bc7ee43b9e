"""Dagster over registered sites: partitions follow the registry, one run loads every site,
a site with a wrong secret fails alone (its partition failed, its error recorded), and dbt
then rebuilds the touched days of the loaded sites' subjects alone."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest
from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value

from cascade.defs.ingestion import SITES_KEY
from cascade.defs.partitions import SITES
from cascade.defs.resources import CascadeResource
from cascade.defs.runners import run_sites, sync_site_partitions
from cascade.defs.sensors import sites_partitions
from cascade.demo.server import DemoServer
from cascade.lake.connection import connect
from cascade.settings import Settings
from cascade.sites import add_site, list_sites, remove_site
from cascade.transform import run_transform
from tests.integration.test_transform import demo_records, inserted_subjects, load

NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
SECRET = "dagster-sites-secret"
SECRET_VAR, WRONG_VAR = "NS_DAGSTER_SECRET", "NS_DAGSTER_WRONG"

pytestmark = pytest.mark.timeout(900)


def _requests(settings: Settings, instance: dg.DagsterInstance) -> list:
    context = dg.build_sensor_context(
        instance=instance, resources={"cascade": CascadeResource.from_settings(settings)}
    )
    result = sites_partitions(context)
    return [] if isinstance(result, dg.SkipReason) else list(result.dynamic_partitions_requests)


def test_sites_are_partitions_and_a_bad_site_fails_alone(
    local_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = local_settings.model_copy(update={"start_date": NOW.date().isoformat()})
    monkeypatch.setenv(SECRET_VAR, SECRET)
    monkeypatch.setenv(WRONG_VAR, "not-the-secret")
    # someone already in the lake, with data on the days the sites' load touches
    load(settings, demo_records(NOW.date(), 1, subject="bystander"))
    run_transform(settings)
    with connect(settings, read_only=True) as con:
        (before,) = con.execute(
            "select max(snapshot_id) from ducklake_snapshots('ducklake')"
        ).fetchone()
    with DemoServer(now=NOW, sites=3, api_secret=SECRET) as server:
        names = [p.slug for p in server.people]
        for name, url in zip(names, server.site_urls, strict=True):
            var = WRONG_VAR if name == names[-1] else SECRET_VAR
            add_site(settings, name, url, api_secret_env=var)
        with dg.DagsterInstance.ephemeral() as instance:
            # the sensor asks for one partition per registered site, then for nothing more
            (request,) = _requests(settings, instance)
            assert isinstance(request, dg.AddDynamicPartitionsRequest)
            assert sorted(request.partition_keys) == names
            assert sync_site_partitions(settings, instance) == names
            assert _requests(settings, instance) == []

            report = run_sites(settings, instance=instance)
            materialized = instance.get_materialized_partitions(SITES_KEY)
            status = get_and_update_asset_status_cache_value(instance, SITES_KEY, SITES)
            failed = set(status.deserialize_failed_partition_subsets(SITES).get_partition_keys())

            # removing a site removes its partition key (its data stays)
            remove_site(settings, names[0])
            (request,) = _requests(settings, instance)
            assert isinstance(request, dg.DeleteDynamicPartitionsRequest)
            assert list(request.partition_keys) == [names[0]]
            assert sync_site_partitions(settings, instance) == names[1:]

    good, bad = names[:-1], names[-1]
    # Dagster's own partition status: the good sites materialised, the bad one failed
    assert materialized == set(good) and failed == {bad}
    # one run, one load for every site; the bad one fails alone, saying why
    assert len(report.ingest.failures) == 1 and bad in report.ingest.failures[0]
    assert len({report.sites[n]["load_id"] for n in good}) == 1
    assert all(report.sites[n]["status"] == "ok" for n in good)
    assert all(report.sites[n]["rows_fetched"] > 0 for n in good)
    assert report.sites[bad]["status"] == "failed" and report.sites[bad]["rows_fetched"] == 0
    assert "401" in report.sites[bad]["error"] and WRONG_VAR in report.sites[bad]["error"]

    # dbt ran over the days the load touched, and the good sites (only) reached gold
    assert report.days is not None and report.days[0] == NOW.date()
    assert report.dbt is not None and report.dbt.success, report.dbt.failures
    registry = {s.name: s.subject_id for s in list_sites(settings, include_removed=True)}
    with connect(settings, read_only=True) as con:
        rows = con.execute("select distinct subject_id from gold.mrt_daily_glycaemia").fetchall()
    assert {subject for (subject,) in rows} == {registry[n] for n in good} | {"bystander"}
    # ... for the sites' subjects alone: no one else's rows were rewritten
    written = inserted_subjects(settings, before)
    assert written["fct_glucose_readings"] == {registry[n] for n in good}
    assert not [model for model, subjects in written.items() if "bystander" in subjects]
