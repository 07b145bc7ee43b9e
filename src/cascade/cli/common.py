"""What every command shares: output consoles, settings loading, dates, durations, errors.

A failure leaves as one redacted line on stderr and exit code 1; its traceback goes to
CASCADE_HOME/logs/<command>.log, and to stderr as well with `--verbose`.
"""

from __future__ import annotations

import re
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from cascade.settings import Settings

# soft_wrap: an error is one line, however narrow the terminal
console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


class CascadeError(click.ClickException):
    """A failure reported as one clean, redacted line and exit code 1."""

    def show(self, file=None) -> None:
        console.print(f"[red]Error:[/red] {escape(self.message)}", highlight=False)


def settings_problem(exc: ValidationError) -> str:
    """A settings validation error as one line, each field by the variable that sets it:
    `CASCADE_FIELD: problem; CASCADE_OTHER: problem`."""

    def where(loc: tuple) -> str:
        if len(loc) == 1 and loc[0] in Settings.model_fields:
            return f"CASCADE_{str(loc[0]).upper()}"
        return ".".join(map(str, loc)) or "settings"

    return "; ".join(f"{where(e['loc'])}: {e['msg']}" for e in exc.errors())


def load_settings() -> Settings:
    """Settings from the environment; a validation error becomes one clear line."""
    try:
        return Settings()
    except ValidationError as exc:
        raise CascadeError(f"invalid configuration: {settings_problem(exc)}") from None


verbose_option = click.option(
    "--verbose",
    is_flag=True,
    help="Full detail on stderr too: tracebacks, and the logs of dlt, Dagster, dbt.",
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and every exception under it (dlt wraps failures in `.exception`)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        inner = getattr(exc, "exception", None)
        exc = inner if isinstance(inner, BaseException) else (exc.__cause__ or exc.__context__)


def one_line(settings: Settings | None, exc: BaseException) -> str:
    """What failed, in one redacted line; a Nightscout site's own error wins over the load's.

    NightscoutError already names the site (no query, no token) and what to check; the ingest
    wrapper around it would send the reader to S3 and the catalog instead.
    """
    helpers = sys.modules.get("cascade.sources.nightscout.helpers")
    site_error = getattr(helpers, "NightscoutError", None)
    if site_error is not None:
        for inner in _chain(exc):
            if isinstance(inner, site_error):
                exc = inner
                break
    text = " ".join(str(exc).split()) or type(exc).__name__
    if site_error is not None and isinstance(exc, site_error):
        text = f"Nightscout site {text}"
    return settings.redact(text) if settings else text


def log_failure(settings: Settings, command: str, detail: str) -> Path | None:
    """Append a failure's traceback to CASCADE_HOME/logs/<command>.log; None when there is no
    CASCADE_HOME yet (a command that failed before creating anything leaves nothing behind)."""
    if not settings.home.exists():
        return None
    path = settings.home / "logs" / f"{command}.log"
    path.parent.mkdir(exist_ok=True)
    with path.open("a", encoding="utf-8") as log:
        log.write(f"{datetime.now().astimezone().isoformat()} {command} failed\n{detail}\n")
    return path


@contextmanager
def reported(settings: Settings, command: str, verbose: bool = False) -> Iterator[None]:
    """Run a command's work: any failure leaves as one redacted line and exit code 1.

    The redacted traceback goes to CASCADE_HOME/logs/<command>.log, and with `verbose` to
    stderr as well.
    """
    try:
        yield
    except click.ClickException:
        raise
    except KeyboardInterrupt:
        raise CascadeError("interrupted") from None
    except Exception as exc:  # noqa: BLE001 - every failure must leave redacted, on one line
        detail = settings.redact("".join(traceback.format_exception(exc)))
        path = log_failure(settings, command, detail)
        if verbose:
            console.print(detail, highlight=False, markup=False)
        line = one_line(settings, exc)
        if not type(exc).__module__.startswith("cascade."):
            # cascade's own errors already name the fix; anything else may need the traceback
            line = f"{type(exc).__name__}: {line}" + (f" (details: {path})" if path else "")
        raise CascadeError(line) from None


# ---- dates: local days in CASCADE_TIMEZONE, --end exclusive everywhere


class Day(click.ParamType):
    """A local day, YYYY-MM-DD."""

    name = "YYYY-MM-DD"

    def convert(self, value, param, ctx) -> date:
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not a date (YYYY-MM-DD)", param, ctx)


class Moment(click.ParamType):
    """A local day (YYYY-MM-DD) or an ISO datetime; a naive one is read in CASCADE_TIMEZONE."""

    name = "DATE|DATETIME"

    def convert(self, value, param, ctx) -> date | datetime:
        if isinstance(value, date):
            return value
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not a date (YYYY-MM-DD) or an ISO datetime", param, ctx)
        return parsed.date() if len(value) <= 10 else parsed


DAY = Day()
MOMENT = Moment()


def start_option(help: str, type: click.ParamType = DAY, required: bool = False):
    """`--start`: a local day (or, with MOMENT, an ISO datetime)."""
    return click.option("--start", type=type, required=required, help=help)


def end_option(help: str = "Day after the last (exclusive).", type=DAY, required: bool = False):
    """`--end`: exclusive everywhere, the day after the last."""
    return click.option("--end", type=type, required=required, help=help)


def check_order(start, end, key=None) -> None:
    """Refuse a window whose --end is not after its --start, naming both options.

    `key` turns each value into what is compared (an aware datetime, for dates mixed with
    datetimes); the message shows the values as given.
    """
    if start is None or end is None:
        return
    if (key(end) if key else end) <= (key(start) if key else start):
        raise click.UsageError(
            f"--end {end.isoformat()} is not after --start {start.isoformat()} "
            "(--end is exclusive: the day after the last)"
        )


def today(settings: Settings) -> date:
    """Today in CASCADE_TIMEZONE."""
    return datetime.now(ZoneInfo(settings.timezone)).date()


def day_range(
    settings: Settings, start: date | None, end: date | None, days: int
) -> tuple[date, date]:
    """(first, last) local days: --start/--end (end exclusive), filled in from the last `days`.

    No --start: `days` days before --end (default tomorrow, so today is the last day);
    no --end: up to today.
    """
    check_order(start, end)
    last = end - timedelta(days=1) if end is not None else today(settings)
    first = start if start is not None else last - timedelta(days=days - 1)
    if first > last:
        raise click.UsageError(f"--start {first} is after today ({last}): nothing to run")
    return first, last


def as_instant(value: date | datetime, settings: Settings) -> datetime:
    """A --start/--end value as an aware datetime: a day is its local midnight."""
    if not isinstance(value, datetime):
        value = datetime.combine(value, time.min)
    return value if value.tzinfo else value.replace(tzinfo=ZoneInfo(settings.timezone))


def describe_days(settings: Settings, first: date, last: date) -> str:
    """`first .. last`, saying when the last day is today and so still partial."""
    now = today(settings)
    if now == last:
        return f"{first} .. {last} (the last day is today: partial, its data so far)"
    if first <= now < last:
        return f"{first} .. {last} (today, {now}, is partial; later days have no data yet)"
    return f"{first} .. {last}"


# ---- durations: 90s, 30m, 12h, 7d, 2w

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_duration(value: str) -> timedelta:
    """`90s`, `30m`, `12h`, `7d` or `2w` as a timedelta; ValueError otherwise."""
    match = _DURATION.match(value or "")
    if not match:
        raise ValueError(f"{value!r} is not a duration like 90s, 30m, 12h, 7d or 2w")
    return timedelta(seconds=float(match[1]) * UNITS[match[2]])


class Duration(click.ParamType):
    """A click option value such as 7d, parsed by `parse_duration`."""

    name = "duration"

    def convert(self, value, param, ctx) -> timedelta:
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
