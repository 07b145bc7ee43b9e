"""The Dagster resource every asset uses to reach cascade's one `Settings`."""

from __future__ import annotations

import uuid

import dagster as dg

from cascade.settings import Settings

# Settings handed over by the process that built the definitions (the CLI, tests), by key:
# Dagster rebuilds resources from their config, and a Settings object (with its secrets) must
# never become run config, which Dagster stores and shows.
_HANDED_OVER: dict[str, Settings] = {}


def hand_over(settings: Settings) -> str:
    """Register `settings` for resources of this process; returns the key to configure."""
    key = uuid.uuid4().hex
    _HANDED_OVER[key] = settings
    return key


class CascadeResource(dg.ConfigurableResource):
    """Settings for the assets: read from CASCADE_* when a run starts, never at import time.

    `nightscout_url` and `subject_id` override the environment (e.g. to point a run at the
    demo server); `settings_key` selects Settings handed over in this process (see
    `hand_over`), and is ignored in a process that does not hold them (the environment is used).
    """

    nightscout_url: str | None = None
    subject_id: str | None = None
    settings_key: str | None = None

    def settings(self) -> Settings:
        overrides = {
            key: value
            for key, value in (
                ("nightscout_url", self.nightscout_url),
                ("subject_id", self.subject_id),
            )
            if value
        }
        explicit = _HANDED_OVER.get(self.settings_key or "")
        if explicit is not None:
            return explicit.model_copy(update=overrides)
        return Settings(**overrides)
