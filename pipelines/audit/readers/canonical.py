"""The canonical results format: JSON Lines (or a JSON array) of graded items, one per element."""

from __future__ import annotations

from adr.graded_results import canonical_item
from adr.records import InvalidRecord
from pipelines.audit.readers.items import Items, dead_letter, json_rows


def read_canonical(url: str, max_record_bytes: int, out: Items) -> None:
    for source, position, obj in json_rows(url, max_record_bytes, out.invalid, out.tally):
        try:
            item = canonical_item(obj)
        except InvalidRecord as err:
            out.invalid.append(dead_letter(source, position, err, obj))
            continue
        out.items.append(item)
