"""Time `cascade report` on a lake holding a year of data (target: at most 10 s).

Builds the lake as a user would: 365 days of demo data fetched over HTTP from a `DemoServer`
through `ingest_site`, then `run_transform`. Then runs the report command as a subprocess, once
to warm Python's bytecode cache (kept in a scratch folder, the venv is not touched) and then
`--runs` times per window, and prints the seconds.

    .venv/bin/python benchmarks/report.py [--keep DIR] [--runs N]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from cascade.demo.server import DemoServer
from cascade.ingest import ingest_site
from cascade.settings import Settings
from cascade.sources.nightscout.helpers import Window
from cascade.transform import run_transform

DAYS = 365
LAST_DAY = date(2025, 12, 31)
SUBJECT = "demo"
TARGET_S = 10.0
WINDOWS = {
    "--days 14 (default)": [],
    "--days 90": ["--days", "90"],
    "--start/--end, 30 days mid-year": ["--start", "2025-06-01", "--end", "2025-07-01"],
    "--days 365": ["--days", "365"],
}


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def build_lake(home: Path) -> None:
    """Ingest DAYS days of demo data ending at LAST_DAY and build every model."""
    settings = Settings(home=home, _env_file=None)
    first = LAST_DAY - timedelta(days=DAYS - 1)
    window = Window(midnight(first), midnight(LAST_DAY + timedelta(days=1)))
    started = time.perf_counter()
    with DemoServer(now=midnight(LAST_DAY + timedelta(days=2))) as server:
        result = ingest_site(settings, window, server.url, SUBJECT)
    print(
        f"ingested {first} to {LAST_DAY} in {time.perf_counter() - started:.1f} s: "
        f"{result.describe()}",
        flush=True,
    )
    print(f"transformed: {run_transform(settings).summary()}", flush=True)


def time_report(out: Path, args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one `cascade report` subprocess; exits if it fails."""
    command = [sys.executable, "-m", "cascade.cli", "report", "--out", str(out), *args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"cascade report {' '.join(args)} failed:\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="build the lake here (reused when present)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per window (median)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cascade-bench-report-") as scratch:
        home = (options.keep or Path(scratch)) / "lake_1y"
        if not (home / "catalog.sqlite").exists():
            build_lake(home)
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("CASCADE_") and key != "PYTHONDONTWRITEBYTECODE"
        }
        env |= {"CASCADE_HOME": str(home), "PYTHONPYCACHEPREFIX": str(Path(scratch) / "pycache")}
        out = Path(scratch) / "reports"
        wall, cpu = time_report(out, [], env)
        print(f"first run (cold bytecode cache): {wall:.2f} s ({cpu:.2f} s CPU)")
        results = {}
        for name, args in WINDOWS.items():
            runs = [time_report(out, args, env) for _ in range(options.runs)]
            results[name] = tuple(statistics.median(r[i] for r in runs) for i in (0, 1))
            shown = ", ".join(f"{w:.2f}" for w, _ in runs)
            print(f"cascade report {name}: {shown} s", flush=True)
    print(
        f"\nmedian of {options.runs} runs on {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}:"
    )
    for name, (wall, cpu) in results.items():
        print(f"{name:<34} {wall:6.2f} s ({cpu:5.2f} s CPU)   target <= {TARGET_S:.0f} s")


if __name__ == "__main__":
    main()
