"""`modules.datetime` for sqlfluff: sqlfluff's `var()` returns the placeholder 'item', which the
window macros parse as a date, so a non-date parses as a fixed day (lint renders, never runs)."""

import datetime as _datetime

timedelta = _datetime.timedelta


class date(_datetime.date):  # noqa: N801 - the name the macros call
    @classmethod
    def fromisoformat(cls, value: str) -> _datetime.date:
        try:
            return _datetime.date.fromisoformat(value)
        except ValueError:
            return _datetime.date(2024, 1, 1)
