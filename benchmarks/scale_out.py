"""Capacity planning: the per-site cost of one run worker on PostgreSQL + S3, and K workers at once.

For each site count N (default 20 and 50) on a fresh PostgreSQL catalog + moto S3 lake:
register N demo people (`DemoServer(sites=N)` in its own process, one person per path),
then, in ONE worker process (a fresh interpreter, as a Dagster run worker is):

- initial load: `ingest_sites` over the last 14 days for all N (one dlt load), then the dbt
  build over those days for their subjects (`run_transform`, as `nightscout_sites_dbt` runs it);
- hourly refresh: `ingest_sites` again (each site from its mark minus the 3 h look-back), then
  the dbt build over yesterday and today.

Each prints seconds, seconds per site and the worker's peak RSS. Then, on a second fresh lake,
K workers (default 3; 1 skips this part) at once, each loading a disjoint shard of the N sites
(what K queued runs of the `lake_writers` pool do): wall seconds for the 14-day load and the
refresh.

docs/scale-out.md turns these into sites per worker per hour. The machine's load matters:
run it on an idle machine for planning figures.

The workers inherit CASCADE_DUCKDB_MEMORY_LIMIT (unset: DuckDB's 80 % of RAM); a 2 GiB run pod
is measured with `CASCADE_DUCKDB_MEMORY_LIMIT=1GiB`. "largest child" is the peak of the worker's
largest child process: a dbt build, or on PostgreSQL + S3 a dlt load step; the JSON line's
`largest_child_mib_after` gives it after each step, so the step where it grows names the process.
`helper_cpu_s` gives the CPU seconds the demo server and moto's S3 took during each step: they
run on the same cores as the worker, where a deployment's Nightscout sites and S3 would not.

Usage: `python benchmarks/scale_out.py [--days 14] [--workers 3] [N ...]`
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import (  # noqa: E402
    BIN,
    HELPERS,
    cpu_seconds,
    free_port,
    peak_memory_mib,
    process,
    scale_settings,
)
from many_sites import serve  # noqa: E402

from cascade.demo.server import people  # noqa: E402
from cascade.ingest import ingest_sites  # noqa: E402
from cascade.settings import Settings  # noqa: E402
from cascade.sites import import_sites  # noqa: E402
from cascade.sources.nightscout.helpers import Window  # noqa: E402
from cascade.transform import prepare_dbt_project, run_transform  # noqa: E402

KEY = "benchmark-subject-key"
HELPERS_ENV = "BENCH_HELPER_PIDS"  # the demo server's and moto's pids, for a worker
DBT_KEYS = ("load_dbt_s", "refresh_dbt_s")
LAKE_FIELDS = (
    "catalog_url",
    "data_path",
    "s3_endpoint",
    "s3_use_ssl",
    "s3_access_key_id",
    "s3_secret_access_key",
    "home",
)


def _plain(value):
    return value.get_secret_value() if hasattr(value, "get_secret_value") else value


def worker_env(settings: Settings) -> dict[str, str]:
    """The CASCADE_* environment a run worker of this lake gets (as from a Secret)."""
    env = {**os.environ, "CASCADE_SUBJECT_KEY": KEY, HELPERS_ENV: json.dumps(HELPERS)}
    for name in LAKE_FIELDS:
        env[f"CASCADE_{name.upper()}"] = str(_plain(getattr(settings, name)))
    return env


def register(settings: Settings, url: str, sites: int) -> float:
    csv = settings.home / "sites.csv"
    csv.parent.mkdir(parents=True, exist_ok=True)
    csv.write_text("name,url\n" + "".join(f"{p.slug},{url}/{p.slug}\n" for p in people(sites)))
    started = time.perf_counter()
    import_sites(settings.model_copy(update={"subject_key": _secret(KEY)}), csv)
    return time.perf_counter() - started


def _secret(value: str):
    from pydantic import SecretStr

    return SecretStr(value)


def timed_transform(
    settings: Settings, first: date, last: date, subjects: list[str]
) -> tuple[float, dict[str, float]]:
    """Seconds of the dbt build over local days first..last for `subjects` (as the dbt run
    after a sites run makes it), and its five slowest models with their seconds."""
    models = {}

    def on_event(event):
        if event.resource_type == "model":
            models[event.name] = round(event.seconds, 1)

    started = time.perf_counter()
    run_transform(settings, first, last + timedelta(days=1), subjects=subjects, on_event=on_event)
    slowest = dict(sorted(models.items(), key=lambda item: -item[1])[:5])
    return time.perf_counter() - started, slowest


def one_worker(days: int, names: list[str] | None) -> dict:
    """In a fresh process: the 14-day load then the refresh of `names` (all if None); for
    all sites, each followed by the dbt build over the days it touched."""
    settings = Settings(_env_file=None)
    # the largest child so far after each step: the step after which it grows set the peak
    # (the load step's process on PostgreSQL + S3, or a dbt build)
    child_peaks = {}
    # CPU seconds the demo server and moto took during each step, on the same cores
    helpers = json.loads(os.environ.get(HELPERS_ENV, "{}"))
    helper_cpu, used = {}, {name: cpu_seconds(pid) for name, pid in helpers.items()}

    def helpers_took(step: str) -> None:
        for name, pid in helpers.items():
            now_used = cpu_seconds(pid)
            helper_cpu.setdefault(step, {})[name] = round(now_used - used[name], 1)
            used[name] = now_used

    now = datetime.now(UTC)
    started = time.perf_counter()
    load = ingest_sites(settings, names=names, window=Window(now - timedelta(days=days), now))
    load_s = time.perf_counter() - started
    child_peaks["load"] = peak_memory_mib(children=True)
    helpers_took("load")
    subjects = [site.subject_id for site in load.sites]
    dbt = {}
    if names is None:
        prepare_dbt_project()
        dbt["load_dbt_s"], dbt["load_dbt_slowest"] = timed_transform(
            settings, (now - timedelta(days=days)).date(), now.date(), subjects
        )
        child_peaks["load_dbt"] = peak_memory_mib(children=True)
        helpers_took("load_dbt")
    started = time.perf_counter()
    refresh = ingest_sites(settings, names=names)
    refresh_s = time.perf_counter() - started
    child_peaks["refresh"] = peak_memory_mib(children=True)
    helpers_took("refresh")
    if names is None:
        dbt["refresh_dbt_s"], dbt["refresh_dbt_slowest"] = timed_transform(
            settings, (now - timedelta(days=1)).date(), now.date(), subjects
        )
        child_peaks["refresh_dbt"] = peak_memory_mib(children=True)
        helpers_took("refresh_dbt")
    for result in (load, refresh):
        assert not result.failed, [s.error for s in result.failed]
    return {
        **dbt,
        "sites": len(load.sites),
        "load_s": load_s,
        "load_rows": load.load.fetched if load.load else 0,
        "load_fetch_s": load.fetch_seconds,
        "refresh_s": refresh_s,
        "refresh_rows": refresh.load.fetched if refresh.load else 0,
        "refresh_fetch_s": refresh.fetch_seconds,
        "peak_mib": peak_memory_mib(),
        "largest_child_mib": peak_memory_mib(children=True),
        "largest_child_mib_after": {step: round(mib) for step, mib in child_peaks.items()},
        "helper_cpu_s": helper_cpu,
    }


def spawn(settings: Settings, days: int, names: list[str] | None) -> subprocess.Popen:
    args = [str(BIN / "python"), __file__, "--one", str(days)]
    if names:
        args += ["--names", ",".join(names)]
    return subprocess.Popen(args, env=worker_env(settings), stdout=subprocess.PIPE, text=True)


def collect(child: subprocess.Popen) -> dict:
    out, _ = child.communicate(timeout=3600)
    assert child.returncode == 0, f"worker failed ({child.returncode})"
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("sites", nargs="*", type=int, default=[20, 50])
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--names", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        names = args.names.split(",") if args.names else None
        print(json.dumps(one_worker(args.one, names)), flush=True)
        return

    port = free_port()
    rows = []
    with process(serve(port, max(args.sites)), port, name="demo"):
        url = f"http://127.0.0.1:{port}"
        for n in args.sites:
            # one worker, all N sites
            with (
                tempfile.TemporaryDirectory() as tmp,
                scale_settings(Path(tmp) / ".cascade") as settings,
            ):
                registered = register(settings, url, n)
                one = collect(spawn(settings, args.days, None))
            row = {"sites": n, "workers": 1, "register_s": registered, **one}
            rows.append(row)
            print(json.dumps(row), flush=True)
            # K workers at once, disjoint shards (K queued runs of the lake_writers pool)
            k = args.workers
            if k < 2:
                continue
            with (
                tempfile.TemporaryDirectory() as tmp,
                scale_settings(Path(tmp) / ".cascade") as settings,
            ):
                register(settings, url, n)
                slugs = [p.slug for p in people(n)]
                started = time.perf_counter()
                children = [spawn(settings, args.days, slugs[i::k]) for i in range(k)]
                parts = [collect(c) for c in children]
                wall = time.perf_counter() - started
            row = {
                "sites": n,
                "workers": k,
                "wall_s": wall,
                "load_s": max(p["load_s"] for p in parts),
                "refresh_s": max(p["refresh_s"] for p in parts),
                "peak_mib": max(p["peak_mib"] for p in parts),
                "load_rows": sum(p["load_rows"] for p in parts),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    print()
    limit = os.environ.get("CASCADE_DUCKDB_MEMORY_LIMIT") or "unset (DuckDB's 80 % of RAM)"
    print(f"CASCADE_DUCKDB_MEMORY_LIMIT: {limit}")
    print(
        "| sites | workers | 14-day load s | s/site | then dbt s | hourly refresh s | s/site "
        "| then dbt s | peak MiB/worker | largest child MiB | demo server + moto CPU s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        load_dbt, refresh_dbt = (f"{r[k]:.1f}" if k in r else "–" for k in DBT_KEYS)
        child = f"{r['largest_child_mib']:.0f}" if "largest_child_mib" in r else "–"
        helpers = " · ".join(
            f"{step} " + " + ".join(f"{s:.0f}" for s in took.values())
            for step, took in r.get("helper_cpu_s", {}).items()
        )
        print(
            f"| {r['sites']} | {r['workers']} | {r['load_s']:.1f} | {r['load_s'] / r['sites']:.2f} "
            f"| {load_dbt} | {r['refresh_s']:.1f} | {r['refresh_s'] / r['sites']:.3f} "
            f"| {refresh_dbt} | {r['peak_mib']:.0f} | {child} | {helpers or '–'} |"
        )


if __name__ == "__main__":
    main()
