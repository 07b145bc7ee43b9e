"""`cascade docs` (dbt docs of the lake) and `cascade env` (the environment plain dbt needs)."""

from __future__ import annotations

import contextlib
import shlex
from pathlib import Path

import click

from cascade.cli.common import CascadeError, console, load_settings, out, reported, verbose_option
from cascade.settings import Settings


def env_lines(settings: Settings, show_secrets: bool = False) -> list[str]:
    """`export NAME=value` lines that let plain `dbt` (and its profile) see cascade's lake.

    Secrets (`DBT_ENV_SECRET_*`, which dbt scrubs from its output) are printed only with
    `show_secrets`; otherwise each keeps whatever value the shell already has.
    """
    from cascade.transform import DBT_QUIET_ENV, PROJECT_DIR, SECRET_PREFIX, dbt_env

    work = settings.home.absolute() / "dbt"
    env = {
        **DBT_QUIET_ENV,
        "DBT_PROJECT_DIR": str(PROJECT_DIR),
        "DBT_PROFILES_DIR": str(PROJECT_DIR),
        "DBT_TARGET_PATH": str(work / "target"),
        "DBT_LOG_PATH": str(work / "logs"),
        **dbt_env(settings),
    }
    # the folder of cascade's dbt builds, which take turns under the lake's lock: dbt in the
    # shell, outside that lock, spills where DuckDB spills by default (.tmp in its working
    # directory)
    env.pop("CASCADE_DUCKDB_TEMP_DIRECTORY")
    lines = []
    for name, value in env.items():
        if name.startswith(SECRET_PREFIX) and not show_secrets:
            lines.append(f'export {name}="${{{name}:-}}"  # secret: cascade env --show-secrets')
        else:
            lines.append(f"export {name}={shlex.quote(value)}")
    return lines


@click.command()
@click.option(
    "--show-secrets", is_flag=True, help="Print the catalog password and S3 keys in clear."
)
def env(show_secrets: bool) -> None:
    """Print `export` lines for plain dbt on the lake: `eval "$(cascade env)"`, then `dbt build`."""
    settings = load_settings()
    for line in env_lines(settings, show_secrets):
        click.echo(line)


def generate_docs(settings: Settings) -> Path:
    """`dbt docs generate --static` on the lake, through cascade's one dbt path (the profile
    environment, the lake's transform lock, dagster-dbt's resource); returns the pages' folder."""
    from cascade.transform import dbt_args, dbt_resource, dbt_session

    if settings.profile == "local" and not settings.catalog_path.exists():
        raise CascadeError(
            f"no lake at {settings.catalog_path}: run `cascade run` or `cascade ingest` first, "
            "or set CASCADE_HOME to the folder that holds catalog.sqlite"
        )
    args = ["docs", *dbt_args(settings, command="generate"), "--static"]
    target = Path(args[args.index("--target-path") + 1])
    with dbt_session(settings):
        invocation = dbt_resource().cli(args, raise_on_error=False)
        invocation.wait()
    if not invocation.is_successful():
        detail = " ".join(str(invocation.get_error() or "see the dbt log").split())[:500]
        log = Path(args[args.index("--log-path") + 1]) / "dbt.log"
        raise CascadeError(settings.redact(f"dbt docs generate failed: {detail} (dbt log: {log})"))
    return target


def serve(folder: Path, port: int) -> None:
    """Serve `folder` on 127.0.0.1:port until Ctrl-C."""
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    handler = partial(SimpleHTTPRequestHandler, directory=str(folder))
    with ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
        console.print(f"serving dbt docs on http://127.0.0.1:{server.server_port} (Ctrl-C stops)")
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()


@click.command()
@click.option("--serve", "serve_", is_flag=True, help="Serve the pages on 127.0.0.1 afterwards.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="--serve port."
)
@verbose_option
def docs(serve_: bool, port: int, verbose: bool) -> None:
    """dbt docs of the lake's models and columns (`dbt docs generate` with cascade's profile)."""
    settings = load_settings()
    with reported(settings, "docs", verbose), console.status("dbt docs generate ..."):
        folder = generate_docs(settings)
    out.print(f"dbt docs: {folder / 'static_index.html'} (one file, opens offline)")
    out.print(f"          {folder / 'index.html'} (needs a web server: --serve)")
    if serve_:
        serve(folder, port)
