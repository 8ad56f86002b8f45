"""How records reach the rebalancing decision: bounded input by splits, joined with what the
engine found repeated in them; a stream as it arrives (watched files, Pub/Sub, Kafka)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

import apache_beam as beam
import pyarrow as pa
from apache_beam.io import fileio
from apache_beam.transforms import window

from udfs.records import parse_raw
from udfs.sources import MAX_ELEMENT_BYTES, RAW_SCHEMA, read_raw
from udfs.splits import read_split


@dataclass(frozen=True)
class SplitBatch:
    """A batch of records and what the corpus says about them."""
    batch: pa.RecordBatch
    split: int | None = None                            # the split read; None for a stream
    copies: Mapping[int, int] = field(default_factory=dict)  # position -> occurrence (>= 1) of a byte-identical record
    shared: frozenset[int] | None = None                # positions whose image another record uses; None: unknown


def max_element_bytes(max_record_bytes: int) -> int:
    return max(MAX_ELEMENT_BYTES, 2 * max_record_bytes)


def index_rows(split: dict, max_record_bytes: int) -> Iterable[tuple[int, pa.RecordBatch]]:
    """(split, its valid records' position, key, id and image): what finding repeats needs."""
    for raw in read_split(split, max_element_bytes=max_element_bytes(max_record_bytes)):
        parsed = parse_raw(raw, max_bytes=max_record_bytes)
        valid = parsed.filter(parsed.column("reason").is_null())
        if valid.num_rows:
            yield split["index"], valid.select(["position", "key", "id", "image"])


def read_noted_split(joined, max_record_bytes: int) -> Iterable[SplitBatch]:
    """A split's raw batches, each with the notes (repeats.split_notes) of its own positions."""
    index, groups = joined
    split = groups["split"][0]
    copies: dict[int, int] = {}
    shared: set[int] = set()
    for kind, items in groups["notes"]:
        if kind == "copies":
            copies.update(items)
        else:
            shared.update(items)
    for raw in read_split(split, max_element_bytes=max_element_bytes(max_record_bytes)):
        positions = raw.column("position").to_pylist()
        lo, hi = positions[0], positions[-1]
        yield SplitBatch(raw, index, {p: n for p, n in copies.items() if lo <= p <= hi},
                         frozenset(p for p in shared if lo <= p <= hi))


def read_splits(pipeline: beam.Pipeline, splits: list[dict], notes, max_record_bytes: int):
    """Bounded input: each split read once its notes are complete (a join by split index; what
    waits for the notes is the split's description, not its records)."""
    keyed = pipeline | "Splits" >> beam.Create([(s["index"], s) for s in splits])
    return ({"split": keyed, "notes": notes}
            | "NotesBySplit" >> beam.CoGroupByKey()
            | "Read" >> beam.FlatMap(read_noted_split, max_record_bytes))


def read_index(pipeline: beam.Pipeline, splits: list[dict], max_record_bytes: int):
    return (pipeline
            | "IndexSplits" >> beam.Create(splits)
            | "IndexSpread" >> beam.Reshuffle()
            | "IndexRead" >> beam.FlatMap(index_rows, max_record_bytes))


def raw_batch_from_messages(messages: list[bytes], source: str) -> pa.RecordBatch:
    """A batch of raw elements from a stream of messages, one record per message."""
    return pa.RecordBatch.from_arrays(
        [pa.array([source] * len(messages)), pa.array(range(len(messages)), pa.int64()),
         pa.array(list(messages), pa.binary())], schema=RAW_SCHEMA)


def read_stream(pipeline: beam.Pipeline, args, stop_at: float | None):
    """Raw batches of a streaming source, windowed by --window-secs."""
    if args.pubsub_subscription or args.kafka_topic:
        if args.pubsub_subscription:
            source = args.pubsub_subscription
            messages = pipeline | "ReadPubSub" >> beam.io.ReadFromPubSub(subscription=source)
        else:
            from apache_beam.io.kafka import ReadFromKafka

            source = f"kafka://{args.kafka_bootstrap}/{args.kafka_topic}"
            messages = (pipeline
                        | "ReadKafka" >> ReadFromKafka({"bootstrap.servers": args.kafka_bootstrap}, [args.kafka_topic])
                        | "Value" >> beam.Values())
        return (messages
                | "Window" >> beam.WindowInto(window.FixedWindows(args.window_secs))
                | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=4096)
                | "ToRaw" >> beam.Map(raw_batch_from_messages, source=source))
    pattern = args.input[0].rstrip("/") + "/*" if not any(c in args.input[0] for c in "*?[") else args.input[0]
    stop = {"stop_timestamp": stop_at} if stop_at else {}
    return (pipeline
            | "Watch" >> fileio.MatchContinuously(pattern, interval=args.watch_interval_secs, **stop)
            | "Path" >> beam.Map(lambda m: m.path)
            | "Window" >> beam.WindowInto(window.FixedWindows(args.window_secs))
            | "ReadFile" >> beam.FlatMap(read_raw))
