"""One `Settings` for every part of cascade: Python code, dbt profile, Dagster resources.

The local profile (SQLite catalog + data directory under `CASCADE_HOME`) is the default;
setting `CASCADE_CATALOG_URL` (postgresql://...) and `CASCADE_DATA_PATH` (s3://...) selects
the scale profile. Secrets are `SecretStr` and are redacted wherever a URL is shown.
"""

from __future__ import annotations

import re
from functools import cache, cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
LAYERS = ("raw", "bronze", "silver", "gold")
GOLD_MARTS = (
    "mrt_daily_glycaemia",
    "mrt_agp",
    "mrt_period_summary",
    "mrt_quality_coverage",
    "mrt_glucose_overview",
    "mrt_glucose_hourly_patterns",
)
REDACTED = "***"


def validate_identifier(value: str, what: str = "identifier") -> str:
    """Return `value` if it is a plain SQL identifier, else raise ValueError naming `what`."""
    if not IDENTIFIER.match(value or ""):
        raise ValueError(
            f"{what} {value!r} is not a valid SQL identifier "
            "(letters, digits and underscores, not starting with a digit, at most 63 characters)"
        )
    return value


@cache
def _zone_names() -> dict[str, str]:
    return {name.lower(): name for name in available_timezones()}


def canonical_zone(name: str, what: str = "timezone") -> str:
    """The IANA spelling of `name`, matched case-insensitively (Nightscout stores `ETC/GMT+7`).

    Raises ValueError naming `what` when no IANA zone has that name.
    """
    canonical = _zone_names().get((name or "").strip().lower())
    try:
        ZoneInfo(canonical or "")
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{what} {name!r} is not an IANA timezone (e.g. Europe/Berlin, Etc/GMT+7, UTC)"
        ) from None
    return canonical


def redact_url(url: str) -> str:
    """Return `url` with any password replaced by ***, e.g. postgresql://u:***@host/db."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{REDACTED}@{netloc[1]}"))


class CatalogUrl:
    """The parts of a postgresql:// catalog URL, the password kept as a SecretStr."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError(
                f"CASCADE_CATALOG_URL must be a postgresql:// URL, got {redact_url(url)!r}"
            )
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 5432
        self.user = parts.username or "postgres"
        self.password = SecretStr(parts.password or "")
        self.database = (parts.path or "/").lstrip("/") or "postgres"

    def redacted(self) -> str:
        """The URL with the password replaced by ***."""
        secret = f":{REDACTED}" if self.password.get_secret_value() else ""
        return f"postgresql://{self.user}{secret}@{self.host}:{self.port}/{self.database}"


class Settings(BaseSettings):
    """cascade configuration, read from `CASCADE_*` environment variables and an optional .env."""

    model_config = SettingsConfigDict(
        env_prefix="CASCADE_", env_file=".env", extra="ignore", validate_default=True
    )

    home: Path = Path(".cascade")
    lake_alias: str = "ducklake"
    catalog_url: SecretStr | None = None
    data_path: str | None = None

    s3_endpoint: str | None = None
    s3_region: str = "us-east-1"
    s3_url_style: Literal["path", "vhost"] = "path"
    s3_use_ssl: bool = True
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None

    nightscout_url: str | None = None
    nightscout_api_secret: SecretStr | None = None
    nightscout_token: SecretStr | None = None
    subject_id: str | None = Field(
        default=None, description="Subject key of the Nightscout site (default: its host name)"
    )

    timezone: str = Field(
        default="UTC",
        description="Zone of sites whose profile names none; every site's zone with timezone_override",
    )
    timezone_override: bool = False
    start_date: str = "2024-01-01"
    page_size: int = Field(default=10_000, ge=1, le=100_000)
    http_timeout_s: float = Field(default=30.0, gt=0)
    http_retries: int = Field(default=5, ge=0)
    lake_writers: int = Field(default=4, ge=1, description="Dagster pool size on PostgreSQL")
    marts_url: SecretStr | None = None
    glucose_units: Literal["mg/dL", "mmol/L"] = "mg/dL"

    @field_validator("lake_alias")
    @classmethod
    def _alias_is_identifier(cls, value: str) -> str:
        return validate_identifier(value, "CASCADE_LAKE_ALIAS")

    @field_validator("timezone")
    @classmethod
    def _timezone_is_iana(cls, value: str) -> str:
        return canonical_zone(value, "CASCADE_TIMEZONE")

    @model_validator(mode="after")
    def _profile_is_complete(self) -> Settings:
        if (self.catalog_url is None) != (self.data_path is None):
            raise ValueError(
                "the scale profile needs both CASCADE_CATALOG_URL (postgresql://...) and "
                "CASCADE_DATA_PATH (s3://bucket/prefix); set both or neither"
            )
        if self.data_path is not None and not self.data_path.startswith("s3://"):
            raise ValueError(f"CASCADE_DATA_PATH must be an s3:// URL, got {self.data_path!r}")
        if self.catalog_url is not None:
            CatalogUrl(self.catalog_url.get_secret_value())
        return self

    @property
    def profile(self) -> Literal["local", "scale"]:
        """`local` (SQLite catalog, local files) or `scale` (PostgreSQL catalog, S3 data)."""
        return "scale" if self.catalog_url is not None else "local"

    @cached_property
    def catalog(self) -> CatalogUrl | None:
        """The PostgreSQL catalog's parts, or None on the local profile."""
        return CatalogUrl(self.catalog_url.get_secret_value()) if self.catalog_url else None

    @property
    def catalog_path(self) -> Path:
        """The SQLite catalog file of the local profile."""
        return (self.home / "catalog.sqlite").absolute()

    @property
    def lake_data_path(self) -> str:
        """Where data files go: an s3:// prefix, or the local lake directory (with a slash)."""
        if self.data_path:
            return self.data_path.rstrip("/") + "/"
        return str((self.home / "lake").absolute()) + "/"

    @property
    def metadata_schema(self) -> str:
        """The PostgreSQL schema holding DuckLake's tables: named after the alias, as dlt does."""
        return self.lake_alias

    def describe_catalog(self) -> str:
        """The catalog location for humans, password redacted."""
        return self.catalog.redacted() if self.catalog else f"sqlite:{self.catalog_path}"

    def secret_values(self) -> list[str]:
        """Every secret value that is set, so output can be scrubbed of them."""
        secrets = [
            self.s3_access_key_id,
            self.s3_secret_access_key,
            self.nightscout_api_secret,
            self.nightscout_token,
        ]
        values = [s.get_secret_value() for s in secrets if s is not None]
        if self.catalog:
            values.append(self.catalog.password.get_secret_value())
        if self.marts_url:
            values.append(self.marts_url.get_secret_value())
            marts_password = urlsplit(self.marts_url.get_secret_value()).password
            values.append(marts_password or "")
        return [v for v in values if v]

    def redact(self, text: str) -> str:
        """Replace every secret value in `text` with ***."""
        for value in sorted(self.secret_values(), key=len, reverse=True):
            text = text.replace(value, REDACTED)
        return text
