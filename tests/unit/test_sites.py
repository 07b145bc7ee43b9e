"""Sites without a lake: URL normalisation, subject ids and keys, windows, CSV checks, people."""

from __future__ import annotations

import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from cascade.demo.server import DemoServer, people
from cascade.settings import Settings
from cascade.sites.fetch import plan_windows
from cascade.sites.registry import Site, SitesError, read_csv, shortcut_site
from cascade.sites.subjects import SubjectKeyError, normalise_url, subject_id, subject_key
from cascade.sources.nightscout.helpers import NightscoutClient, NightscoutError, Window

NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTP://Example.ORG:80/", "http://example.org"),
        ("https://ns.example.org:443/proxy/alice/", "https://ns.example.org/proxy/alice"),
        ("https://ns.example.org:8443/Alice", "https://ns.example.org:8443/Alice"),
        (" http://127.0.0.1:1337/person-001 ", "http://127.0.0.1:1337/person-001"),
    ],
)
def test_normalise_url_keeps_the_path(url: str, expected: str) -> None:
    assert normalise_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org",
        "example.org",
        "https://user:pw@example.org",
        "https://example.org/?token=abc",
        "https://example.org/#x",
    ],
)
def test_normalise_url_refuses_what_is_not_a_base_url(url: str) -> None:
    with pytest.raises(ValueError):
        normalise_url(url)


def test_subject_id_is_keyed_opaque_and_stable_under_spelling() -> None:
    key = b"a-key-of-some-length"
    one = subject_id(key, "https://ns.example.org/alice/")
    assert one == subject_id(key, "HTTPS://NS.example.org:443/alice")
    assert one.startswith("s_") and len(one) == 18 and int(one[2:], 16) >= 0
    assert "alice" not in one and "example" not in one
    assert one != subject_id(b"another-key-entirely", "https://ns.example.org/alice")
    assert one != subject_id(key, "https://ns.example.org/bob")


def test_local_key_is_made_once_private_and_shared_by_racing_threads(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / ".cascade", _env_file=None)
    keys: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: keys.append(subject_key(settings))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(keys)) == 1 and len(keys[0]) == 64
    mode = (settings.home / "subject.key").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600
    assert list(settings.home.glob(".subject.key.*")) == []


def test_configured_key_wins_and_scale_refuses_to_invent_one(tmp_path: Path) -> None:
    configured = Settings(home=tmp_path, subject_key="shared-study-key", _env_file=None)
    assert subject_key(configured) == b"shared-study-key"
    scale = Settings(
        home=tmp_path,
        catalog_url="postgresql://u@127.0.0.1:5432/db",
        data_path="s3://bucket/lake",
        _env_file=None,
    )
    with pytest.raises(SubjectKeyError, match="CASCADE_SUBJECT_KEY"):
        subject_key(scale)
    with pytest.raises(ValidationError, match="CASCADE_SUBJECT_KEY"):
        Settings(subject_key="short", _env_file=None)
    assert "shared-study-key" not in configured.redact("key shared-study-key")


def test_windows_start_at_the_mark_minus_look_back_or_at_the_start_date() -> None:
    settings = Settings(start_date="2024-03-01", lookback_hours=3, _env_file=None)
    mark = round((NOW - timedelta(hours=1)).timestamp() * 1000)
    site = Site("alice", "http://x", "s_0", marks={"entries": mark})
    windows = plan_windows(site, settings, NOW)
    assert windows["entries"] == Window(NOW - timedelta(hours=4), NOW)
    assert windows["treatments"] == Window(datetime(2024, 3, 1, tzinfo=UTC), NOW)
    backfill = Window(NOW - timedelta(days=2), NOW - timedelta(days=1))
    assert set(plan_windows(site, settings, NOW, backfill).values()) == {backfill}


def test_csv_is_checked_before_anything_is_written(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text(
        "name,url,api_secret_env,token_env,timezone\n"
        "alice,https://a.example.org/,A_SECRET,,europe/berlin\n"
        "bob,https://b.example.org,,B_TOKEN,\n"
    )
    specs = read_csv(good)
    assert specs[0] == ("alice", "https://a.example.org", "A_SECRET", None, "Europe/Berlin")
    assert specs[1] == ("bob", "https://b.example.org", None, "B_TOKEN", None)
    for body, message in [
        ("name\nalice\n", "no column url"),
        ("name,url\nalice,https://a\nalice,https://b\n", "line 3: site 'alice' appears twice"),
        ("name,url,api_secret_env\nalice,https://a,s3cr3t value\n", "line 2: .*not an env"),
        ("name,url,timezone\nalice,https://a,Mars/Base\n", "line 2: .*IANA"),
        ("name,url,api_secret_env,token_env\na,https://a,X,Y\n", "not both"),
    ]:
        bad = tmp_path / "bad.csv"
        bad.write_text(body)
        with pytest.raises(SitesError, match=message):
            read_csv(bad)


def test_shortcut_site_is_named_by_subject_id_or_default() -> None:
    assert shortcut_site(Settings(_env_file=None)) is None
    site = shortcut_site(Settings(nightscout_url="https://ns.example.org", _env_file=None))
    assert (site.name, site.subject_id, site.stored) == ("default", "default", False)
    named = Settings(nightscout_url="https://x.org", subject_id="p7", _env_file=None)
    assert shortcut_site(named).subject_id == "p7"


def test_people_cycle_uploaders_with_their_own_seeds_and_zones() -> None:
    crowd = people(6)
    assert [p.slug for p in crowd[:2]] == ["person-001", "person-002"]
    assert [p.uploader for p in crowd] == ["loop", "trio", "aaps", "xdrip", "default", "loop"]
    assert len({p.seed for p in crowd}) == 6
    assert crowd[1].zone == "Asia/Kolkata"


def test_client_reads_sites_under_a_path_and_people_differ() -> None:
    window = Window(NOW - timedelta(hours=2), NOW)
    with DemoServer(now=NOW, sites=3) as server:
        pages = {}
        for url in server.site_urls:
            client = NightscoutClient(url + "/", timeout_s=10, retries=0)
            pages[url] = [r["_id"] for page in client.pages("entries", window, 1000) for r in page]
            client.close()
        assert all(pages.values())
        assert len({frozenset(ids) for ids in pages.values()}) == 3
        assert all(path.startswith("/person-") for path, _ in server.request_log)
        with pytest.raises(NightscoutError, match="404"):  # no site at the root
            NightscoutClient(server.url, retries=0).get_json("status.json", {})


def test_subject_key_is_a_secret_setting() -> None:
    settings = Settings(subject_key="study-2026-key", _env_file=None)
    assert isinstance(settings.subject_key, SecretStr)
    assert "study-2026-key" not in repr(settings)
