"""The Dagster resource every asset uses to reach cascade's one `Settings`."""

from __future__ import annotations

import dagster as dg

from cascade.settings import Settings


class CascadeResource(dg.ConfigurableResource):
    """Settings are read from CASCADE_* when a run starts, never at import time.

    `nightscout_url` and `subject_id` override the environment, e.g. to point a run at the
    demo server.
    """

    nightscout_url: str | None = None
    subject_id: str | None = None

    def settings(self) -> Settings:
        overrides = {
            key: value
            for key, value in (
                ("nightscout_url", self.nightscout_url),
                ("subject_id", self.subject_id),
            )
            if value
        }
        return Settings(**overrides)
