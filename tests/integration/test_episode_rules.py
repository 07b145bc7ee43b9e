"""Each consensus episode rule on hand-made traces, through ingestion and dbt, checked against
iglu_python's episode_calculation on the same traces.

Durations are iglu's: grid points beyond the threshold x the grid interval. A trace of 1-min
readings tells 14 min from 15 min literally; with 5-min readings three points are "15 min".
One lake holds every trace (one subject each) and is built once for the module.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from cascade.ingest import run_load
from cascade.lake.connection import connect
from cascade.settings import Settings
from cascade.sources.files import load_file
from cascade.sources.nightscout import FetchStats, nightscout_file
from cascade.transform import run_transform

pandas = pytest.importorskip("pandas")
iglu = pytest.importorskip("iglu_python")

START = datetime(2024, 3, 1, 8, 0)


def trace(step_min: int, values: list[float], gaps: dict[int, int] | None = None) -> list[tuple]:
    """(time, gl) every `step_min` minutes; gaps maps a reading's position to extra minutes
    before it."""
    rows, at = [], START
    for position, value in enumerate(values):
        at += timedelta(minutes=(gaps or {}).get(position, 0) + (step_min if position else 0))
        rows.append((at, value))
    return rows


def flat(n: int, value: float = 120) -> list[float]:
    return [value] * n


TRACES = {
    # 1-min readings: 14 min below 70 is no episode, 15 min is one
    "dip_14_min": trace(1, flat(30) + flat(14, 60) + flat(30)),
    "dip_15_min": trace(1, flat(30) + flat(15, 60) + flat(30)),
    # 5-min readings: two points (10 min) below 54 is no level 2 episode, three are
    "dip_2_points": trace(5, flat(6) + flat(2, 50) + flat(6)),
    "dip_3_points": trace(5, flat(6) + flat(3, 50) + flat(6)),
    # 2 + 2 readings below 70 around a gap: over 45 min the trace splits (no episode),
    # up to 45 min it is interpolated (one episode)
    "gap_46_min": trace(5, flat(6) + flat(4, 60) + flat(6), gaps={8: 41}),
    "gap_45_min": trace(5, flat(6) + flat(4, 60) + flat(6), gaps={8: 40}),
    # extended hypo needs more than 120 min: 24 points (120 min) are not, 25 are
    "below_24_points": trace(5, flat(6) + flat(24, 60) + flat(6)),
    "below_25_points": trace(5, flat(6) + flat(25, 60) + flat(6)),
    # a 10-min return above 70 does not end an episode, 15 min does
    "return_10_min": trace(5, flat(6) + flat(3, 60) + flat(2) + flat(3, 60) + flat(6)),
    "return_15_min": trace(5, flat(6) + flat(3, 60) + flat(3) + flat(3, 60) + flat(6)),
}


@pytest.fixture(scope="module")
def traces_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = [(subject, at, gl) for subject, points in TRACES.items() for at, gl in points]
    frame = pandas.DataFrame(rows, columns=["id", "time", "gl"])
    target = tmp_path_factory.mktemp("traces") / "traces.csv"
    frame.to_csv(target)
    return target


@pytest.fixture(scope="module")
def episodes(tmp_path_factory: pytest.TempPathFactory, traces_csv: Path) -> pandas.DataFrame:
    settings = Settings(
        home=tmp_path_factory.mktemp("lake") / ".cascade", timezone="UTC", _env_file=None
    )
    stats = FetchStats()
    run_load(settings, nightscout_file(load_file(traces_csv, 0), stats), stats)
    run_transform(settings)
    with connect(settings, read_only=True) as con:
        return (
            con.execute("select * from ducklake.gold.mrt_period_episodes where period = 'all'")
            .df()
            .set_index(["subject_id", "episode_type", "level"])
        )


def count(episodes: pandas.DataFrame, subject: str, level: str, kind: str = "hypo") -> int:
    return int(episodes.loc[(subject, kind, level), "episodes"])


def test_14_min_dip_is_no_episode_15_min_is(episodes):
    assert count(episodes, "dip_14_min", "lv1") == 0
    assert count(episodes, "dip_15_min", "lv1") == 1
    assert episodes.loc[("dip_15_min", "hypo", "lv1"), "mean_duration_min"] == 15


def test_level_2_needs_15_min_below_54(episodes):
    assert count(episodes, "dip_2_points", "lv2") == 0
    assert count(episodes, "dip_3_points", "lv2") == 1
    # the lv2 dip is also a lv1 episode, so it is no lv1_excl
    assert count(episodes, "dip_3_points", "lv1") == 1
    assert count(episodes, "dip_3_points", "lv1_excl") == 0
    assert count(episodes, "dip_2_points", "lv1_excl") == 0


def test_gap_over_45_min_splits_the_trace(episodes):
    assert count(episodes, "gap_46_min", "lv1") == 0
    assert count(episodes, "gap_45_min", "lv1") == 1


def test_extended_hypo_needs_more_than_120_min(episodes):
    assert count(episodes, "below_24_points", "extended") == 0
    assert count(episodes, "below_25_points", "extended") == 1
    assert count(episodes, "below_24_points", "lv1") == 1
    assert episodes.loc[("below_25_points", "hypo", "extended"), "mean_duration_min"] == 125


def test_episode_ends_after_15_min_back(episodes):
    assert count(episodes, "return_10_min", "lv1") == 1
    assert count(episodes, "return_15_min", "lv1") == 2


def test_every_trace_matches_iglu(episodes, traces_csv):
    data = pandas.read_csv(traces_csv, index_col=0)
    data["time"] = pandas.to_datetime(data["time"])
    expected = iglu.episode_calculation(data).set_index(["id", "type", "level"])
    for key, row in expected.iterrows():
        assert episodes.loc[key, "episodes"] == row["total_episodes"], key
        assert episodes.loc[key, "episodes_per_day"] == pytest.approx(
            row["avg_ep_per_day"], abs=0.001
        ), key
