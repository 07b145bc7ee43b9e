"""`cascade health` and `cascade maintain`: operate the lake from the command line.

Registered on the main group with `main.add_command`; they load Settings themselves, so this
module never imports `cascade.cli` (which imports it).
"""

from __future__ import annotations

import re
import sys
from datetime import timedelta

import click
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from cascade.settings import Settings

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


def _settings_problem(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
    )


def _load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise click.ClickException(f"invalid configuration: {_settings_problem(exc)}") from None


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead.")
@click.option(
    "--stale-after",
    type=Duration(),
    default="60s",
    show_default=True,
    help="Flag PostgreSQL queries, idle transactions and lock waits older than this.",
)
@click.option(
    "--max-age",
    type=Duration(),
    default=None,
    help="Require the newest reading to be younger than this (else freshness is informational, "
    "warning after 1d).",
)
def health(as_json: bool, stale_after: timedelta, max_age: timedelta | None) -> None:
    """Check the lake read-only: configuration, extensions, catalog, layers, files, freshness.

    Exits 0 only when every required check passes. --json prints
    {"ok", "profile", "lake_alias", "catalog", "seconds",
    "checks": [{"name", "ok", "required", "detail", "data", "seconds"}]}.
    """
    from cascade.lake.health import HealthOptions, check_health, unusable

    options = HealthOptions(
        stale_after=stale_after,
        max_age=max_age or HealthOptions.max_age,
        require_fresh=max_age is not None,
    )
    try:
        settings = Settings()
    except ValidationError as exc:
        report = unusable(f"invalid configuration: {_settings_problem(exc)}", options)
    else:
        try:
            report = check_health(settings, options)
        except Exception as exc:  # noqa: BLE001 - health reports, it never crashes
            report = unusable(settings.redact(f"health failed: {exc!r}"), options)
    if as_json:
        click.echo(report.to_json())
    else:
        print_health(report)
    sys.exit(0 if report.ok else 1)


def print_health(report) -> None:
    """The report as a readable list on stdout, secrets redacted."""
    out = Console(highlight=False)
    redact = report.redact
    out.print(
        Text(f"cascade health: profile {report.profile}, lake {report.lake_alias}, ", style="bold")
        + Text(redact(f"catalog {report.catalog}"))
    )
    for check in report.checks:
        style = "green" if check.ok else ("red" if check.required else "yellow")
        line = Text(f" {'✓' if check.ok else '✗'} ", style=style)
        line.append(f"{check.name:<17}", style="bold")
        line.append("required " if check.required else "info     ", style="dim")
        line.append(redact(check.detail))
        out.print(line)
    failed = [c.name for c in report.checks if c.required and not c.ok]
    verdict = Text("healthy", style="green") if report.ok else Text("unhealthy", style="red")
    reason = f": {', '.join(failed)} failed" if failed else ""
    out.print(verdict + Text(f"{reason} ({report.seconds:.1f} s)"))


@click.command()
@click.option(
    "--older-than",
    type=Duration(),
    default="7d",
    show_default=True,
    help="Expire snapshots, and delete replaced files, older than this.",
)
def maintain(older_than: timedelta) -> None:
    """Compact the lake: flush inlined rows, merge small files, expire snapshots, delete old files.

    Also drops raw_staging_* schemas and dlt working folders (CASCADE_HOME/tmp) that killed
    loads left behind, and says what it removed. Safe while loads run as long as --older-than
    exceeds the longest load; --older-than 0s reclaims everything on a quiet lake.
    """
    from cascade.lake.maintenance import run_maintenance

    settings = _load_settings()
    try:
        report = run_maintenance(settings, older_than)
    except Exception as exc:  # noqa: BLE001 - every failure leaves as one redacted line
        raise click.ClickException(settings.redact(" ".join(str(exc).split()))) from None
    click.echo(settings.redact(report.describe()))


if __name__ == "__main__":  # `python -m cascade.ops_cli health` until the commands are wired
    click.Group(commands=[health, maintain])()
