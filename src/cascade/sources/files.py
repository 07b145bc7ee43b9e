"""Read exported CGM files into Nightscout-shaped records.

Two formats: a Nightscout JSON export (a list of entries, or an object holding any of
`entries`, `treatments`, `devicestatus`, `profile`), and the iglu CSV format (`id,time,gl`,
optionally after an unnamed index column, as R's `write.csv` writes it).
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
CSV_DEVICE = "csv-import"
_REQUIRED_COLUMNS = ("id", "time", "gl")
_MISSING_GLUCOSE = {"", "na", "nan", "null", "none"}


def load_file(path: Path, utc_offset_minutes: int = 0) -> dict[str, list[dict]]:
    """Records per collection, each carrying a `subject_id`.

    CSV times are wall-clock times `utc_offset_minutes` ahead of UTC. Raises ValueError naming
    the file and the line when the content is malformed.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text (byte {error.start})") from None
    if path.suffix.lower() == ".json" or (
        path.suffix.lower() != ".csv" and text.lstrip()[:1] in ("[", "{")
    ):
        return _load_json(path, text)
    return _load_csv(path, text, utc_offset_minutes)


def _empty() -> dict[str, list[dict]]:
    return {name: [] for name in COLLECTIONS}


def _load_json(path: Path, text: str) -> dict[str, list[dict]]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{path}: invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}"
        ) from None
    if isinstance(document, list):
        document = {"entries": document}
    if not isinstance(document, dict) or not set(document) & set(COLLECTIONS):
        raise ValueError(
            f"{path}: expected a JSON list of entries or an object with any of "
            f"the keys {', '.join(COLLECTIONS)}"
        )
    result = _empty()
    for name in COLLECTIONS:
        records = document.get(name, [])
        if not isinstance(records, list):
            raise ValueError(f"{path}: '{name}' must be a list, not {type(records).__name__}")
        for position, record in enumerate(records):
            if not isinstance(record, dict):
                raise ValueError(
                    f"{path}: {name}[{position}] must be an object, not {type(record).__name__}"
                )
            result[name].append({**record, "subject_id": record.get("subject_id", path.stem)})
    return result


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
