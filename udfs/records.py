"""Raw elements -> validated records, as one Arrow batch with a reason on every invalid row."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc

from adr.records import (
    DEFAULT_MAX_RECORD_BYTES,
    UNREADABLE_FILE,
    InvalidRecord,
    content_digest,
    parse_record,
    record_id,
)

PARSED_SCHEMA = pa.schema([
    ("source", pa.string()), ("position", pa.int64()),
    ("key", pa.string()),       # the content digest; engines append the occurrence to repeats
    ("id", pa.string()),        # null when invalid
    ("image", pa.string()),     # null when invalid or text-only
    ("record", pa.string()),    # a valid record as one line of JSON, every field kept
    ("reason", pa.string()),    # null when valid
    ("detail", pa.string()),
    ("raw", pa.string()),       # the element as read, for the invalid/ output (truncated)
])
RAW_EXCERPT_CHARS = 4096
DEAD_LETTER_FIELDS = ("source", "position", "reason", "detail", "raw")


def parse_raw(batch: pa.RecordBatch, *, max_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> pa.RecordBatch:
    keys: list[str | None] = []
    ids: list[str | None] = []
    images: list[str | None] = []
    records: list[str | None] = []
    reasons: list[str | None] = []
    details: list[str | None] = []
    raws: list[str | None] = []
    errors = (batch.column("error").to_pylist() if "error" in batch.schema.names else [None] * batch.num_rows)
    for raw, error in zip(batch.column("raw").to_pylist(), errors):
        try:
            if error is not None:
                raise InvalidRecord(UNREADABLE_FILE, error)
            record = parse_record(raw, max_bytes=max_bytes)
        except InvalidRecord as err:
            keys.append(None)
            ids.append(None)
            images.append(None)
            records.append(None)
            reasons.append(err.reason)
            details.append(str(err))
            raws.append(raw[:RAW_EXCERPT_CHARS].decode("utf-8", "replace"))
            continue
        keys.append(content_digest(record))
        ids.append(record_id(record))
        images.append(record.get("image"))
        # A one-line element is kept byte for byte; a pretty-printed array element is compacted.
        records.append(raw.decode("utf-8") if b"\n" not in raw else
                       json.dumps(record, ensure_ascii=False, separators=(",", ":")))
        reasons.append(None)
        details.append(None)
        raws.append(None)
    return pa.RecordBatch.from_arrays(
        [batch.column("source"), batch.column("position"), pa.array(keys, pa.string()), pa.array(ids, pa.string()),
         pa.array(images, pa.string()), pa.array(records, pa.string()), pa.array(reasons, pa.string()),
         pa.array(details, pa.string()), pa.array(raws, pa.string())], schema=PARSED_SCHEMA)


def valid_and_invalid(parsed: pa.RecordBatch) -> tuple[pa.RecordBatch, pa.RecordBatch]:
    """A parsed batch's valid rows and its invalid ones, each in input order: every stage keeps the
    first and dead-letters the second, so nothing is lost and counts add up."""
    valid = parsed.column("reason").is_null()
    return parsed.filter(valid), parsed.filter(pc.invert(valid))


def dead_letter(row: dict) -> dict:
    """An invalid row as written to invalid/: where it was, why, and the element as read."""
    return {k: row[k] for k in DEAD_LETTER_FIELDS}
