"""The stack's own floor for one dbt build: what dbt-core + dbt-duckdb + DuckLake cost per node.

A synthetic dbt project with as many nodes as cascade's (models by materialization and data
tests, counted from cascade's manifest), each model a handful of rows and each test a trivial
`not_null`, built with this environment's dbt:
- on a local DuckLake (SQLite catalog, the local profile's attach) and on a plain in-memory
  DuckDB, to tell DuckLake's share from dbt's;
- twice on each: the first build creates every table, the second replaces them (what an hourly
  refresh does).
Prints each build's seconds (the whole dbt process, and dbt's own elapsed time from
run_results.json), the median milliseconds of a model and of a test, a build that selects
nothing (dbt's start-up), and one DuckLake `create table` alone. cascade's hourly dbt step
cannot be faster than this floor for the same node count. (The incremental models append:
without a unique key, dbt-duckdb's default strategy.)

    .venv/bin/python benchmarks/dbt_floor.py
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import duckdb

from cascade.lake.extensions import EXTENSION_DIR, extension_directory_statement
from cascade.transform import DBT_EXECUTABLE, dbt_project

PROFILE = """\
floor:
  target: {target}
  outputs:
    ducklake:
      type: duckdb
      path: ":memory:"
      threads: 1
      config_options: {{extension_directory: "{extensions}"}}
      extensions: [ducklake, sqlite_scanner]
      attach:
        - path: "ducklake:sqlite:{home}/catalog.sqlite"
          alias: lake
          options: {{data_path: "{home}/lake/", meta_journal_mode: WAL}}
      database: lake
      schema: main
    duckdb:
      type: duckdb
      path: ":memory:"
      threads: 1
      schema: main
"""


COLUMNS = 12  # more than any model's tests
FIRST_MODEL = (
    "select " + ", ".join(f"range + {c} as c{c}" for c in range(COLUMNS)) + " from range(20)"
)


def node_counts() -> tuple[Counter, int]:
    """cascade's models by materialization, and its data tests, from its manifest."""
    manifest = json.loads(dbt_project().manifest_path.read_text())
    nodes = manifest["nodes"].values()
    models = Counter(n["config"]["materialized"] for n in nodes if n["resource_type"] == "model")
    tests = sum(1 for n in nodes if n["resource_type"] == "test")
    return models, tests


def write_project(root: Path, home: Path, target: str, models: Counter, tests: int) -> None:
    """A project of models in a chain (each reads the one before) and `tests` not_null tests."""
    (root / "models").mkdir(parents=True)
    (root / "dbt_project.yml").write_text(
        "name: floor\nversion: '1.0.0'\nprofile: floor\nmodel-paths: [models]\n"
    )
    extensions = str(EXTENSION_DIR)
    (root / "profiles.yml").write_text(
        PROFILE.format(target=target, extensions=extensions, home=home)
    )
    names, previous = [], None
    for materialized, count in sorted(models.items()):
        for _ in range(count):
            name = f"m{len(names):02d}"
            config = f"{{{{ config(materialized='{materialized}') }}}}\n"
            source = f"select * from {{{{ ref('{previous}') }}}}" if previous else FIRST_MODEL
            (root / "models" / f"{name}.sql").write_text(config + source + "\n")
            names.append(name)
            previous = name
    lines = ["version: 2", "models:"]
    per_model = Counter(names[i % len(names)] for i in range(tests))
    for name in names:
        lines += [f"  - name: {name}", "    columns:"]
        lines += [
            f"      - name: c{column}\n        data_tests: [not_null]"
            for column in range(per_model[name])
        ]
    (root / "models" / "schema.yml").write_text("\n".join(lines) + "\n")


def build(root: Path, *select: str) -> tuple[float, float, list[float], list[float]]:
    """One `dbt build`: wall seconds, dbt's elapsed seconds, each model's and test's seconds."""
    started = time.perf_counter()
    subprocess.run(
        [
            str(DBT_EXECUTABLE),
            "build",
            "--project-dir",
            str(root),
            "--profiles-dir",
            str(root),
            "--no-send-anonymous-usage-stats",
            "--no-version-check",
            "--quiet",
            *select,
        ],
        check=True,
    )
    wall = time.perf_counter() - started
    results = json.loads((root / "target" / "run_results.json").read_text())
    seconds: dict[str, list[float]] = {"model": [], "test": []}
    for result in results["results"]:
        seconds[result["unique_id"].split(".")[0]].append(result["execution_time"])
    return wall, results["elapsed_time"], seconds["model"], seconds["test"]


def ddl_ms(home: Path) -> float:
    """Median milliseconds of one `create table` on a local DuckLake (SQLite catalog)."""
    con = duckdb.connect()
    con.execute(extension_directory_statement())
    con.execute(f"attach 'ducklake:sqlite:{home}/ddl.sqlite' as lake (data_path '{home}/ddl/')")
    spans = []
    for index in range(20):
        started = time.perf_counter()
        con.execute(f"create table lake.t{index} (id integer)")
        spans.append(time.perf_counter() - started)
    con.close()
    return median_ms(spans)


def median_ms(seconds: list[float]) -> float:
    return 1000 * statistics.median(seconds)


def main() -> None:
    models, tests = node_counts()
    print(f"cascade's project: {dict(models)} models, {tests} data tests")
    with tempfile.TemporaryDirectory() as tmp:
        for target in ("ducklake", "duckdb"):
            home = Path(tmp) / target
            root = home / "project"
            write_project(root, home, target, models, tests)
            for attempt in ("first build", "rebuild"):
                wall, elapsed, model_s, test_s = build(root)
                print(
                    f"{target:8} {attempt:11}: {wall:5.1f} s (dbt's elapsed {elapsed:4.1f} s); "
                    f"a model {median_ms(model_s):3.0f} ms, a test {median_ms(test_s):3.0f} ms "
                    "(medians)"
                )
            wall, *_ = build(root, "--select", "tag:none")
            print(f"{target:8} start-up   : {wall:5.1f} s (a build that selects nothing)")
        print(f"one `create table` on a local DuckLake: {ddl_ms(Path(tmp)):.0f} ms (median of 20)")


if __name__ == "__main__":
    sys.exit(main())
