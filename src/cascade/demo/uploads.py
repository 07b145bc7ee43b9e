"""Treatments of a personality for one local day, written the way its uploader writes them.

- Loop: temp basals with `absolute`/`rate` (U/h), programmed `duration` and the delivered
  `amount` (cut short by the next temp or a suspend); automatic boluses are "Correction
  Bolus" with `automatic: true`; carbs are separate "Carb Correction" entries; "Suspend
  Pump"/"Resume Pump".
- Trio (oref): absolute temps up to 90 min, SMBs (`eventType: "SMB"`, `isSMB`), BG checks in
  mg/dL with `units`.
- AAPS: percent temps, either as Nightscout's `percent` change (-100..+200) or as a rate-only
  percentage of the scheduled basal (0 or 40..300); SMBs; BG checks in mmol/L without `units`.
- xDrip: only what the person types in: boluses, carbs, BG checks (mg/dL, no `units`).
"""

from __future__ import annotations

from datetime import date

from cascade.demo.events import DayEvents, day_events
from cascade.demo.personalities import personality, utc_offset_minutes
from cascade.demo.stamps import id_tag, iso_ms, object_id
from cascade.demo.truth import temp_end_ms

MMOL = 18.0182


def personal_treatments(day: date, seed: str, uploader: str) -> list[dict]:
    """The treatments of one local day, oldest first."""
    events = day_events(day, seed, uploader)
    person = personality(uploader)
    tag = id_tag(seed, f"treatments:{uploader}")
    records: list[dict] = []

    def add(ms: int, event: str, **fields: object) -> None:
        records.append(
            {
                "_id": object_id(ms, tag, len(records) + (ms % 1000) * 4096),
                "eventType": event,
                "created_at": iso_ms(ms),
                "timestamp": iso_ms(ms),
                **fields,
                "enteredBy": person.entered_by,
                "utcOffset": utc_offset_minutes(uploader, ms) if uploader == "xdrip" else 0,
            }
        )

    _boluses(uploader, events, add)
    for carbs in events.carbs:
        event = "Carbs" if uploader == "xdrip" and carbs.grams > 15 else "Carb Correction"
        add(carbs.ms, event, carbs=carbs.grams)
    for ms, level in events.checks:
        add(ms, "BG Check", glucoseType="Finger", **_check(uploader, level))
    for temp in events.temps:
        add(temp.ms, "Temp Basal", **_temp_fields(uploader, temp, seed))
    for suspend in events.suspends:
        add(suspend.ms, "Suspend Pump")
        add(suspend.end_ms, "Resume Pump")
    for ms in events.site_changes:
        add(ms, "Site Change", notes="Cannula changed")
    for ms in events.sensor_starts:
        add(ms, "Sensor Start", notes="Dexcom")
    records.sort(key=lambda record: (record["created_at"], record["_id"]))
    return records


def _boluses(uploader: str, events: DayEvents, add) -> None:
    for bolus in events.boluses:
        fields: dict[str, object] = {"insulin": bolus.units}
        if uploader != "xdrip":
            fields["automatic"] = bolus.automatic
        if bolus.event == "SMB":
            fields.update(isSMB=True, type="SMB")
        if uploader == "loop":
            fields.update(type="normal", programmed=bolus.units, duration=0)
        if bolus.carbs is not None and uploader == "aaps":
            fields["carbs"] = bolus.carbs  # AAPS's wizard writes one record with both
        add(bolus.ms, bolus.event, **fields)
        if bolus.carbs is not None and uploader != "aaps":
            event = "Carbs" if uploader == "xdrip" else "Carb Correction"
            extra = {"absorptionTime": 180, "foodType": "🍕"} if uploader == "loop" else {}
            add(bolus.ms - 60_000, event, carbs=bolus.carbs, **extra)


def _check(uploader: str, level: float) -> dict:
    if uploader == "aaps":
        return {"glucose": level / MMOL}  # mmol/L, and AAPS leaves `units` out
    if uploader == "trio":
        return {"glucose": round(level), "units": "mg/dl"}
    return {"glucose": round(level)}


def _temp_fields(uploader: str, temp, seed: str) -> dict:
    if temp.percent_of_scheduled is not None:
        if temp.rate_only:
            return {"rate": temp.percent_of_scheduled, "duration": temp.duration}
        return {"percent": temp.percent_of_scheduled - 100, "duration": temp.duration}
    fields = {"temp": "absolute", "absolute": temp.rate, "rate": temp.rate}
    fields["duration"] = temp.duration
    if uploader == "loop":
        hours = (temp_end_ms(temp, seed, uploader) - temp.ms) / 3_600_000
        fields.update(automatic=True, amount=round((temp.rate or 0.0) * hours, 3))
    return fields
