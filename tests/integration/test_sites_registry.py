"""The registry in the lake, on both profiles: concurrent adds, import, remove, purge, CLI."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from cascade.lake.connection import connect
from cascade.settings import Settings
from cascade.sites import SitesError, add_site, import_sites, list_sites, remove_site
from cascade.sites.commands import sites
from cascade.sites.registry import RunRecord, record_runs


@pytest.fixture
def settings(lake_settings: Settings) -> Settings:
    return lake_settings.model_copy(update={"subject_key": SecretStr("registry-test-key")})


def test_concurrent_adds_register_each_site_once(settings: Settings) -> None:
    errors: list[Exception] = []

    def add(name: str, url: str) -> None:
        try:
            add_site(settings, name, url)
        except SitesError as exc:
            errors.append(exc)

    jobs = [(f"p{i}", f"https://ns.example.org/p{i}") for i in range(6)]
    jobs += [("same", "https://same.example.org")] * 3  # one name, three racers
    jobs += [("clash", "https://ns.example.org/p0")]  # a URL already taken
    threads = [threading.Thread(target=add, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    registered = list_sites(settings)
    assert sorted(s.name for s in registered) in (
        sorted([*(f"p{i}" for i in range(6)), "same"]),
        sorted([*(f"p{i}" for i in range(1, 6)), "same", "clash"]),  # clash first, p0 refused
    )
    assert len({s.subject_id for s in registered}) == len(registered)
    assert len(errors) == 1 and "already registered" in str(errors[0])


def test_import_is_idempotent_remove_keeps_and_purge_forgets(
    settings: Settings, tmp_path: Path
) -> None:
    csv = tmp_path / "sites.csv"
    csv.write_text(
        "name,url,api_secret_env,token_env,timezone\n"
        "alice,https://ns.example.org/alice,ALICE_SECRET,,Europe/Berlin\n"
        "bob,https://ns.example.org/bob,,BOB_TOKEN,\n"
    )
    assert import_sites(settings, csv).added == ["alice", "bob"]
    assert import_sites(settings, csv).unchanged == ["alice", "bob"]
    csv.write_text(csv.read_text().replace("Europe/Berlin", "Asia/Kolkata"))
    assert import_sites(settings, csv).updated == ["alice"]
    alice = next(s for s in list_sites(settings) if s.name == "alice")
    assert (alice.timezone, alice.api_secret_env) == ("Asia/Kolkata", "ALICE_SECRET")

    record_runs(settings, [RunRecord("alice", "ok", {"entries": 1_000})])
    remove_site(settings, "alice")
    assert [s.name for s in list_sites(settings)] == ["bob"]
    with pytest.raises(SitesError, match="removed with its data kept"):
        add_site(settings, "alice", "https://ns.example.org/other")
    again, outcome = add_site(settings, "alice", "https://ns.example.org/alice")
    assert outcome == "reactivated" and again.marks["entries"] == 1_000
    assert again.subject_id == alice.subject_id

    # purge deletes the person's rows from raw and every downstream table with a subject_id
    with connect(settings) as con:
        for table in ("raw.entries", "silver.fct_glucose_readings"):
            con.execute(f"create table {table} (subject_id varchar, v int)")
            con.execute(
                f"insert into {table} values ({alice.subject_id!r}, 1), "
                f"({alice.subject_id!r}, 2), ('s_someone_else', 3)"
            )
    removal = remove_site(settings, "alice", purge=True)
    assert removal.purged == {"raw.entries": 2, "silver.fct_glucose_readings": 2}
    assert [s.name for s in list_sites(settings, include_removed=True)] == ["bob"]
    with connect(settings) as con:
        left = con.execute("select subject_id from silver.fct_glucose_readings").fetchall()
    assert left == [("s_someone_else",)]


def test_sites_command(settings: Settings, tmp_path: Path) -> None:
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(sites, list(args), obj=settings, catch_exceptions=False)

    added = invoke("add", "carol", "--url", "https://ns.example.org/carol/", "--timezone", "utc")
    assert added.exit_code == 0 and "added: carol" in added.output
    assert "s_" in added.output
    listed = invoke("list")
    assert "carol" in listed.output and "https://ns.example.org/carol" in listed.output
    both = invoke(
        "add", "dave", "--url", "https://d.org", "--api-secret-env", "A", "--token-env", "B"
    )
    assert both.exit_code == 1 and "not both" in both.output
    missing = invoke("remove", "nobody")
    assert missing.exit_code == 1 and "no site named 'nobody'" in missing.output
    removed = invoke("remove", "carol")
    assert removed.exit_code == 0 and "its data stays" in removed.output
    assert "no sites registered" in invoke("list").output
