"""Secrets: any character in a catalog password, no fragment of one in any error, none short."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cascade.settings import CatalogUrl, Settings, redact_url

# every character that cuts a URL short, and %40 (an encoded @) that must be decoded
PASSWORD = "Zq9/xK#Wp?Vj@mR%40vT"
DECODED = "Zq9/xK#Wp?Vj@mR@vT"
URL = f"postgresql://cascade:{PASSWORD}@db.example:5433/lake"


def fragments(secret: str, size: int = 3) -> set[str]:
    """Every substring of `secret` of `size` characters."""
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


def assert_no_fragment(text: str) -> None:
    leaked = sorted(f for f in fragments(PASSWORD) | fragments(DECODED) if f in text)
    assert not leaked, f"secret fragments {leaked} in {text!r}"


def test_password_with_any_character_is_parsed_and_decoded():
    catalog = CatalogUrl(URL)
    assert catalog.password.get_secret_value() == DECODED
    assert (catalog.user, catalog.host, catalog.port, catalog.database) == (
        "cascade",
        "db.example",
        5433,
        "lake",
    )
    assert catalog.redacted() == "postgresql://cascade:***@db.example:5433/lake"
    assert redact_url(URL) == "postgresql://cascade:***@db.example:5433/lake"


def test_redact_scrubs_raw_and_encoded_forms():
    settings = Settings(catalog_url=URL, data_path="s3://b/p", _env_file=None)
    text = f"failed: {URL} / {DECODED} / {PASSWORD} / Zq9%2FxK%23Wp%3FVj%40mR%2540vT"
    assert_no_fragment(settings.redact(text))


@pytest.mark.parametrize(
    "url",
    [
        f"mysql://cascade:{PASSWORD}@db/lake",
        f"postgresql://cascade:{PASSWORD}@db:notaport/lake",
    ],
)
def test_errors_hold_no_fragment_of_the_password(url):
    with pytest.raises(ValidationError) as info:
        Settings(catalog_url=url, data_path="s3://b/p", _env_file=None)
    assert_no_fragment(str(info.value))


@pytest.mark.parametrize(
    ("field", "value", "name"),
    [
        ("s3_access_key_id", "AKIA", "CASCADE_S3_ACCESS_KEY_ID"),
        ("s3_secret_access_key", "s", "CASCADE_S3_SECRET_ACCESS_KEY"),
        ("nightscout_api_secret", "abc", "CASCADE_NIGHTSCOUT_API_SECRET"),
        ("nightscout_token", "tok-1", "CASCADE_NIGHTSCOUT_TOKEN"),
        ("catalog_url", "postgresql://u:Qw7x@h/db", "password in CASCADE_CATALOG_URL"),
        ("marts_url", "postgresql://u:Qw7x@h/marts", "password in CASCADE_MARTS_URL"),
    ],
)
def test_short_secrets_are_refused_at_start_up(field, value, name):
    values = {field: value, "_env_file": None}
    if field == "catalog_url":
        values["data_path"] = "s3://b/p"
    with pytest.raises(ValidationError, match="at least 8") as info:
        Settings(**values)
    message = str(info.value)
    assert name in message
    short = value.rsplit(":", 1)[-1].split("@")[0] if "://" in value else value
    assert f"'{short}'" not in message and f" {short} " not in message


def test_no_password_is_not_a_short_password():
    settings = Settings(catalog_url="postgresql://u@h/db", data_path="s3://b/p", _env_file=None)
    assert settings.catalog.password.get_secret_value() == ""
