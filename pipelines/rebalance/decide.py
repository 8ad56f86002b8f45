"""The rebalancing decision, a batch at a time: parse, find each record's entities, keep or drop."""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, replace

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.utils.shared import Shared

from adr.rebalance_stats import RebalanceStats
from adr.records import EXACT_DUPLICATE, record_key
from pipelines import progress
from pipelines.checks import stats_manifest
from pipelines.rebalance.reads import SplitBatch
from udfs.artifacts import read_checked_dictionary, read_entities
from udfs.entity_counts import count_batches
from udfs.rebalance import EntityIndex, attach_entities, decide_batch
from udfs.records import dead_letter, parse_raw, valid_and_invalid

log = logging.getLogger("adr.rebalance")
INVALID, DROPPED, SEEDS, STATS, COUNTS = "invalid", "dropped", "seeds", "stats", "counts"


@dataclass(frozen=True)
class Dictionary:
    """The keep probabilities and which dictionary they are: `version` (JSON of the statistics'
    input fingerprint, tau and the run's tau factor) is named in every summary that used it."""
    probs: dict
    version: str


def reload_dictionary(stats_dir: str, perspectives: tuple[str, ...], factor: float) -> Dictionary | None:
    """A refresh's dictionary; None when STATS_DIR cannot be read right now, or what was read is
    not the whole of what its manifest describes (being replaced): the job goes on with the last
    one it had, rather than failing after weeks or deciding by part of a dictionary."""
    try:
        return load_dictionary(stats_dir, perspectives, factor)
    except Exception as err:  # noqa: BLE001 - any unreadable state of the directory
        log.warning("dictionary refresh skipped, the previous dictionary is kept: %s", err)
        beam.metrics.Metrics.counter("adr", "dictionary_refresh_failures").inc()
        return None


def load_dictionary(stats_dir: str, perspectives: tuple[str, ...], factor: float) -> Dictionary:
    manifest = stats_manifest(stats_dir)
    version = {"fingerprint": (manifest.get("input") or {}).get("fingerprint"),
               "tau": {p: manifest["perspectives"][p]["tau"] for p in perspectives}, "factor": factor}
    probs = read_checked_dictionary(stats_dir, perspectives, manifest.get("dictionary"))
    return Dictionary(probs, json.dumps(version, sort_keys=True))


class _Loaded:
    """What a worker process loads once per dictionary epoch, shared by all its DoFn instances:
    the dictionary (its size follows the distinct entities, not the records), or None when it
    could not be read at a refresh (at launch, an unreadable dictionary is an error)."""

    def __init__(self, cfg, refresh: bool):
        load = reload_dictionary if refresh else load_dictionary
        self.dictionary = load(cfg.stats_dir, cfg.perspectives, cfg.factor)


_SHARED = Shared()


def loaded(cfg, epoch: int = 0) -> _Loaded:
    return _SHARED.acquire(lambda: _Loaded(cfg, refresh=epoch > 0),
                           tag=("rebalance", cfg.stats_dir, cfg.perspectives, cfg.factor, epoch))


class ParseBatch(beam.DoFn):
    """Raw batch -> valid records (one batch), invalid rows (tagged), and their counts."""

    def __init__(self, max_bytes: int, input_bytes: int = 0):
        self.max_bytes, self.input_bytes = max_bytes, input_bytes

    def process(self, item: SplitBatch):
        raw = item.batch
        if self.input_bytes:
            # Reading is the first half of the work shown; deciding (see Decide) the second.
            progress.advance(0, 0.5 * (pc.sum(pc.binary_length(raw.column("raw"))).as_py() or 0) / self.input_bytes)
        parsed = parse_raw(raw, max_bytes=self.max_bytes)
        good, bad = valid_and_invalid(parsed)
        # Each step counts as input what it decides (here the invalid rows; Decide the rest), so
        # every statistics element balances on its own, and so does any pane of them: a late
        # pane fires with whatever late elements have arrived.
        stats = RebalanceStats(input=bad.num_rows)
        for row in bad.to_pylist():
            stats.invalid[row["reason"]] += 1
            letter = dead_letter(row)
            if item.messages:  # a stream's position is a place in a batch: name the message instead
                letter["message"] = dict(item.messages[row["position"]])
            yield beam.pvalue.TaggedOutput(INVALID, json.dumps(letter, ensure_ascii=False, default=str))
        if good.num_rows:
            yield replace(item, batch=good.select(["source", "position", "key", "id", "image", "record"]))
        yield beam.pvalue.TaggedOutput(STATS, stats)


class Decide(beam.DoFn):
    """Valid records -> kept JSON Lines (one string per batch), dropped rows, seed lines, the kept
    records' entity counts ((perspective, entity, is tail), records) and the run's statistics."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.kept = beam.metrics.Metrics.counter("adr", "kept")
        self.dropped = beam.metrics.Metrics.counter("adr", "dropped")
        self.extracted = beam.metrics.Metrics.counter("adr", "entities_extracted")  # not found in the statistics

    def setup(self):
        self.latest = loaded(self.cfg).dictionary
        self.epoch = 0
        self._index: tuple[int | None, EntityIndex | None] = (None, None)

    def index_for(self, split: int | None) -> EntityIndex | None:
        """The statistics' entities of the split a batch was read from (the batches of a split
        come one after another, so one split is held)."""
        if not self.cfg.reuse_entities or split is None:
            return None
        if self._index[0] != split:
            self._index = (split, EntityIndex(read_entities(self.cfg.stats_dir, self.cfg.perspectives, split)))
        return self._index[1]

    def dictionary(self) -> Dictionary:
        """The dictionary to decide with. With --dictionary-refresh-secs it is read again once per
        period per worker process (Beam's Shared, tagged by the period: the slowly-changing
        lookup pattern, with no side input to hold the records back), and a read that fails
        (STATS_DIR being replaced) keeps the last one."""
        if self.cfg.refresh_secs:
            epoch = int(time.time() // self.cfg.refresh_secs)
            if epoch != self.epoch:
                self.epoch = epoch
                fresh = loaded(self.cfg, epoch).dictionary
                if fresh is not None and fresh.version != self.latest.version:
                    log.info("dictionary: now %s", fresh.version)
                self.latest = fresh or self.latest
        return self.latest

    def process(self, item: SplitBatch):
        cfg = self.cfg
        stats = RebalanceStats(input=item.batch.num_rows)
        batch = item.batch
        first = batch.column("position")[0].as_py()
        name = f"part-{cfg.sources.get(batch.column('source')[0].as_py(), 0):05d}-{first:012d}"
        batch, invalid_rows = self.keyed(item, stats)
        yield from invalid_rows
        if not batch.num_rows:
            yield beam.pvalue.TaggedOutput(STATS, stats)
            return
        dictionary = self.dictionary()
        stats.dictionaries[dictionary.version] += batch.num_rows
        index = self.index_for(item.split)
        self.extracted.inc(batch.num_rows if index is None else
                           sum(key not in index.row for key in batch.column("key").to_pylist()))
        entities = attach_entities(batch, cfg.perspectives, index, cfg.nlp)
        decisions = decide_batch(entities, dictionary.probs, cfg.seed, cfg.factor)
        kept_rows, kept_lines, dropped_lines, seeds = [], [], [], []
        tail_before = {p: [0, 0] for p in cfg.perspectives}
        tail_after = {p: [0, 0] for p in cfg.perspectives}
        tail_kept: set = set()  # (perspective, entity): tail entities, all in kept records (tail keeps)
        every = {p: entities.column(p).to_pylist() for p in cfg.perspectives}
        for row, (key, rid, image, position, record, d) in enumerate(zip(
                entities.column("key").to_pylist(), batch.column("id").to_pylist(), batch.column("image").to_pylist(),
                batch.column("position").to_pylist(), batch.column("record").to_pylist(), decisions)):
            stats.expected_kept += d.p_keep
            for p, size in d.sizes.items():
                tail_before[p][1] += size
                if d.keep:
                    tail_after[p][1] += size
            for p, tail in d.tail.items():
                tail_before[p][0] += len(tail)
            if d.keep:
                kept_rows.append(row)
                kept_lines.append(record)
                if d.tail:
                    shared = None if item.shared is None else bool(image) and position in item.shared
                    seeds.append(seed_line(key, rid, image, shared, d.tail, record,
                                           {p: every[p][row] for p in cfg.perspectives}))
                    for p, tail in d.tail.items():
                        tail_after[p][0] += len(tail)
                        tail_kept.update((p, e) for e in tail)
            else:
                stats.dropped[d.reason] += 1
                dropped_lines.append(json.dumps({"key": key, "id": rid, "reason": d.reason, "max_p": d.max_p,
                                                 "p_keep": d.p_keep}))
        stats.mass_before = {p: tuple(v) for p, v in tail_before.items()}
        stats.mass_after = {p: tuple(v) for p, v in tail_after.items()}
        stats.kept = len(kept_lines)
        # A bounded input shows the share of its bytes done; a stream, the records decided.
        progress.advance(batch.num_rows, 0.5 * (pc.sum(pc.binary_length(batch.column("record"))).as_py()
                                                + batch.num_rows) / cfg.input_bytes if cfg.input_bytes else 0.0)
        self.kept.inc(stats.kept)
        self.dropped.inc(len(dropped_lines))
        if kept_lines:
            yield name, "\n".join(kept_lines)
            counts = count_batches([entities.take(pa.array(kept_rows, pa.int64()))], cfg.perspectives)
            yield beam.pvalue.TaggedOutput(COUNTS, [((p, e, (p, e) in tail_kept), n)
                                                    for p, c in counts.items() for e, n in c.items()])
        if dropped_lines:
            yield beam.pvalue.TaggedOutput(DROPPED, "\n".join(dropped_lines))
        if seeds:
            yield beam.pvalue.TaggedOutput(SEEDS, "\n".join(seeds))
        yield beam.pvalue.TaggedOutput(STATS, stats)

    def keyed(self, item: SplitBatch, stats: RebalanceStats):
        """The batch with each record's final key (the occurrence number appended to the second and
        later of byte-identical records), and the dead letters of copies dropped on request."""
        batch = item.batch
        if not item.copies:
            return batch, []
        digests = batch.column("key").to_pylist()
        positions = batch.column("position").to_pylist()
        keys, drop, dead = [], [], []
        for i, (digest, position) in enumerate(zip(digests, positions)):
            occurrence = item.copies.get(position, 0)
            keys.append(record_key(digest, occurrence))
            if occurrence:
                stats.exact_duplicates += 1
                if self.cfg.drop_exact_duplicates:
                    drop.append(i)
                    stats.invalid[EXACT_DUPLICATE] += 1
                    dead.append(beam.pvalue.TaggedOutput(INVALID, json.dumps({
                        "source": batch.column("source")[i].as_py(), "position": position, "reason": EXACT_DUPLICATE,
                        "detail": f"{EXACT_DUPLICATE}: same content as the record with key {digest}",
                        "raw": batch.column("record")[i].as_py()[:4096]}, ensure_ascii=False)))
        batch = batch.set_column(batch.schema.get_field_index("key"), "key", pa.array(keys, pa.string()))
        if drop:
            batch = batch.take(sorted(set(range(batch.num_rows)) - set(drop)))
        return batch, dead


def seed_line(key: str, rid, image, image_shared: bool | None, tail: dict, record: str, entities: dict) -> str:
    """A kept tail record as a line of seeds/: the unshared-image (and text-only) ones are the
    visual seed pool of the spec; language synthesis may use any. `image_shared` is null when
    the run cannot know (a stream never sees the whole corpus). `entities` are all the record's
    entities (synthesis reads its nouns and plans what its records would carry)."""
    return (f'{{"key":{json.dumps(key)},"id":{json.dumps(rid)},"image":{json.dumps(image)},'
            f'"image_shared":{json.dumps(image_shared)},"tail_entities":{json.dumps(tail)},'
            f'"entities":{json.dumps(entities, ensure_ascii=False)},"record":{record}}}')


class WriteKeptBatch(beam.DoFn):
    """One kept/ file per input batch, named by the batch's input position: concatenated in name
    order the files are the kept records in input order, whatever ran where. The write is
    idempotent (same name, same content) and atomic (a temporary file renamed), so a retried
    bundle neither duplicates nor truncates a file."""

    def __init__(self, directory: str):
        self.directory = directory

    def process(self, named):
        import fsspec

        name, text = named
        fs, root = fsspec.core.url_to_fs(self.directory)
        fs.makedirs(root, exist_ok=True)
        tmp = f"{root}/.{name}.{uuid.uuid4().hex}.tmp"
        with fs.open(tmp, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        fs.mv(tmp, f"{root}/{name}.jsonl")
