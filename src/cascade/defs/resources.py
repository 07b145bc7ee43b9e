"""The Dagster resource every asset uses to reach cascade's one `Settings`."""

from __future__ import annotations

from typing import Any

import dagster as dg
from pydantic import PrivateAttr, SecretStr

from cascade.settings import Settings


class CascadeResource(dg.ConfigurableResource):
    """Settings for the assets, built when a run starts: CASCADE_* from the environment (and
    `.env`), then `overrides` on top. Nothing is read at import or definition time.

    Runs launched from the UI or `dagster dev` use the environment alone. In-process runs
    (`cascade run`, tests) pass what differs from it as `overrides` (see `from_settings`).
    `echo_dbt` re-prints dbt's log lines on stdout (the UI's compute logs); `cascade run`
    turns it off unless `--verbose`, dbt's own log file under CASCADE_HOME/dbt has them anyway.
    """

    overrides: dict[str, Any] = {}
    echo_dbt: bool = True
    _settings: Settings | None = PrivateAttr(default=None)

    @classmethod
    def from_settings(cls, settings: Settings, **values: Any) -> CascadeResource:
        """A resource that rebuilds `settings`: only fields that differ from the environment's
        Settings become overrides, so secrets read from the environment stay out of the run's
        config (which Dagster stores); secrets set in code (tests) are passed as they are."""
        try:
            environment = Settings()
        except ValueError:
            environment = None
        overrides = {
            name: _plain(value)
            for name in type(settings).model_fields
            if (value := getattr(settings, name)) is not None
            and (environment is None or _plain(value) != _plain(getattr(environment, name)))
        }
        overrides |= {k: v for k, v in values.pop("overrides", {}).items() if v is not None}
        return cls(overrides=overrides, **values)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._settings = Settings(**self.overrides)

    def settings(self) -> Settings:
        """The run's Settings (built once per run, when the resource is set up)."""
        if self._settings is None:
            self._settings = Settings(**self.overrides)
        return self._settings


def _plain(value: Any) -> Any:
    """A JSON-able form of a Settings value (secrets in clear, paths and dates as text)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
