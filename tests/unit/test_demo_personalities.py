"""Uploader personalities of the demo generator, and the pump's truth they are derived from."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from cascade.cli import main
from cascade.demo import events, truth
from cascade.demo.events import Suspend, TempBasal
from cascade.demo.generator import (
    devicestatus_for_day,
    entries_for_day,
    profile,
    treatments_for_day,
)
from cascade.demo.personalities import local_midnight_ms, profile_zone, utc_offset_minutes
from cascade.demo.therapy import BASAL
from cascade.demo.truth import Delivery, delivered_insulin

DAY = date(2024, 6, 12)
SCHEDULED_DAY_U = sum(
    rate * (end - start) / 60
    for (start, rate), (end, _) in zip(BASAL, [*BASAL[1:], (1440, 0)], strict=True)
)


def _events(day, temps=(), suspends=(), boluses=()):
    return events.DayEvents(day, tuple(temps), tuple(boluses), (), tuple(suspends), (), (), ())


@pytest.fixture
def fake_events(monkeypatch):
    """Replace the drawn commands with hand-written ones for the loop personality."""
    plan: dict[date, events.DayEvents] = {}

    def fake(day, seed, uploader):
        return plan.get(day, _events(day))

    monkeypatch.setattr(truth, "day_events", fake)
    truth.day_deliveries.cache_clear()
    truth._stops.cache_clear()
    yield plan
    truth.day_deliveries.cache_clear()
    truth._stops.cache_clear()


def _day_units(uploader: str, day: date = DAY) -> dict[str, float]:
    start, end = local_midnight_ms(day, uploader), local_midnight_ms(day + timedelta(1), uploader)
    sums: dict[str, float] = defaultdict(float)
    for item in delivered_insulin("t", uploader, start, end):
        sums[item.kind] += item.units
    return sums


def _at(hours: float, uploader: str = "loop") -> int:
    return local_midnight_ms(DAY, uploader) + round(hours * 3_600_000)


def test_a_day_without_temp_basals_delivers_the_schedule(fake_events) -> None:
    assert _day_units("loop")["basal"] == pytest.approx(SCHEDULED_DAY_U)


def test_a_temp_basal_clipped_by_the_next_counts_until_then(fake_events) -> None:
    # 12:00-13:00 the schedule is 0.85 U/h; a 90-minute 3 U/h temp is replaced after 20 min.
    first, second = TempBasal(_at(12), 90, 3.0), TempBasal(_at(12) + 20 * 60_000, 30, 0.85)
    fake_events[DAY] = _events(DAY, temps=[first, second])
    extra = (3.0 - 0.85) * 20 / 60
    assert _day_units("loop")["basal"] == pytest.approx(SCHEDULED_DAY_U + extra)
    assert truth.temp_end_ms(first, "t", "loop") == second.ms


def test_a_suspend_delivers_nothing(fake_events) -> None:
    fake_events[DAY] = _events(DAY, suspends=[Suspend(_at(12), _at(13))])
    assert _day_units("loop")["basal"] == pytest.approx(SCHEDULED_DAY_U - 0.85)


def test_percent_temps_scale_the_schedule(fake_events) -> None:
    change = TempBasal(_at(12, "aaps"), 60, None, 140, rate_only=False)  # percent: 40
    fake_events[DAY] = _events(DAY, temps=[change])
    assert _day_units("aaps")["basal"] == pytest.approx(SCHEDULED_DAY_U + 0.85 * 0.4)
    rate_only = TempBasal(_at(12, "aaps"), 60, None, 270, rate_only=True)  # rate: 270 (%)
    fake_events[DAY] = _events(DAY, temps=[rate_only])
    truth.day_deliveries.cache_clear()
    assert _day_units("aaps")["basal"] == pytest.approx(SCHEDULED_DAY_U + 0.85 * 1.7)


def test_a_dst_day_delivers_the_schedule_of_its_23_hours(fake_events) -> None:
    spring = date(2024, 3, 31)  # Europe/Berlin skips 02:00-03:00
    assert _day_units("aaps", spring)["basal"] == pytest.approx(SCHEDULED_DAY_U - 0.8)


def test_recorded_boluses_and_loop_amounts_match_the_truth() -> None:
    day = date(2024, 2, 3)
    start, end = local_midnight_ms(day, "loop"), local_midnight_ms(day + timedelta(1), "loop")
    items = delivered_insulin("demo", "loop", start, end)
    records = [
        t
        for d in (day - timedelta(1), day, day + timedelta(1))
        for t in treatments_for_day(d, "demo", "loop")
    ]
    stamp = lambda t: datetime.fromisoformat(t["created_at"]).timestamp() * 1000  # noqa: E731
    in_day = [t for t in records if start <= stamp(t) < end]
    manual = sum(t["insulin"] for t in in_day if "insulin" in t and not t["automatic"])
    automatic = sum(t["insulin"] for t in in_day if "insulin" in t and t["automatic"])
    assert manual == pytest.approx(sum(i.units for i in items if i.kind == "bolus"))
    assert automatic == pytest.approx(sum(i.units for i in items if i.kind == "automatic_bolus"))
    temps = [t for t in in_day if t["eventType"] == "Temp Basal"]
    assert temps and all(t["automatic"] and t["absolute"] == t["rate"] for t in temps)
    assert all(t["amount"] <= t["rate"] * t["duration"] / 60 + 1e-9 for t in temps)
    assert any(t["amount"] < t["rate"] * t["duration"] / 60 - 0.01 for t in temps)


def test_loop_uploads_each_reading_twice_about_a_second_apart() -> None:
    entries = entries_for_day(DAY, "demo", "loop")
    assert len({e["_id"] for e in entries}) == len(entries)
    pairs = list(zip(entries[::2], entries[1::2], strict=True))
    for first, second in pairs:
        assert first["sgv"] == second["sgv"]
        assert 0.4 < (second["date"] - first["date"]) / 1000 < 2
        assert {first["device"], second["device"]} == {"Dexcom G6 8N4K2Q", "com.dexcom.G6"}
        assert first["dateString"].endswith("Z")
    assert sum(e["date"] != int(e["date"]) for e in entries) > len(entries) * 0.9


def test_profiles_carry_the_documented_zones_and_units() -> None:
    expect = {
        "loop": ("ETC/GMT+7", "mg/dL", "Etc/GMT+7"),
        "trio": ("Asia/Kolkata", "mg/dl", "Asia/Kolkata"),
        "aaps": ("europe/berlin", "mmol", "Europe/Berlin"),
    }
    for uploader, (spelled, units, canonical) in expect.items():
        store = profile("demo", uploader)[0]["store"]["Default"]
        assert (store["timezone"], store["units"]) == (spelled, units)
        assert profile_zone(uploader) == canonical
        ZoneInfo(canonical)
    assert profile("demo", "xdrip") == [] and profile_zone("xdrip") is None
    assert utc_offset_minutes("xdrip") == 60 and utc_offset_minutes("loop") == -420
    assert utc_offset_minutes("trio") == 330
    winter = datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000
    assert (
        utc_offset_minutes("aaps", winter) == 60
        and utc_offset_minutes("aaps", winter + 2e10) == 120
    )


def test_meals_happen_at_local_times() -> None:
    for uploader in ("loop", "trio", "aaps", "xdrip"):
        zone = ZoneInfo(profile_zone(uploader) or "Etc/GMT-1")
        hours = [
            datetime.fromisoformat(t["created_at"]).astimezone(zone).hour
            for d in (DAY + timedelta(i) for i in range(5))
            for t in treatments_for_day(d, "demo", uploader)
            if t["eventType"] == "Meal Bolus"
        ]
        assert hours and all(5 <= h <= 22 for h in hours), (uploader, hours)


def test_shapes_per_uploader() -> None:
    kinds = {
        u: {
            t["eventType"]
            for d in (DAY, DAY + timedelta(1))
            for t in treatments_for_day(d, "demo", u)
        }
        for u in ("loop", "trio", "aaps", "xdrip")
    }
    assert {"Temp Basal", "Correction Bolus", "Carb Correction"} <= kinds["loop"]
    assert {"Temp Basal", "SMB", "Meal Bolus"} <= kinds["trio"] and "SMB" in kinds["aaps"]
    assert "Temp Basal" not in kinds["xdrip"] and "SMB" not in kinds["xdrip"]
    aaps = [
        t
        for d in (DAY + timedelta(i) for i in range(10))
        for t in treatments_for_day(d, "demo", "aaps")
    ]
    temps = [t for t in aaps if t["eventType"] == "Temp Basal"]
    assert any("percent" in t and "rate" not in t for t in temps)
    rate_only = [t["rate"] for t in temps if "rate" in t]
    assert (
        rate_only
        and all(r == 0 or 40 <= r <= 300 for r in rate_only)
        and "absolute" not in str(temps)
    )
    checks = [t for t in aaps if t["eventType"] == "BG Check"]
    assert checks and all("units" not in t and t["glucose"] < 35 for t in checks)
    loop = devicestatus_for_day(DAY, "demo", "loop")
    assert len(loop) == 288 and len(loop[0]["loop"]["predicted"]["values"]) >= 13
    assert isinstance(loop[0]["pump"]["suspended"], bool)
    oref = devicestatus_for_day(DAY, "demo", "trio")[100]
    assert set(oref["openaps"]["suggested"]["predBGs"]) == {"IOB", "ZT", "COB", "UAM"}
    assert devicestatus_for_day(DAY, "demo", "xdrip")[0].keys() == {
        "_id",
        "device",
        "created_at",
        "uploader",
    }
    xdrip = entries_for_day(DAY, "demo", "xdrip")[0]
    assert xdrip["utcOffset"] == 60 and xdrip["device"] == "xDrip-DexcomG6"


def test_suspends_show_in_loop_status() -> None:
    for i in range(60):
        day = DAY + timedelta(i)
        if events.day_events(day, "demo", "loop").suspends:
            statuses = [
                s
                for d in (day, day + timedelta(1))
                for s in devicestatus_for_day(d, "demo", "loop")
            ]
            assert any(s["pump"]["suspended"] for s in statuses)
            return
    pytest.fail("no suspend in 60 days")


def test_the_same_day_comes_out_the_same_in_any_range() -> None:
    alone = treatments_for_day(DAY, "demo", "trio")
    for i in range(-3, 4):
        treatments_for_day(DAY + timedelta(i), "demo", "trio")
    assert treatments_for_day(DAY, "demo", "trio") == alone
    assert (
        delivered_insulin("demo", "trio", _at(0, "trio"), _at(48, "trio"))[:5]
        == delivered_insulin("demo", "trio", _at(0, "trio"), _at(1, "trio"))[:5]
    )
    assert isinstance(
        delivered_insulin("demo", "trio", _at(0, "trio"), _at(1, "trio"))[0], Delivery
    )


def test_demo_server_help_lists_the_uploader_option() -> None:
    result = CliRunner().invoke(main, ["demo-server", "--help"])
    assert result.exit_code == 0 and "--uploader" in result.output and "xdrip" in result.output
