"""What every benchmark reader hands back, and the reading they share: the items, the dead letters
(each bad line with its reason, nothing dropped silently), and JSON rows with their place in their file."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from adr.errors import InputError
from adr.graded_results import Item
from adr.records import DEFAULT_MAX_RECORD_BYTES, UNREADABLE_FILE, InvalidRecord, parse_json
from udfs.records import RAW_EXCERPT_CHARS
from udfs.sources import MAX_ELEMENT_BYTES, expand_inputs, read_raw


@dataclass
class Items:
    items: list[Item] = field(default_factory=list)
    invalid: list[dict] = field(default_factory=list)  # dead letters of the results
    reference_invalid: list[dict] = field(default_factory=list)  # of question and label files
    labels_unmatched: int = 0
    tally: Counter = field(default_factory=Counter)

    @property
    def read(self) -> int:
        return self.tally["read"]

    def counts(self) -> dict:
        """How many were read, valid and invalid (by reason), for the summary."""
        return {
            "read": self.read, "valid": len(self.items), "invalid": len(self.invalid),
            "invalid_by_reason": dict(sorted(Counter(d["reason"] for d in self.invalid).items())),
            "reference_lines_invalid": len(self.reference_invalid), "labels_unmatched": self.labels_unmatched,
        }


def dead_letter(source: str, position: int, err: InvalidRecord, raw: Any) -> dict:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else json.dumps(raw, ensure_ascii=False)
    return {"source": source, "position": position, "reason": err.reason, "detail": str(err),
            "raw": text[:RAW_EXCERPT_CHARS]}


def raw_rows(url: str, tally: Counter | None = None, *,
             max_element_bytes: int = MAX_ELEMENT_BYTES) -> Iterator[tuple[str, int, bytes, str | None]]:
    """(source, position, raw bytes, read error) of each element of one file; `tally["read"]`
    counts them."""
    for batch in read_raw(url, max_element_bytes=max_element_bytes):
        if tally is not None:
            tally["read"] += batch.num_rows
        yield from zip(*(batch.column(c).to_pylist() for c in ("source", "position", "raw", "error")))


def parsed(raw: bytes, error: str | None, max_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> Any:
    """One element's JSON value; InvalidRecord when it could not be read or parsed."""
    if error is not None:
        raise InvalidRecord(UNREADABLE_FILE, error)
    return parse_json(raw, max_bytes=max_bytes)


def json_rows(url: str, max_bytes: int, dead: list[dict], tally: Counter | None = None):
    """(source, position, value) of each JSON Lines line or JSON array element; bad ones to `dead`;
    `tally["read"]` counts the elements read."""
    for source, position, raw, error in raw_rows(url, tally, max_element_bytes=max(2 * max_bytes, 1)):
        try:
            yield source, position, parsed(raw, error, max_bytes=max_bytes)
        except InvalidRecord as err:
            dead.append(dead_letter(source, position, err, raw))


def files_of(flag: str, specs: list[str]) -> list[str]:
    """The files a flag names; a mistake in them says which flag."""
    try:
        return expand_inputs(specs)
    except InputError as err:
        raise InputError(f"{flag}: {err}") from None
