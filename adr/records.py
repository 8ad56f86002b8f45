"""LLaVA records: parsing one raw element, validating it, its identity, and reading its turns.

Every rejection has a short reason code; the engines count by it and write the raw element
beside it, so nothing is dropped silently.

A record's `id` is not its identity: in LLaVA-1.5's mix `id` is the image id, and about 250K of
665K records repeat one (same image, another conversation). The identity of a record is its
key: a digest of its canonical JSON, with the occurrence number among byte-identical records
appended from the second on. It is the same on any runner, sharding or input order.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from typing import Any

IMAGE_TOKEN = "<image>"
ROLES = frozenset({"human", "gpt"})
DEFAULT_MAX_RECORD_BYTES = 1 << 20

TOO_LONG = "too-long"
NOT_UTF8 = "not-utf8"
MALFORMED_JSON = "malformed-json"
NOT_AN_OBJECT = "not-an-object"
MISSING_ID = "missing-id"
BAD_CONVERSATIONS = "bad-conversations"
BAD_OBJECTS = "bad-objects"
UNSAFE_IMAGE_PATH = "unsafe-image-path"
EXACT_DUPLICATE = "exact-duplicate"   # only with --drop-exact-duplicates; kept by default
UNREADABLE_FILE = "unreadable-file"   # the file could not be read on from this position
REASONS = (TOO_LONG, NOT_UTF8, MALFORMED_JSON, NOT_AN_OBJECT, MISSING_ID, BAD_CONVERSATIONS,
           BAD_OBJECTS, UNSAFE_IMAGE_PATH, EXACT_DUPLICATE, UNREADABLE_FILE)


class InvalidRecord(ValueError):
    """A raw element that is not a usable record; `reason` is one of REASONS."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def parse_record(raw: bytes, *, max_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> dict[str, Any]:
    """Decode, parse and validate one raw element; raise InvalidRecord with the reason."""
    record = parse_json(raw, max_bytes=max_bytes)
    validate_record(record)
    return record


def parse_json(raw: bytes, *, max_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> Any:
    """Decode and parse one raw element (any JSON value); raise InvalidRecord with the reason."""
    if len(raw) > max_bytes:
        raise InvalidRecord(TOO_LONG, f"{len(raw)} bytes > {max_bytes}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InvalidRecord(NOT_UTF8, f"byte {err.start}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise InvalidRecord(MALFORMED_JSON, err.msg) from None


def validate_record(record: Any) -> None:
    """Raise InvalidRecord unless `record` has an id, well-formed turns and safe fields."""
    if not isinstance(record, dict):
        raise InvalidRecord(NOT_AN_OBJECT, type(record).__name__)
    rid = record.get("id")
    if isinstance(rid, bool) or not isinstance(rid, (str, int)) or str(rid) == "":
        raise InvalidRecord(MISSING_ID)
    turns = record.get("conversations")
    if not isinstance(turns, list) or not turns:
        raise InvalidRecord(BAD_CONVERSATIONS, "not a non-empty list")
    for turn in turns:
        if not (isinstance(turn, dict) and turn.get("from") in ROLES and isinstance(turn.get("value"), str)):
            raise InvalidRecord(BAD_CONVERSATIONS, "a turn needs 'from' (human|gpt) and a string 'value'")
    image = record.get("image")
    if image is not None and not is_safe_relative_path(image):
        raise InvalidRecord(UNSAFE_IMAGE_PATH, repr(image)[:200])
    objects = record.get("objects")
    if objects is not None and not (isinstance(objects, list) and all(isinstance(o, str) for o in objects)):
        raise InvalidRecord(BAD_OBJECTS, "'objects' must be a list of strings")


def is_safe_relative_path(path: Any) -> bool:
    """True for a non-empty relative path that stays inside its root (no '..', no scheme)."""
    if not isinstance(path, str) or not path.strip() or "\x00" in path:
        return False
    if ".." not in path and ":" not in path and "\\" not in path and path[0] != "/":
        return True
    norm = path.replace("\\", "/")
    if norm.startswith("/") or "://" in norm or (len(norm) > 1 and norm[1] == ":"):
        return False
    return ".." not in posixpath.normpath(norm).split("/")


def record_id(record: dict) -> str:
    return str(record["id"])


def canonical_json(record: dict) -> str:
    """The record as one line of JSON with sorted keys: equal records give equal text, however
    they were formatted in the input."""
    return json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def content_digest(record: dict) -> str:
    """80 bits of BLAKE2b over the canonical JSON (a collision among 10^9 records: ~4e-7)."""
    return hashlib.blake2b(canonical_json(record).encode("utf-8", "surrogatepass"), digest_size=10).hexdigest()


def record_key(digest: str, occurrence: int = 0) -> str:
    """The key of the occurrence-th (0-based) of the byte-identical records with this digest."""
    return digest if occurrence == 0 else f"{digest}-{occurrence}"


def turn_texts(record: dict, role: str | None = None) -> list[str]:
    """The text of each turn (of one role, if given), without the `<image>` placeholder."""
    return [t["value"].replace(IMAGE_TOKEN, " ").strip()
            for t in record["conversations"] if role is None or t["from"] == role]
