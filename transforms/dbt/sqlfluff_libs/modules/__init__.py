"""dbt's `modules` context variable for sqlfluff's jinja templater (the macros use
modules.datetime); lint only, dbt itself never reads this folder."""

from . import datetime  # noqa: F401 - read by the macros through the jinja context
