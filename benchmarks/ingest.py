"""Ingest a year of demo data over HTTP into the local lake and into PostgreSQL + S3.

Prints rows/s, seconds per stage (fetch, load), peak memory and data files written, each
profile measured in its own process so peak memory is its own. Targets for the year: whole
ingest <= 15 s local and <= 30 s on PostgreSQL + S3; load stage >= 30k readings/s; peak memory
<= 1 GiB; a few data files per table.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import demo_site, peak_memory_mib, scale_settings  # noqa: E402

from cascade.ingest import ingest_site  # noqa: E402
from cascade.lake.connection import connect, metadata_prefix  # noqa: E402
from cascade.settings import Settings  # noqa: E402
from cascade.sources.nightscout.helpers import Window  # noqa: E402

YEAR = Window(datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))


def files_per_table(settings: Settings) -> dict[str, int]:
    meta = metadata_prefix(settings)
    with connect(settings, read_only=True) as con:
        rows = con.execute(
            f"select t.table_name, count(f.data_file_id) from {meta}.ducklake_table t "
            f"join {meta}.ducklake_schema s using (schema_id) "
            f"left join {meta}.ducklake_data_file f on f.table_id = t.table_id and f.end_snapshot is null "
            "where s.schema_name = 'raw' and t.end_snapshot is null group by 1 order by 1"
        ).fetchall()
    return dict(rows)


def measure(profile: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / ".cascade"
        lake = (
            scale_settings(home)
            if profile == "scale"
            else nullcontext(Settings(home=home, _env_file=None))
        )
        with lake as settings, demo_site() as url:
            result = ingest_site(settings, YEAR, url, "demo")
            files = files_per_table(settings)
    readings = result.tables["entries"].loaded
    after_fetch = result.seconds - result.fetch_seconds
    return {
        "profile": profile,
        "rows": sum(t.loaded for t in result.tables.values()),
        "readings": readings,
        "seconds": round(result.seconds, 2),
        "fetch_s": round(result.fetch_seconds, 2),
        "load_s": round(after_fetch, 2),
        "dlt_steps_s": {k: round(v, 2) for k, v in result.dlt_seconds.items()},
        "rows_per_s": round(sum(t.loaded for t in result.tables.values()) / result.seconds),
        "load_readings_per_s": round(readings / after_fetch),
        "extract_cpu_s": round(result.dlt_seconds["extract"] - result.fetch_seconds, 2),
        "dlt_load_readings_per_s": round(readings / result.dlt_seconds["load"]),
        "peak_mib": round(peak_memory_mib()),
        "data_files": files,
    }


def main() -> None:
    if len(sys.argv) > 1:
        print(json.dumps(measure(sys.argv[1])))
        return
    print(
        "ingest of 365 days of demo data over HTTP (targets: local <= 15 s, PG+S3 <= 30 s, "
        "load >= 30k readings/s, peak <= 1024 MiB)"
    )
    for profile in ("local", "scale"):
        child = subprocess.run(
            [sys.executable, __file__, profile], capture_output=True, text=True, check=False
        )
        if child.returncode:
            print(f"{profile}: FAILED\n{child.stderr[-2000:]}")
            continue
        r = json.loads(child.stdout.strip().splitlines()[-1])
        print(
            f"{r['profile']:>5}: {r['rows']:,} rows ({r['readings']:,} readings) in {r['seconds']} s "
            f"= {r['rows_per_s']:,} rows/s | fetch {r['fetch_s']} s, load {r['load_s']} s "
            f"= {r['load_readings_per_s']:,} readings/s (dlt {r['dlt_steps_s']}, of which "
            f"extract CPU {r['extract_cpu_s']} s; dlt load step alone "
            f"{r['dlt_load_readings_per_s']:,} readings/s) | "
            f"peak {r['peak_mib']} MiB | data files {r['data_files']}"
        )


if __name__ == "__main__":
    main()
