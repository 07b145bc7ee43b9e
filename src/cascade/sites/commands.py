"""`cascade sites ...`: add, list, remove and import the Nightscout sites of one lake.

The group takes its Settings from the click context object when the `cascade` command put one
there (`ctx.obj`), else from the environment; failures end as one redacted line, exit code 1.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from cascade.settings import Settings


def _settings() -> Settings:
    obj = click.get_current_context().find_object(Settings)
    if obj is not None:
        return obj
    try:
        return Settings()
    except ValueError as exc:
        raise click.ClickException(f"invalid configuration: {exc}") from None


@contextmanager
def _reported(settings: Settings) -> Iterator[None]:
    try:
        yield
    except click.ClickException:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure leaves as one redacted line
        raise click.ClickException(settings.redact(str(exc))) from None


@click.group("sites")
def sites() -> None:
    """The Nightscout sites this lake follows (registry: <lake>.ops.sites)."""


@sites.command("add")
@click.argument("name")
@click.option("--url", required=True, help="The site's base URL; a path is allowed.")
@click.option("--api-secret-env", metavar="VAR", help="Env variable holding its API_SECRET.")
@click.option("--token-env", metavar="VAR", help="Env variable holding its access token.")
@click.option("--timezone", metavar="ZONE", help="IANA zone overriding the site's profile.")
def add(
    name: str, url: str, api_secret_env: str | None, token_env: str | None, timezone: str | None
) -> None:
    """Follow the site NAME: the next ingest backfills it from CASCADE_START_DATE."""
    from cascade.sites.registry import add_site

    settings = _settings()
    with _reported(settings):
        site, outcome = add_site(settings, name, url, api_secret_env, token_env, timezone)
    click.echo(f"{outcome}: {site.name} ({site.url}) as subject {site.subject_id}")


@sites.command("list")
@click.option("--all", "include_removed", is_flag=True, help="Include removed sites.")
def list_(include_removed: bool) -> None:
    """The registered sites with their subject ids, marks and last run."""
    from cascade.sites.registry import list_sites

    settings = _settings()
    with _reported(settings):
        rows = list_sites(settings, include_removed)
    if not rows:
        click.echo("no sites registered (add one with `cascade sites add NAME --url URL`)")
        return
    for site in rows:
        entries = site.marks.get("entries")
        state = "active" if site.active else f"removed {site.removed_at:%Y-%m-%d}"
        secret = site.api_secret_env or site.token_env or "-"
        last = f"{site.last_status} {site.last_run_at:%Y-%m-%d %H:%M}" if site.last_run_at else "-"
        click.echo(
            f"{site.name}\t{site.url}\t{site.subject_id}\t{state}\tsecret ${secret}\t"
            f"zone {site.timezone or '-'}\tentries mark {entries or '-'}\tlast run {last}"
            + (f"\t{site.last_error}" if site.last_error else "")
        )


@sites.command("remove")
@click.argument("name")
@click.option(
    "--purge", is_flag=True, help="Also delete its rows from raw, bronze, silver and gold."
)
def remove(name: str, purge: bool) -> None:
    """Stop refreshing NAME; its data stays unless --purge."""
    from cascade.sites.registry import remove_site

    settings = _settings()
    with _reported(settings):
        removal = remove_site(settings, name, purge)
    if purge:
        deleted = sum(removal.purged.values())
        click.echo(
            f"purged {name}: {deleted:,} rows deleted from {len(removal.purged)} tables; "
            "its registry row is gone"
        )
    else:
        click.echo(f"removed {name}: no longer refreshed; its data stays (--purge deletes it)")


@sites.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_(file: Path) -> None:
    """Add or update the sites of FILE.csv (name,url,api_secret_env,token_env,timezone)."""
    from cascade.sites.registry import import_sites

    settings = _settings()
    with _reported(settings):
        result = import_sites(settings, file)
    click.echo(f"imported {file}: {result.describe()}")
