"""Many sites, one ingest: 20 demo people x 1 day and x 14 days, local and PostgreSQL + S3.

The demo server runs in its own process (`sites=N`, one person per path), as real sites
would. For each profile and span: register the sites from a CSV, load the span for all of
them (`ingest_sites`, one dlt load), then refresh at once (each site from its mark minus the
3 h look-back: the cost of an hourly refresh). Prints seconds, per-site seconds, rows and
peak memory. Usage: `[PROFILES=local|scale] python benchmarks/many_sites.py [SITES] [DAYS ...]`.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import BIN, free_port, peak_memory_mib, process, scale_settings  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from cascade.demo.server import people  # noqa: E402
from cascade.ingest import ingest_sites  # noqa: E402
from cascade.settings import Settings  # noqa: E402
from cascade.sites import import_sites  # noqa: E402
from cascade.sources.nightscout.helpers import Window  # noqa: E402

KEY = "benchmark-subject-key"


def serve(port: int, sites: int) -> list[str]:
    return [
        str(BIN / "python"),
        "-c",
        f"from cascade.demo.server import main; main({port}, None, None, sites={sites})",
    ]


def run(settings: Settings, url: str, sites: int, days: int) -> None:
    settings = settings.model_copy(update={"subject_key": SecretStr(KEY)})
    csv = settings.home / "sites.csv"
    csv.parent.mkdir(parents=True, exist_ok=True)
    csv.write_text("name,url\n" + "".join(f"{p.slug},{url}/{p.slug}\n" for p in people(sites)))
    started = time.perf_counter()
    import_sites(settings, csv)
    registered = time.perf_counter() - started
    now = datetime.now(UTC)
    first = ingest_sites(settings, window=Window(now - timedelta(days=days), now))
    refresh = ingest_sites(settings)
    for label, result in (("load", first), ("refresh", refresh)):
        assert not result.failed, [s.error for s in result.failed]
        rows = result.load.fetched if result.load else 0
        print(
            f"{settings.profile:5} {sites} sites x {days:2} d {label:7}: "
            f"{result.seconds:6.1f} s ({result.seconds / sites:5.2f} s/site) · fetch "
            f"{result.fetch_seconds:5.1f} s · load {result.load.load_seconds:5.1f} s · "
            f"{rows:,} rows · peak {peak_memory_mib():,.0f} MiB",
            flush=True,
        )
    print(f"{settings.profile:5} registering {sites} sites from CSV: {registered:.1f} s")


def main() -> None:
    sites = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    spans = [int(d) for d in sys.argv[2:]] or [1, 14]
    profiles = [p for p in ("local", "scale") if p in os.environ.get("PROFILES", "local scale")]
    port = free_port()
    with process(serve(port, sites), port):
        url = f"http://127.0.0.1:{port}"
        for profile in profiles:
            for days in spans:
                with tempfile.TemporaryDirectory() as tmp:
                    home = Path(tmp) / ".cascade"
                    lake = (
                        scale_settings(home)
                        if profile == "scale"
                        else nullcontext(Settings(home=home, _env_file=None))
                    )
                    with lake as settings:
                        run(settings, url, sites, days)


if __name__ == "__main__":
    main()
