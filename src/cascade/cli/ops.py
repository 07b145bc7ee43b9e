"""`cascade health` and `cascade maintain`: operate the lake."""

from __future__ import annotations

import sys
from datetime import timedelta

import click
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from cascade.cli.common import Duration, load_settings, reported, settings_problem, verbose_option


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
    from cascade.settings import Settings

    options = HealthOptions(
        stale_after=stale_after,
        max_age=max_age or HealthOptions.max_age,
        require_fresh=max_age is not None,
    )
    # health reports a bad configuration as a failed check, so it loads Settings itself
    try:
        settings = Settings()
    except ValidationError as exc:
        report = unusable(f"invalid configuration: {settings_problem(exc)}", options)
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
@verbose_option
def maintain(older_than: timedelta, verbose: bool) -> None:
    """Compact the lake: flush inlined rows, merge small files, expire snapshots, delete old files.

    Also drops raw_staging_* schemas, dlt working and DuckDB spill folders (CASCADE_HOME/tmp)
    that killed loads left behind, and says what it removed. Safe while loads run as long as
    --older-than exceeds the longest load; --older-than 0s reclaims everything on a quiet lake.
    """
    from cascade.lake.maintenance import run_maintenance

    settings = load_settings()
    with reported(settings, "maintain", verbose):
        report = run_maintenance(settings, older_than)
    click.echo(settings.redact(report.describe()))
