"""One `Settings` for every part of cascade: Python code, dbt profile, Dagster resources.

The local profile (SQLite catalog + data directory under `CASCADE_HOME`) is the default;
setting `CASCADE_CATALOG_URL` (postgresql://...) and `CASCADE_DATA_PATH` (s3://...) selects
the scale profile. Secrets are `SecretStr` and are redacted wherever a URL is shown.
"""

from __future__ import annotations

import json
import re
from datetime import date
from functools import cache, cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import quote, unquote, urlsplit
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
    "mrt_daily_insulin",
    "mrt_daily_loop",
    "mrt_cohort_triage",
    "mrt_period_episodes",
    "mrt_period_variability",
    "mrt_device_changes",
    "mrt_meals",
)
REDACTED = "***"
# dbt masks every occurrence of a secret in its log lines, JSON keys included: a short secret
# ("s") turns the key `msg` into `m*****g` and dagster-dbt fails with KeyError 'msg'.
MIN_SECRET_LENGTH = 8
# Names the lake alias must not take: DuckDB's own catalogs and schemas, cascade's layers and
# dlt's datasets (an ATTACH under one of them fails deep inside dlt or shadows a schema).
RESERVED_ALIASES = frozenset(
    {
        *LAYERS,
        "memory",
        "system",
        "temp",
        "main",
        "ops",
        "information_schema",
        "pg_catalog",
        "raw_staging",
        "staging",
    }
)
# A DuckDB memory_limit: a number and a unit as DuckDB reads them (1G = 1GB = 1000^3 bytes,
# 1GiB = 1024^3). DuckDB rejects percentages, at connect time; Settings refuses them at once.
MEMORY_SIZE = re.compile(r"(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[KMGT]i?B|[KMGTB])", re.IGNORECASE)
# what dbt's profile gets for "no limit of cascade's": DuckDB's own default, 80 % of its memory
DUCKDB_DEFAULT_MEMORY = "-1"


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


def _split_url(url: str) -> tuple[str, str | None, str | None, str]:
    """(scheme, user, password, rest) of `url`, percent-decoded; None where absent.

    `urlsplit` cuts the authority at the first `/`, `?` or `#`, so an unencoded password
    holding one of them would spill into the path and be printed. A host never holds `@`: the
    credentials end at the last `@` before the path, wherever the `/`, `?` or `#` are.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "", None, None, url
    if "@" not in rest:
        return scheme, None, None, rest
    credentials, rest = rest.rsplit("@", 1)
    user, colon, password = credentials.partition(":")
    return scheme, unquote(user), unquote(password) if colon else None, rest


def plain(secret: SecretStr | None) -> str | None:
    """A secret's value for the one place that must hand it on (a DuckDB secret, dbt's
    environment), or None when it is not set."""
    return secret.get_secret_value() if secret is not None else None


def redact_url(url: str) -> str:
    """Return `url` with any password replaced by ***, e.g. postgresql://u:***@host/db."""
    scheme, user, password, rest = _split_url(url)
    if password is None:
        return url if user is None else f"{scheme}://{quote(user, safe='')}@{rest}"
    return f"{scheme}://{quote(user or '', safe='')}:{REDACTED}@{rest}"


def _raw_password(url: str) -> str | None:
    """The password of `url` as written (percent-encoding kept), or None."""
    rest = url.partition("://")[2]
    if "@" not in rest or ":" not in rest.rsplit("@", 1)[0]:
        return None
    return rest.rsplit("@", 1)[0].partition(":")[2]


def url_password(url: str) -> str | None:
    """The percent-decoded password of `url`, or None."""
    return _split_url(url)[2]


class CatalogUrl:
    """The parts of a postgresql:// catalog URL, the password kept as a SecretStr.

    The password may hold any character, percent-encoded or not (`p@ss/w#rd?` and `p%40ss`
    both work); errors show the URL with the password as ***.
    """

    def __init__(self, url: str) -> None:
        scheme, user, password, rest = _split_url(url)
        if scheme not in ("postgresql", "postgres"):
            raise ValueError(
                f"CASCADE_CATALOG_URL must be a postgresql:// URL, got {redact_url(url)!r}"
            )
        parts = urlsplit(f"//{rest}")
        try:
            port = parts.port
        except ValueError:
            raise ValueError(
                f"CASCADE_CATALOG_URL {redact_url(url)!r} has no valid port after the host "
                "(percent-encode special characters in the user name)"
            ) from None
        self.host = parts.hostname or "127.0.0.1"
        self.port = port or 5432
        self.user = user or "postgres"
        self.password = SecretStr(password or "")
        self.database = unquote(parts.path or "/").lstrip("/") or "postgres"

    def redacted(self) -> str:
        """The URL with the password replaced by ***."""
        secret = f":{REDACTED}" if self.password.get_secret_value() else ""
        return f"postgresql://{self.user}{secret}@{self.host}:{self.port}/{self.database}"


def _check_secret_length(name: str, value: str | None) -> None:
    if value and len(value) < MIN_SECRET_LENGTH:
        raise ValueError(
            f"{name} has {len(value)} characters; use at least {MIN_SECRET_LENGTH} "
            "(dbt masks every occurrence of a secret in its logs, and a short one garbles "
            "them: choose a longer secret)"
        )


def normalise_endpoint(endpoint: str, use_ssl: bool | None) -> tuple[str, bool]:
    """(host[:port], use_ssl) of an S3 endpoint given with or without a scheme.

    A scheme, when given, decides TLS unless CASCADE_S3_USE_SSL was set to the opposite, which
    is refused: DuckDB takes TLS from USE_SSL, dlt from the endpoint URL, and a disagreement
    makes one of them talk https to an http server.
    """
    scheme, sep, host = endpoint.strip().rpartition("://")
    host = host.rstrip("/")
    if not host or "/" in host:
        raise ValueError(
            f"CASCADE_S3_ENDPOINT {endpoint!r} is not host[:port] or http(s)://host[:port]"
        )
    if not sep:
        return host, True if use_ssl is None else use_ssl
    if scheme not in ("http", "https"):
        raise ValueError(f"CASCADE_S3_ENDPOINT {endpoint!r} must use http:// or https://")
    if use_ssl is not None and use_ssl != (scheme == "https"):
        raise ValueError(
            f"CASCADE_S3_ENDPOINT {endpoint!r} says {scheme} but CASCADE_S3_USE_SSL is "
            f"{str(use_ssl).lower()}: make them agree (or drop one of them)"
        )
    return host, scheme == "https"


class Settings(BaseSettings):
    """cascade configuration, read from `CASCADE_*` environment variables and an optional .env."""

    model_config = SettingsConfigDict(
        env_prefix="CASCADE_",
        env_file=".env",
        extra="ignore",
        validate_default=True,
        # pydantic would print (a slice of) the raw input, secrets included, in every error
        hide_input_in_errors=True,
    )

    home: Path = Path(".cascade")
    lake_alias: str = "ducklake"
    catalog_url: SecretStr | None = None
    data_path: str | None = None

    s3_endpoint: str | None = None
    s3_region: str = "us-east-1"
    s3_url_style: Literal["path", "vhost"] = "path"
    s3_use_ssl: bool = Field(
        default=True, description="TLS to the S3 endpoint (an endpoint's scheme decides if unset)"
    )
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None

    nightscout_url: str | None = None
    nightscout_api_secret: SecretStr | None = None
    nightscout_token: SecretStr | None = None
    subject_id: str | None = Field(
        default=None,
        description="Subject key of the CASCADE_NIGHTSCOUT_URL site (default: `default`)",
    )
    subject_key: SecretStr | None = Field(
        default=None,
        description="HMAC key of registered sites' pseudonymous subject ids (required on scale)",
    )
    fetch_concurrency: int = Field(
        default=8, ge=1, le=64, description="Sites fetched at once by one ingest run"
    )
    lookback_hours: float = Field(
        default=3.0, ge=0, le=24 * 30, description="Re-fetch this much before a site's mark"
    )

    timezone: str = Field(
        default="UTC",
        description="Zone of sites whose profile names none; every site's zone with timezone_override",
    )
    timezone_override: bool = False
    start_date: str = Field(default="2024-01-01", description="First day loaded (YYYY-MM-DD)")
    page_size: int = Field(default=10_000, ge=1, le=100_000)
    http_timeout_s: float = Field(default=30.0, gt=0)
    http_retries: int = Field(default=5, ge=0)
    lake_writers: int = Field(default=4, ge=1, description="Dagster pool size on PostgreSQL")
    lock_timeout_s: float = Field(
        default=600.0, gt=0, description="Longest wait for the lake's writer or dbt lock"
    )
    load_deadline_s: float = Field(
        default=60.0, gt=0, description="A load into the lake ends with an error after this long"
    )
    dbt_unit_tests: bool = Field(
        default=False,
        description="Run dbt's unit tests in every build (development, CI); production leaves them out",
    )
    duckdb_memory_limit: str | None = Field(
        default=None,
        description="Memory of each DuckDB instance cascade opens, e.g. 1.5GiB (unset or -1: DuckDB's 80% of RAM)",
    )
    load_workers: int = Field(
        default=2,
        ge=1,
        le=20,
        description="dlt load jobs at once, each a DuckDB instance of up to the memory limit",
    )
    dbt_batch_readings: int = Field(
        default=250_000,
        gt=0,
        description="Readings per group of subjects in the table models built a group at a time "
        "(250,000 fit in 1 GiB of DuckDB memory)",
    )
    marts_url: SecretStr | None = None
    glucose_units: Literal["mg/dL", "mmol/L"] = "mg/dL"

    @field_validator("lake_alias")
    @classmethod
    def _alias_is_identifier(cls, value: str) -> str:
        validate_identifier(value, "CASCADE_LAKE_ALIAS")
        if value.lower() in RESERVED_ALIASES or value.lower().startswith(("_dlt", "__ducklake")):
            raise ValueError(
                f"CASCADE_LAKE_ALIAS {value!r} is reserved (a layer, DuckDB catalog or dlt "
                f"name: {', '.join(sorted(RESERVED_ALIASES))}); pick another, e.g. ducklake"
            )
        return value

    @field_validator("start_date")
    @classmethod
    def _start_date_is_a_date(cls, value: str) -> str:
        # an ISO string, so Dagster's partitions and dbt's vars take it as is
        try:
            return date.fromisoformat(str(value).strip()).isoformat()
        except ValueError:
            raise ValueError(
                f"CASCADE_START_DATE {value!r} is not a date like 2024-01-31"
            ) from None

    @field_validator("duckdb_memory_limit")
    @classmethod
    def _memory_limit_is_a_size(cls, value: str | None) -> str | None:
        if value is None or value.strip() in ("", DUCKDB_DEFAULT_MEMORY):
            return None
        match = MEMORY_SIZE.fullmatch(value.strip())
        if match is None:
            raise ValueError(
                f"CASCADE_DUCKDB_MEMORY_LIMIT {value!r} is not a size like 1.5GiB or 800MB "
                "(DuckDB takes no percentages)"
            )
        return f"{match['number']}{match['unit']}"

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
        if self.s3_endpoint is not None:
            explicit = self.s3_use_ssl if "s3_use_ssl" in self.model_fields_set else None
            _, self.s3_use_ssl = normalise_endpoint(self.s3_endpoint, explicit)
        for name, value in self._named_secrets().items():
            _check_secret_length(name, value)
        return self

    def _named_secrets(self) -> dict[str, str | None]:
        def plain(secret: SecretStr | None) -> str | None:
            return secret.get_secret_value() if secret is not None else None

        marts = plain(self.marts_url)
        return {
            "CASCADE_S3_ACCESS_KEY_ID": plain(self.s3_access_key_id),
            "CASCADE_S3_SECRET_ACCESS_KEY": plain(self.s3_secret_access_key),
            "CASCADE_NIGHTSCOUT_API_SECRET": plain(self.nightscout_api_secret),
            "CASCADE_NIGHTSCOUT_TOKEN": plain(self.nightscout_token),
            "CASCADE_SUBJECT_KEY": plain(self.subject_key),
            "the password in CASCADE_CATALOG_URL": (
                url_password(plain(self.catalog_url)) if self.catalog_url else None
            ),
            "the password in CASCADE_MARTS_URL": url_password(marts) if marts else None,
        }

    @property
    def start_day(self) -> date:
        """`start_date` as a date."""
        return date.fromisoformat(self.start_date)

    @property
    def s3_endpoint_host(self) -> str | None:
        """The S3 endpoint as host[:port], no scheme (DuckDB's ENDPOINT), or None for AWS."""
        if self.s3_endpoint is None:
            return None
        return normalise_endpoint(self.s3_endpoint, self.s3_use_ssl)[0]

    @property
    def s3_endpoint_url(self) -> str | None:
        """The S3 endpoint with the scheme CASCADE_S3_USE_SSL implies (dlt's endpoint_url)."""
        host = self.s3_endpoint_host
        if host is None:
            return None
        return f"{'https' if self.s3_use_ssl else 'http'}://{host}"

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
    def work_dir(self) -> Path:
        """Where loads keep private working folders, so `health` and `maintain` find the ones a
        killed load left behind (a system temp dir would hide them among everyone's files)."""
        return (self.home / "tmp").absolute()

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
        """Every secret value that is set, as given and percent-encoded, so output can be scrubbed.

        Whole URLs come first: their password may be written encoded (`%40`) or not.
        """
        urls = [url.get_secret_value() for url in (self.catalog_url, self.marts_url) if url]
        secrets = list(self._named_secrets().values()) + [_raw_password(url) for url in urls]
        values = list(urls)
        for value in secrets:
            if value:
                values += [value, quote(value, safe=""), quote(value)]
        return list(dict.fromkeys(v for v in values if v))

    def to_child_json(self) -> str:
        """These settings with secrets in clear, to hand to a child process (never printed)."""
        values = {
            name: value.get_secret_value() if hasattr(value, "get_secret_value") else value
            for name, value in self
            if value is not None
        }
        return json.dumps(values, default=str)

    @classmethod
    def from_child_json(cls, payload: str) -> Settings:
        """The settings a parent handed over with `to_child_json`."""
        return cls(**json.loads(payload))

    def redact(self, text: str) -> str:
        """Replace every secret value in `text` with ***, and the password of any URL in it."""
        for value in sorted(self.secret_values(), key=len, reverse=True):
            text = text.replace(value, REDACTED)
        return text
