"""Reading Nightscout JSON exports and iglu CSV files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from cascade.sources.files import UNROUTABLE, load_file

IGLU_CSV = """"","id","time","gl"
"1","Subject 1","2015-06-06 16:50:27",153
"2","Subject 1","2015-06-06 16:55:27",137.6
"3","Subject 1","2015-06-06 17:00:27",NA
"4","Subject 2","2015-06-07 08:00:00",HIGH
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_json_list_of_entries(tmp_path: Path) -> None:
    entries = [{"_id": "a", "type": "sgv", "sgv": 120, "date": 1_700_000_000_000}]
    data = load_file(_write(tmp_path, "alice.json", json.dumps(entries)))
    assert data["entries"] == [{**entries[0], "subject_id": "alice"}]
    assert data["treatments"] == data["devicestatus"] == data["profile"] == []


def test_json_object_export_keeps_record_subjects(tmp_path: Path) -> None:
    export = {
        "entries": [{"_id": "e", "sgv": 99, "date": 1, "subject_id": "bob"}],
        "treatments": [{"_id": "t", "eventType": "Meal Bolus", "created_at": "2024-01-01"}],
        "devicestatus": [{"_id": "d", "created_at": "2024-01-01", "pump": {"reservoir": 100}}],
        "profile": [{"_id": "p", "defaultProfile": "Default", "store": {}}],
    }
    data = load_file(_write(tmp_path, "site.json", json.dumps(export)))
    assert data["entries"][0]["subject_id"] == "bob"
    assert data["treatments"][0] == {**export["treatments"][0], "subject_id": "site"}
    assert data["devicestatus"][0]["pump"] == {"reservoir": 100}
    assert data["profile"][0]["subject_id"] == "site"


def test_json_is_recognised_by_content(tmp_path: Path) -> None:
    data = load_file(_write(tmp_path, "export.txt", '  [{"sgv": 1, "date": 2}]'))
    assert data["entries"][0]["sgv"] == 1


def test_iglu_csv_with_index_column_and_utc_offset(tmp_path: Path) -> None:
    data = load_file(_write(tmp_path, "iglu.csv", IGLU_CSV), utc_offset_minutes=120)
    first, second, missing, raw = data["entries"]
    # 16:50:27 at UTC+2 is 14:50:27 UTC.
    assert first == {
        "_id": hashlib.sha1(b"Subject 1|2015-06-06 16:50:27").hexdigest()[:24],
        "subject_id": "Subject 1",
        "type": "sgv",
        "sgv": 153,
        "date": 1_433_602_227_000,
        "dateString": "2015-06-06T14:50:27.000Z",
        "sysTime": "2015-06-06T14:50:27.000Z",
        "utcOffset": 120,
        "device": "csv-import",
    }
    assert second["sgv"] == 138 and second["date"] - first["date"] == 300_000
    assert missing["sgv"] is None
    assert raw["sgv"] == "HIGH" and raw["subject_id"] == "Subject 2"


def test_csv_without_index_column(tmp_path: Path) -> None:
    text = "id,time,gl\nS,2020-01-01 00:00:00,100\n"
    [entry] = load_file(_write(tmp_path, "plain.csv", text))["entries"]
    assert entry["date"] == 1_577_836_800_000 and entry["utcOffset"] == 0


def test_csv_without_required_columns_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.csv", "subject,timestamp,glucose\nS,2020-01-01 00:00:00,1\n")
    with pytest.raises(ValueError, match=r"bad\.csv: line 1: missing column\(s\) id, time, gl"):
        load_file(path)


def test_csv_with_a_bad_time_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "times.csv", "id,time,gl\nS,2020-01-01 00:00:00,1\nS,soon,2\n")
    with pytest.raises(ValueError, match=r"times\.csv: line 3: time 'soon'"):
        load_file(path)


def test_invalid_json_names_file_and_position(tmp_path: Path) -> None:
    path = _write(tmp_path, "broken.json", '[\n  {"sgv": 1,\n  oops}\n]')
    with pytest.raises(ValueError, match=r"broken\.json: invalid JSON at line 3, column 3"):
        load_file(path)


def test_json_of_the_wrong_shape(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="expected a JSON list of records"):
        load_file(_write(tmp_path, "other.json", '{"readings": []}'))


ONE_OF_EACH = {
    "entries": [{"_id": "e", "type": "sgv", "sgv": 120, "date": 1_700_000_000_000}],
    "treatments": [
        {"_id": "t", "eventType": "Temp Basal", "created_at": "2024-01-01T00:00:00Z", "rate": 1}
    ],
    "devicestatus": [
        {"_id": "d", "created_at": "2024-01-01T00:00:00Z", "device": "loop://x", "loop": {}},
        {"_id": "o", "created_at": "2024-01-01T00:00:00Z", "openaps": {"iob": {}}},
        {"_id": "u", "created_at": "2024-01-01T00:00:00Z", "uploader": {"battery": 80}},
    ],
    "profile": [{"_id": "p", "defaultProfile": "Default", "store": {"Default": {}}}],
}


@pytest.mark.parametrize("collection", sorted(ONE_OF_EACH))
def test_a_single_collection_list_lands_in_its_collection(tmp_path: Path, collection: str):
    # exactly what /api/v1/<collection>.json returns: a bare list
    path = _write(tmp_path, f"{collection}-export.json", json.dumps(ONE_OF_EACH[collection]))
    data = load_file(path)
    assert [r["_id"] for r in data[collection]] == [r["_id"] for r in ONE_OF_EACH[collection]]
    assert sum(len(v) for v in data.values()) == len(ONE_OF_EACH[collection])


def test_a_mixed_list_is_routed_record_by_record(tmp_path: Path) -> None:
    mixed = [r for records in ONE_OF_EACH.values() for r in records]
    data = load_file(_write(tmp_path, "mixed.json", json.dumps(mixed[::-1])))
    for collection, records in ONE_OF_EACH.items():
        assert {r["_id"] for r in data[collection]} == {r["_id"] for r in records}
    assert data[UNROUTABLE] == []


def test_ndjson_one_object_per_line(tmp_path: Path) -> None:
    lines = [json.dumps(r) for records in ONE_OF_EACH.values() for r in records]
    data = load_file(_write(tmp_path, "dump.ndjson", "\n".join(lines) + "\n\n"))
    assert {c: len(data[c]) for c in ONE_OF_EACH} == {c: len(r) for c, r in ONE_OF_EACH.items()}
    with pytest.raises(ValueError, match=r"bad\.jsonl: invalid NDJSON at line 2"):
        load_file(_write(tmp_path, "bad.jsonl", lines[0] + "\n{oops\n"))


def test_a_folder_of_per_collection_files(tmp_path: Path) -> None:
    folder = tmp_path / "alice"
    folder.mkdir()
    for collection, records in ONE_OF_EACH.items():
        # names need not say what is inside: content decides
        _write(folder, f"part-{len(records)}-{collection[::-1]}.json", json.dumps(records))
    _write(folder, "README.md", "not data")
    data = load_file(folder)
    for collection, records in ONE_OF_EACH.items():
        assert [r["_id"] for r in data[collection]] == [r["_id"] for r in records]
        assert {r["subject_id"] for r in data[collection]} == {"alice"}


def test_unroutable_records_are_handed_back_for_quarantine(tmp_path: Path) -> None:
    text = json.dumps([{"sgv": 1, "date": 2}, 5, "text", None, [1], {"hello": "world"}])
    data = load_file(_write(tmp_path, "odd.json", text))
    assert len(data["entries"]) == 1
    assert [r["record"] for r in data[UNROUTABLE]] == [5, "text", None, [1], {"hello": "world"}]
    assert {r["reason"] for r in data[UNROUTABLE]} == {"unroutable record"}
    assert {r["subject_id"] for r in data[UNROUTABLE]} == {"odd"}


def test_non_objects_inside_a_combined_export_are_unroutable(tmp_path: Path) -> None:
    data = load_file(_write(tmp_path, "site.json", json.dumps({"entries": [{"sgv": 1}, 7]})))
    assert data["entries"] == [{"sgv": 1, "subject_id": "site"}]
    assert [r["record"] for r in data[UNROUTABLE]] == [7]
