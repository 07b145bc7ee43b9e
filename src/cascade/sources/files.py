"""Read exported CGM files into Nightscout-shaped records, each routed to its collection.

Accepted: a combined Nightscout export (an object holding any of `entries`, `treatments`,
`devicestatus`, `profile`), a bare JSON list of any one collection (exactly what
`/api/v1/<collection>.json` returns) or of several mixed, NDJSON (one object per line), a folder
of such files (any names), and the iglu CSV format (`id,time,gl`, optionally after an unnamed
index column, as R's `write.csv` writes it). Outside a combined export, each record goes where
its content says (`route`); what belongs nowhere is handed back under `UNROUTABLE` as
quarantine rows, so that the load writes it to `raw.quarantine` and counts it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

COLLECTIONS = ("entries", "treatments", "devicestatus", "profile")
UNROUTABLE = "unroutable"
UNROUTABLE_REASON = "unroutable record"
CSV_DEVICE = "csv-import"
# Files a folder import reads; anything else in the folder (a README, a PDF) is left alone.
DATA_SUFFIXES = {".json", ".ndjson", ".jsonl", ".csv", ""}
# Top-level fields only a devicestatus document carries (Loop, oref/AAPS, xDrip, uploaders).
DEVICESTATUS_KEYS = frozenset(
    {
        "loop",
        "openaps",
        "pump",
        "uploader",
        "uploaderBattery",
        "xdripjs",
        "radioAdapter",
        "override",
        "isCharging",
        "configuration",
    }
)
_REQUIRED_COLUMNS = ("id", "time", "gl")
_MISSING_GLUCOSE = {"", "na", "nan", "null", "none"}


def route(record: object) -> str | None:
    """The collection a record belongs to by its content, or None when nothing says.

    eventType → treatments; store/defaultProfile → profile; sgv/mbg → entries; a Loop, oref,
    pump or uploader document → devicestatus; a remaining `type` (sgv, mbg, cal) → entries.
    """
    if not isinstance(record, dict):
        return None
    if "eventType" in record:
        return "treatments"
    if "store" in record or "defaultProfile" in record:
        return "profile"
    if "sgv" in record or "mbg" in record:
        return "entries"
    if not DEVICESTATUS_KEYS.isdisjoint(record):
        return "devicestatus"
    if "type" in record:
        return "entries"
    return None


def load_file(path: Path, utc_offset_minutes: int = 0) -> dict[str, list]:
    """Records per collection, each carrying a `subject_id`, plus `UNROUTABLE` quarantine rows.

    A folder is read file by file (its name is the subject); a file's subject is its stem.
    CSV times are wall-clock times `utc_offset_minutes` ahead of UTC. Raises ValueError naming
    the file and the line when the content is malformed.
    """
    path = Path(path)
    if path.is_dir():
        return _load_folder(path, utc_offset_minutes)
    return _load_one(path, utc_offset_minutes, path.stem)


def _load_folder(folder: Path, utc_offset_minutes: int) -> dict[str, list]:
    result = _empty()
    files = sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in DATA_SUFFIXES
    )
    if not files:
        raise ValueError(f"{folder}: no .json, .ndjson or .csv files in this folder")
    for file in files:
        for name, records in _load_one(file, utc_offset_minutes, folder.name).items():
            result[name].extend(records)
    return result


def _load_one(path: Path, utc_offset_minutes: int, subject: str) -> dict[str, list]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text (byte {error.start})") from None
    suffix = path.suffix.lower()
    if suffix in (".json", ".ndjson", ".jsonl") or (
        suffix != ".csv" and text.lstrip()[:1] in ("[", "{")
    ):
        return _load_json(path, text, subject)
    return _load_csv(path, text, utc_offset_minutes)


def _empty() -> dict[str, list]:
    return {name: [] for name in (*COLLECTIONS, UNROUTABLE)}


def _parse(path: Path, text: str) -> object:
    """One JSON document, or the list of an NDJSON file's lines."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        if error.msg != "Extra data":
            raise ValueError(
                f"{path}: invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}"
            ) from None
    documents = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                documents.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(
                    f"{path}: invalid NDJSON at line {number}, column {error.colno}: {error.msg}"
                ) from None
    return documents


def _load_json(path: Path, text: str, subject: str) -> dict[str, list]:
    document = _parse(path, text)
    result = _empty()
    if isinstance(document, dict) and set(document) & set(COLLECTIONS):
        for name in COLLECTIONS:
            records = document.get(name, [])
            for record in records if isinstance(records, list) else [records]:
                _add(result, name if isinstance(record, dict) else None, record, subject)
        return result
    if isinstance(document, dict) and route(document) is None:
        raise ValueError(
            f"{path}: expected a JSON list of records, NDJSON, or an object with any of "
            f"the keys {', '.join(COLLECTIONS)}"
        )
    for record in document if isinstance(document, list) else [document]:
        _add(result, route(record), record, subject)
    return result


def _add(result: dict[str, list], collection: str | None, record: object, subject: str) -> None:
    if collection is None:
        result[UNROUTABLE].append(
            {
                "collection": "unknown",
                "reason": UNROUTABLE_REASON,
                "record": record,
                "subject_id": subject,
            }
        )
    else:
        result[collection].append({**record, "subject_id": record.get("subject_id", subject)})


def _load_csv(path: Path, text: str, utc_offset_minutes: int) -> dict[str, list[dict]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [name.strip().lower() for name in next(reader, [])]
    missing = [name for name in _REQUIRED_COLUMNS if name not in header]
    if missing:
        raise ValueError(
            f"{path}: line 1: missing column(s) {', '.join(missing)}; an iglu CSV "
            f"needs the columns id,time,gl (found {','.join(header) or 'nothing'})"
        )
    columns = [header.index(name) for name in _REQUIRED_COLUMNS]
    result = _empty()
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(columns):
            raise ValueError(
                f"{path}: line {reader.line_num}: expected {len(header)} fields, found {len(row)}"
            )
        subject, wall, glucose = (row[i].strip() for i in columns)
        result["entries"].append(
            _csv_entry(path, reader.line_num, subject, wall, glucose, utc_offset_minutes)
        )
    return result


def _csv_entry(
    path: Path, line: int, subject: str, wall: str, glucose: str, utc_offset_minutes: int
) -> dict:
    try:
        moment = datetime.fromisoformat(wall)
    except ValueError:
        raise ValueError(
            f"{path}: line {line}: time {wall!r} is not a date and time like 2015-06-06 16:50:27"
        ) from None
    offset = utc_offset_minutes
    if moment.tzinfo is None:
        # A wall-clock time: UTC is that clock minus the offset.
        moment = moment.replace(tzinfo=UTC) - timedelta(minutes=offset)
    else:
        offset = int(moment.utcoffset().total_seconds() // 60)
    ms = round(moment.timestamp() * 1000)
    stamp = moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "_id": hashlib.sha1(f"{subject}|{wall}".encode()).hexdigest()[:24],
        "subject_id": subject,
        "type": "sgv",
        "sgv": _glucose(glucose),
        "date": ms,
        "dateString": stamp,
        "sysTime": stamp,
        "utcOffset": offset,
        "device": CSV_DEVICE,
    }


def _glucose(text: str) -> int | str | None:
    """An int reading, None when missing, or the raw text for ingestion to quarantine."""
    if text.lower() in _MISSING_GLUCOSE:
        return None
    try:
        value = float(text)
    except ValueError:
        return text
    return round(value) if math.isfinite(value) else text
