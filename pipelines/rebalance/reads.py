"""How records reach the rebalancing decision: bounded input by splits, joined with what the
engine found repeated in them; a stream as it arrives (watched files, Pub/Sub, Kafka)."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.transforms import window

from adr.rebalance_stats import RebalanceStats
from pipelines.outputs import join
from pipelines.rebalance.ledger import CHANGED
from pipelines.rebalance.watch import WatchPolicy, read_watched, watch, watch_pattern
from udfs.artifacts import read_repeats
from udfs.records import parse_raw, valid_and_invalid
from udfs.sources import max_element_bytes, raw_batch
from udfs.splits import read_split

LATE, STATS = "late", "stats"


@dataclass(frozen=True)
class SplitBatch:
    """A batch of records and what the corpus says about them."""
    batch: pa.RecordBatch
    split: int | None = None                            # the split read; None for a stream
    copies: Mapping[int, int] = field(default_factory=dict)  # position -> occurrence (>= 1) of a byte-identical record
    shared: frozenset[int] | None = None                # positions whose image another record uses; None: unknown
    messages: tuple = ()                                # a stream's message metadata, by position


def index_rows(split: dict, max_record_bytes: int) -> Iterable[tuple[int, pa.RecordBatch]]:
    """(split, its valid records' position, key, id and image): what finding repeats needs."""
    for raw in read_split(split, max_element_bytes=max_element_bytes(max_record_bytes)):
        valid, _ = valid_and_invalid(parse_raw(raw, max_bytes=max_record_bytes))
        if valid.num_rows:
            yield split["index"], valid.select(["position", "key", "id", "image"])


def noted_batches(split: dict, copies: Mapping[int, int], shared: frozenset[int],
                  max_record_bytes: int) -> Iterable[SplitBatch]:
    """A split's raw batches, each with the repeats of its own positions."""
    for raw in read_split(split, max_element_bytes=max_element_bytes(max_record_bytes)):
        positions = raw.column("position").to_pylist()
        lo, hi = positions[0], positions[-1]
        yield SplitBatch(raw, split["index"], {p: n for p, n in copies.items() if lo <= p <= hi},
                         frozenset(p for p in shared if lo <= p <= hi))


def read_noted_split(joined, max_record_bytes: int) -> Iterable[SplitBatch]:
    """A split joined with the notes the engine found (repeats.split_notes)."""
    _, groups = joined
    copies: dict[int, int] = {}
    shared: set[int] = set()
    for kind, items in groups["notes"]:
        if kind == "copies":
            copies.update(items)
        else:
            shared.update(items)
    return noted_batches(groups["split"][0], copies, frozenset(shared), max_record_bytes)


def read_split_with_repeats(split: dict, stats_dir: str, max_record_bytes: int) -> Iterable[SplitBatch]:
    """A split with the repeats the statistics found in it (STATS/repeats/split=N/)."""
    return noted_batches(split, *read_repeats(stats_dir, split["index"]), max_record_bytes)


def read_splits(pipeline: beam.Pipeline, splits: list[dict], max_record_bytes: int, notes=None,
                stats_dir: str | None = None):
    """Bounded input, a split at a time, each batch with what repeats in the corpus means for its
    records: the statistics' repeats of the split (`stats_dir`: nothing shuffled but the split
    descriptions), or the engine's `notes`, joined by split index (what waits for the notes is
    the split's description, not its records)."""
    if notes is None:
        return (pipeline
                | "Splits" >> beam.Create(splits)
                | "Spread" >> beam.Reshuffle()
                | "Read" >> beam.FlatMap(read_split_with_repeats, stats_dir, max_record_bytes))
    keyed = pipeline | "Splits" >> beam.Create([(s["index"], s) for s in splits])
    return ({"split": keyed, "notes": notes}
            | "NotesBySplit" >> beam.CoGroupByKey()
            | "Read" >> beam.FlatMap(read_noted_split, max_record_bytes))


def read_index(pipeline: beam.Pipeline, splits: list[dict], max_record_bytes: int):
    return (pipeline
            | "IndexSplits" >> beam.Create(splits)
            | "IndexSpread" >> beam.Reshuffle()
            | "IndexRead" >> beam.FlatMap(index_rows, max_record_bytes))


@dataclass(frozen=True)
class Message:
    """A streamed record and what names it in dead letters: Pub/Sub's message_id and
    publish_time, or Kafka's topic, partition, offset and timestamp."""
    payload: bytes
    meta: Mapping = field(default_factory=dict)


def pubsub_message(msg) -> Message:
    published = msg.publish_time
    return Message(msg.data, {"message_id": msg.message_id,
                              "publish_time": published.isoformat() if hasattr(published, "isoformat") else published})


def kafka_message(row) -> Message:
    return Message(row.value, {"topic": row.topic, "partition": row.partition, "offset": row.offset,
                               "timestamp": row.timestamp})


def raw_batch_from_messages(messages: list, source: str) -> SplitBatch:
    """A batch of raw elements from a stream of messages (Message or bytes), one record per
    message; `position` is the message's place in the batch, `messages` says which it was."""
    messages = [m if isinstance(m, Message) else Message(m) for m in messages]
    batch = raw_batch(source, list(range(len(messages))), [m.payload for m in messages])
    return SplitBatch(batch, messages=tuple(m.meta for m in messages))


class MarkLate(beam.DoFn):
    """A message whose event time (publish or create time) is more than a window plus the
    allowed lateness behind the clock is dead-lettered as `late`, restamped to now so that it
    lands in the current window: never decided, never silently dropped. Whatever passes lies
    within the windowing's own allowed lateness (window + --allowed-lateness-secs), which the
    watermark, never ahead of the clock, cannot have passed."""

    def __init__(self, source: str, window_secs: float, allowed_secs: float):
        self.source, self.window_secs, self.allowed_secs = source, window_secs, allowed_secs

    def process(self, message: Message, timestamp=beam.DoFn.TimestampParam):
        now = time.time()
        behind = now - float(timestamp)
        if behind <= self.window_secs + self.allowed_secs:
            yield message
            return
        letter = json.dumps({"source": self.source, "position": None, "reason": LATE,
                             "detail": f"{LATE}: event time {float(timestamp):.3f} is {behind:.1f} s behind the clock, "
                                       f"more than a window ({self.window_secs:g} s) plus --allowed-lateness-secs "
                                       f"({self.allowed_secs:g} s)",
                             "message": dict(message.meta), "raw": message.payload[:4096].decode("utf-8", "replace")},
                            ensure_ascii=False, default=str)
        yield beam.pvalue.TaggedOutput(LATE, window.TimestampedValue(letter, now))
        yield beam.pvalue.TaggedOutput(STATS, window.TimestampedValue(RebalanceStats(input=1, late=1), now))


def kafka_consumer(args) -> dict:
    """The consumer of --kafka-topic: a group whose offsets are committed as bundles finish
    (commit_offset_in_finalize), so a restarted job goes on from where the last one stopped, and
    a group's first start reads the topic from its beginning rather than from now."""
    return {"bootstrap.servers": args.kafka_bootstrap, "group.id": args.kafka_group,
            "auto.offset.reset": "earliest", "enable.auto.commit": "false"}


def pubsub_read(args) -> dict:
    """ReadFromPubSub's arguments: --pubsub-id-label names the attribute a publisher sets to a
    unique id, by which Dataflow drops a message published twice."""
    return {"subscription": args.pubsub_subscription, "with_attributes": True,
            **({"id_label": args.pubsub_id_label} if args.pubsub_id_label else {})}


@dataclass(frozen=True)
class Found:
    """What the reads found themselves, beside the records: statistics (repeated ids, late
    messages, changed files), dead letters, and for a watch what was read of each file (the ledger's)."""

    stats: tuple = ()
    invalid: tuple = ()
    watched: Any = None


def read_stream(pipeline: beam.Pipeline, args, stop_at: float | None) -> tuple:
    """(SplitBatches of a streaming source windowed by --window-secs, what the read found: dead
    letters of the source (late messages, changed files), their statistics, and for a watch what
    was read of each file, for the ledger)."""
    if args.pubsub_subscription:
        stream = (pipeline
                  | "ReadPubSub" >> beam.io.ReadFromPubSub(**pubsub_read(args))
                  | "PubSubMessage" >> beam.Map(pubsub_message))
        return from_messages(stream, args.pubsub_subscription, args)
    if args.kafka_topic:
        from apache_beam.io.kafka import ReadFromKafka

        stream = (pipeline
                  | "ReadKafka" >> ReadFromKafka(kafka_consumer(args), [args.kafka_topic], with_metadata=True,
                                                 timestamp_policy="CreateTime", commit_offset_in_finalize=True)
                  | "KafkaMessage" >> beam.Map(kafka_message))
        return from_messages(stream, f"kafka://{args.kafka_bootstrap}/{args.kafka_topic}", args)
    fixed = window.FixedWindows(args.window_secs)
    policy = WatchPolicy(args.settle_secs, args.watch_retention_secs, args.done_marker)
    paths, watched, changed = watch(pipeline, watch_pattern(args.input[0]), args.watch_interval_secs, policy,
                                    stop_at, ledger_url(args))
    batches = (paths
               | "Window" >> beam.WindowInto(fixed)
               | "ReadFile" >> beam.FlatMap(read_watched)
               | "AsSplitBatch" >> beam.Map(SplitBatch))
    letters = changed | "WindowChanged" >> beam.WindowInto(fixed)
    stats = letters | "ChangedStats" >> beam.Map(lambda _: RebalanceStats(input=1, invalid=Counter({CHANGED: 1})))
    return batches, Found(stats=(stats,), invalid=(letters,),
                          watched=watched | "WindowWatched" >> beam.WindowInto(fixed))


def from_messages(stream, source: str, args) -> tuple:
    """Messages (Pub/Sub's, Kafka's, a test's) -> (SplitBatches windowed by --window-secs, what was
    found: messages later than --allowed-lateness-secs as dead letters, and their statistics)."""
    fixed = window.FixedWindows(args.window_secs)
    marked = stream | "MarkLate" >> beam.ParDo(
        MarkLate(source, args.window_secs, args.allowed_lateness_secs)).with_outputs(LATE, STATS, main="on_time")
    batches = (marked.on_time
               | "Window" >> beam.WindowInto(fixed, allowed_lateness=args.window_secs + args.allowed_lateness_secs)
               | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=4096)
               | "ToRaw" >> beam.Map(raw_batch_from_messages, source=source))
    return batches, Found(stats=(marked[STATS] | "WindowLateStats" >> beam.WindowInto(fixed),),
                          invalid=(marked[LATE] | "WindowLate" >> beam.WindowInto(fixed),))


def ledger_url(args) -> str:
    return args.watch_ledger or join(args.output, "_watch")
