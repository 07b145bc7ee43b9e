"""Time the dbt transforms on 1 and 5 years of demo history.

For each history length: generate the demo person's data, load it through `run_load` (as
ingestion does) and time a full build of every model (models and data tests, as in
production). Then load one new day at a time into each lake and time the incremental run for
that day, the two lakes taking turns so that both see the same machine load. A daily run's
cost must follow the new data, not the history: the 5-year / 1-year ratio of the incremental run should stay at or below 1.3.

    .venv/bin/python benchmarks/transform.py [--keep DIR] [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from cascade.demo import generator
from cascade.ingest import run_load
from cascade.settings import Settings
from cascade.sources.nightscout import FetchStats, nightscout_file
from cascade.transform import run_transform

SEED = "demo"
SUBJECT = "demo"
LAST_DAY = date(2025, 12, 31)
CHUNK_DAYS = 183
FULL_BUILD_TARGET_S = 15.0
RATIO_TARGET = 1.3


def records_for(days: list[date]) -> dict[str, list[dict]]:
    """Nightscout records of `days` for the demo subject."""
    records: dict[str, list[dict]] = {
        "entries": [],
        "treatments": [],
        "devicestatus": [],
        "profile": generator.profile(SEED),
    }
    for day in days:
        records["entries"] += generator.entries_for_day(day, SEED)
        records["treatments"] += generator.treatments_for_day(day, SEED)
        records["devicestatus"] += generator.devicestatus_for_day(day, SEED)
    for rows in records.values():
        for row in rows:
            row["subject_id"] = SUBJECT
    return records


def load(settings: Settings, days: list[date]) -> float:
    """Load `days` into the lake's raw layer; returns seconds."""
    started = time.perf_counter()
    for offset in range(0, len(days), CHUNK_DAYS):
        stats = FetchStats()
        run_load(
            settings, nightscout_file(records_for(days[offset : offset + CHUNK_DAYS]), stats), stats
        )
    return time.perf_counter() - started


def timed(settings: Settings, **window) -> tuple[float, float]:
    """(wall, CPU) seconds of one run_transform. CPU time (all threads of this process) is the
    steadier measure of cost on a shared machine, where wall time follows the neighbours' load."""
    cpu = time.process_time()
    result = run_transform(settings, **window)
    return result.seconds, time.process_time() - cpu


def prepare(home: Path, years: int) -> tuple[Settings, tuple[float, float]]:
    """A lake with `years` of history, fully built; returns it and the full build's times."""
    settings = Settings(home=home, _env_file=None)
    first = LAST_DAY - timedelta(days=365 * years - 1)
    history = [first + timedelta(days=i) for i in range(365 * years)]
    print(f"{years} y: loading {len(history)} days of demo history ...", flush=True)
    load_s = load(settings, history)
    full = timed(settings, full_refresh=True)
    print(f"{years} y: loaded in {load_s:.1f} s; full build {full[0]:.2f} s ({full[1]:.2f} s CPU)")
    return settings, full


def incremental_day(settings: Settings, day: date) -> tuple[float, float]:
    """Load one new day and run the transforms for its window; returns (wall, CPU) seconds."""
    load(settings, [day])
    return timed(settings, start=day, end=day + timedelta(days=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="build the lakes here and keep them")
    parser.add_argument("--runs", type=int, default=3, help="incremental runs per lake (median)")
    options = parser.parse_args()
    import dbt.cli.main  # noqa: F401  (imported once here, so no timed run pays for it)

    with tempfile.TemporaryDirectory(prefix="cascade-bench-") as scratch:
        root = options.keep or Path(scratch)
        lakes = {years: prepare(root / f"lake_{years}y", years) for years in (1, 5)}
        # alternate the lakes, so that both see the same machine load
        times: dict[int, list[tuple[float, float]]] = {1: [], 5: []}
        for run in range(1, options.runs + 1):
            day = LAST_DAY + timedelta(days=run)
            for years, (settings, _) in lakes.items():
                wall, cpu = incremental_day(settings, day)
                times[years].append((wall, cpu))
                print(f"{years} y: incremental run for {day}: {wall:.2f} s ({cpu:.2f} s CPU)")
    wall = {y: statistics.median(t[0] for t in times[y]) for y in times}
    cpu = {y: statistics.median(t[1] for t in times[y]) for y in times}
    print()
    print(
        f"                              wall s    CPU s   (medians of {options.runs} incremental runs)"
    )
    for label, (w, c) in (
        ("full build, 1 year", lakes[1][1]),
        ("full build, 5 years", lakes[5][1]),
        ("incremental 1 day, 1 year", (wall[1], cpu[1])),
        ("incremental 1 day, 5 years", (wall[5], cpu[5])),
    ):
        print(f"{label:28s} {w:8.2f} {c:8.2f}")
    print(f"{'ratio 5 years / 1 year':28s} {wall[5] / wall[1]:8.2f} {cpu[5] / cpu[1]:8.2f}")
    print(f"targets: full build on 1 year <= {FULL_BUILD_TARGET_S:.0f} s; ratio <= {RATIO_TARGET}")


if __name__ == "__main__":
    main()
