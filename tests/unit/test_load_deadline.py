"""The load step's deadline: a frozen store's, grown with the rows a load writes."""

from cascade.ingest import LOAD_ROWS_PER_S_FLOOR, load_deadline


def test_a_small_load_keeps_the_frozen_store_deadline():
    assert load_deadline(60, 0) == 60
    assert load_deadline(60, 8_800) < 61  # one site's two weeks: under a second more


def test_a_thousand_sites_first_load_gets_time_at_a_fifth_of_the_measured_rate():
    # 1,000 sites x 14 days is 8.8M rows; the load step moves about 100k rows/s on 2 cores
    needed_at_measured_rate = 8_800_000 / 100_000
    assert load_deadline(60, 8_800_000) >= 60 + 5 * needed_at_measured_rate
    assert LOAD_ROWS_PER_S_FLOOR * 5 <= 100_000
