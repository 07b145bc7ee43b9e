"""dbt's `modules` context variable for sqlfluff's jinja templater (macros use modules.datetime,
modules.re); lint only, dbt itself never reads this folder."""

import itertools  # noqa: F401 - read by the macros through the jinja context
import re  # noqa: F401

from . import datetime  # noqa: F401
