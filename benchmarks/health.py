"""Time `cascade health` on a lake holding a year of demo data (target: <= 5 s).

Builds the lake the way a user would (365 days from a demo Nightscout site over HTTP through
`ingest_site`, then a full `run_transform`), then runs `cascade health --json` as a subprocess
several times, so interpreter start-up and imports count. Prints per-check seconds of the last
run too, to show where the time goes.

    .venv/bin/python benchmarks/health.py [--profile local|scale|both] [--runs N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import BIN, scale_settings  # noqa: E402

from cascade.demo.server import DemoServer  # noqa: E402
from cascade.ingest import ingest_site  # noqa: E402
from cascade.settings import Settings  # noqa: E402
from cascade.sources.nightscout.helpers import Window  # noqa: E402
from cascade.transform import run_transform  # noqa: E402

YEAR = Window(datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
TARGET_S = 5.0


def settings_env(settings: Settings) -> dict[str, str]:
    """The CASCADE_* environment that makes a fresh process see the same lake."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASCADE_")}
    env["CASCADE_HOME"] = str(settings.home)
    if settings.catalog_url is not None:
        env |= {
            "CASCADE_CATALOG_URL": settings.catalog_url.get_secret_value(),
            "CASCADE_DATA_PATH": settings.data_path or "",
            "CASCADE_S3_ENDPOINT": settings.s3_endpoint or "",
            "CASCADE_S3_USE_SSL": str(settings.s3_use_ssl).lower(),
            "CASCADE_S3_ACCESS_KEY_ID": settings.s3_access_key_id.get_secret_value(),
            "CASCADE_S3_SECRET_ACCESS_KEY": settings.s3_secret_access_key.get_secret_value(),
        }
    return env


def health_command() -> list[str]:
    """`cascade health --json`."""
    return [str(BIN / "cascade"), "health", "--json"]


def build(settings: Settings) -> dict[str, float]:
    """Ingest a year over HTTP and build every model; returns seconds per stage."""
    started = time.perf_counter()
    with DemoServer(now=YEAR.end) as server:
        ingest_site(settings, YEAR, server.url, "demo")
    ingested = time.perf_counter()
    run_transform(settings)
    return {"ingest_s": ingested - started, "transform_s": time.perf_counter() - ingested}


def time_health(settings: Settings, runs: int) -> tuple[list[float], dict]:
    """Wall seconds of each `cascade health` run, and the last JSON document."""
    command, env, seconds, document = health_command(), settings_env(settings), [], {}
    for _ in range(runs):
        started = time.perf_counter()
        child = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        seconds.append(time.perf_counter() - started)
        document = json.loads(child.stdout)
    return seconds, document


def measure(profile: str, runs: int, keep: Path | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = (keep or Path(tmp)) / f".cascade-{profile}"
        existing = profile == "local" and (home / "catalog.sqlite").exists()
        lake = (
            scale_settings(home)
            if profile == "scale"
            else nullcontext(Settings(home=home, _env_file=None))
        )
        with lake as settings:
            stages = {} if existing else build(settings)
            seconds, document = time_health(settings, runs)
    built = ", ".join(f"{k} {v:.1f}" for k, v in stages.items()) or "reused"
    slowest = sorted(document["checks"], key=lambda c: -c["seconds"])[:4]
    print(
        f"{profile:>5}: lake built ({built}) | health ok={document['ok']} | "
        f"min {min(seconds):.2f} s, median {statistics.median(seconds):.2f} s, "
        f"max {max(seconds):.2f} s over {runs} runs (target <= {TARGET_S} s) | in-process "
        f"{document['seconds']:.2f} s, slowest checks "
        + ", ".join(f"{c['name']} {c['seconds']:.2f}" for c in slowest)
    )
    failed = [f"{c['name']}: {c['detail']}" for c in document["checks"] if not c["ok"]]
    for line in failed:
        print(f"       ✗ {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=("local", "scale", "both"), default="both")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="Build (or reuse, local only) the lake here.")
    args = parser.parse_args()
    print("cascade health on a lake holding 365 days of demo data, run as a subprocess")
    for profile in ("local", "scale") if args.profile == "both" else (args.profile,):
        measure(profile, args.runs, args.keep)


if __name__ == "__main__":
    main()
