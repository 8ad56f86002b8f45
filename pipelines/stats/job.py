"""ADR statistics on Apache Spark: per-record entities, corpus counts, thresholds, dictionary.

Run as `adr stats ...` or `spark-submit pipelines/stats/job.py ...` (same flags).
Outputs under --output: entities/ (per record key), repeats/ (copies and shared images), dictionary/,
invalid/, [reverse_index/], manifest.json.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import time

import pyarrow as pa
import pyarrow.compute as pc

from adr import __version__
from adr.entities.registry import ALL, PERSPECTIVES, resolve, tail_shares
from adr.records import DEFAULT_MAX_RECORD_BYTES, EXACT_DUPLICATE
from adr.thresholds import threshold
from pipelines import progress
from pipelines.checks import at_least
from pipelines.outputs import join, read_json_or_none, remove, write_json
from pipelines.stage import Engine, Options, Stage, StageParser, frozen, spark_submit
from udfs.artifacts import dictionary_parts
from udfs.entities import entities_schema, extract_entities
from udfs.nlp import load_nlp
from udfs.records import PARSED_SCHEMA, parse_raw, valid_and_invalid
from udfs.sources import expand_inputs, fingerprint, max_element_bytes, total_bytes
from udfs.splits import plan_splits, read_split, split_bytes_for

log = logging.getLogger("adr.stats")


def parser() -> StageParser:
    ap = StageParser(prog="adr stats", description=__doc__.splitlines()[0])
    ap.add_argument("--input", required=True, nargs="+", help="files, globs, directories or URLs")
    ap.add_argument("--output", required=True, help="output directory (local path or URL)")
    ap.option("--perspectives", default=",".join(ALL))
    ap.option("--tail-share", default="", help="e.g. token=0.9,cooccurrence=0.75")
    ap.option("--nlp", default=None, help="spaCy pipeline name or path (default: shipped EWT tagger)")
    ap.option("--master", default=None, help="Spark master; default: spark-submit's, else local[*]")
    ap.option("--reverse-index", action="store_true", help="also write entity -> ids")
    ap.option("--max-record-bytes", type=at_least(int, 1), default=DEFAULT_MAX_RECORD_BYTES)
    ap.add_argument("--resume", action="store_true",
                    help="reuse entities/ and invalid/ left by an interrupted run of the same input and parameters")
    ap.option("--partitions", type=at_least(int, 0), default=0,
                    help="extraction tasks (default: splits of at most 4 MiB of input, at least 3 per core)")
    ap.option("--drop-exact-duplicates", action="store_true",
                    help="count byte-identical records once (the copies go to invalid/ as exact-duplicate)")
    return ap


def configure(argv: list[str]) -> tuple[Options, list[str]]:
    args = parser().parse_args(argv)
    perspectives = resolve(args.perspectives)
    # A malformed value fails here, in one line.
    return frozen(args, perspectives=perspectives, tail_share=tail_shares(args.tail_share, perspectives)), []


def spark_session(master: str | None, app: str = "adr-stats"):
    # Workers must run this interpreter, or they lose the virtualenv that holds adr and spaCy.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app)
    if not master and "SPARK_ENV_LOADED" not in os.environ:
        master = "local[*]"
    if master:
        builder = builder.master(master)
    if master and master.startswith("local"):
        # A laptop-sized shuffle: 200 partitions of a few records each cost more than they save.
        builder = builder.config("spark.sql.shuffle.partitions", "8")
    return (builder
            .config("spark.sql.execution.arrow.maxRecordsPerBatch", "2000")
            .config("spark.python.worker.reuse", "true")
            .config("spark.sql.adaptive.enabled", "true")
            .config("spark.ui.showConsoleProgress", "false")
            .getOrCreate())


def _read(batches, max_element_bytes: int):
    """(split index, raw batch) of every split a task was given."""
    for batch in batches:
        for text in batch.column("split").to_pylist():
            split = json.loads(text)
            for raw in read_split(split, max_element_bytes=max_element_bytes):
                yield split["index"], raw


def analysed_schema(perspectives: tuple[str, ...]) -> pa.Schema:
    """Parse results (split, position, id, reason for invalid rows) with each valid row's entities."""
    return pa.schema([pa.field("split", pa.int32())] + [f for f in PARSED_SCHEMA if f.name != "record"]
                     + list(entities_schema(perspectives))[1:])


def _parse_and_extract(raw_batches, max_bytes, perspectives, nlp, counters=None):
    for index, raw in raw_batches:
        if counters:
            counters[0].add(raw.num_rows)
            counters[1].add(pc.sum(pc.binary_length(raw.column("raw"))).as_py() or 0)
        parsed = parse_raw(raw, max_bytes=max_bytes)
        valid, _ = valid_and_invalid(parsed)
        entities = extract_entities(valid, perspectives, nlp) if valid.num_rows else None
        columns = {"split": pa.array([index] * parsed.num_rows, pa.int32())}
        columns.update({name: parsed.column(name) for name in parsed.schema.names if name != "record"})
        rows = pc.indices_nonzero(parsed.column("reason").is_null()).to_pylist()
        for p in perspectives:
            values: list = [None] * parsed.num_rows
            for row, entity_list in zip(rows, entities.column(p).to_pylist() if entities else []):
                values[row] = entity_list
            columns[p] = pa.array(values, pa.list_(pa.string()))
        yield pa.RecordBatch.from_arrays(list(columns.values()), schema=analysed_schema(perspectives))


def extract(spark, args, files: list[str], perspectives: tuple[str, ...], out: str, started: float) -> dict:
    """Read, parse and tag every record: writes invalid/ and entities/, returns the counts."""
    from pyspark import StorageLevel
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    size = total_bytes(files)
    # Tasks of bounded size whatever the corpus: each reads, parses and tags one split of the
    # input in one Python pass, so work balances across cores and executors, no task's memory
    # grows with the corpus, nothing is shuffled before tagging, and progress (counted as tasks
    # end) keeps moving.
    workers = spark.sparkContext.defaultParallelism
    with progress.track("stats: planning splits", unit="splits") as shown:
        splits = plan_splits(files, split_bytes_for(size, workers, args.partitions),
                             ramp=0 if args.partitions else workers)
        shown.update(len(splits), 1.0)
    log.info("%d splits of %s input", len(splits), f"{size:,} bytes")
    # One partition a split, in plan order (a DataFrame repartition would deal them round-robin),
    # so the small first splits are the first tasks.
    rows = spark.sparkContext.parallelize([(json.dumps(s.to_dict()),) for s in splits], len(splits))
    tasks = spark.createDataFrame(rows, "split string")
    # Accumulators reach the driver as tasks finish: the records and bytes behind the progress line.
    counters = (spark.sparkContext.accumulator(0), spark.sparkContext.accumulator(0))
    analyse = functools.partial(_parse_and_extract, max_bytes=args.max_record_bytes, perspectives=perspectives,
                                nlp=args.nlp, counters=counters)
    largest = max_element_bytes(args.max_record_bytes)
    analysed = tasks.mapInArrow(lambda batches: analyse(_read(batches, largest)),
                                from_arrow_schema(analysed_schema(perspectives)))
    # On disk, not in the executors' heap: this table grows with the corpus, and each output
    # (invalid/, entities/, repeats/, the counts) reads it once, never joining it in memory.
    analysed = analysed.persist(StorageLevel.DISK_ONLY)

    # Byte-identical records share a digest; from the second on (in input order) the key gets
    # its occurrence number. Only the repeated digests (few) are ranked.
    valid = analysed.where(F.col("reason").isNull())
    repeated = F.broadcast(valid.groupBy("key").count().where("count > 1").select("key"))
    first = Window.partitionBy("key").orderBy("source", "position")
    keyed = (valid.join(repeated, "key", "left_anti").withColumn("occurrence", F.lit(0))
             .unionByName(valid.join(repeated, "key", "left_semi")
                          .withColumn("occurrence", F.row_number().over(first) - 1))
             .withColumn("digest", F.col("key"))
             .withColumn("key", F.when(F.col("occurrence") > 0,
                                       F.concat("key", F.lit("-"), F.col("occurrence").cast("string")))
                         .otherwise(F.col("key"))))
    dropped_copies = keyed.where("occurrence > 0") if args.drop_exact_duplicates else keyed.limit(0)
    copies = dropped_copies.select(
        "source", "position", "id", F.lit(EXACT_DUPLICATE).alias("reason"),
        F.concat(F.lit(f"{EXACT_DUPLICATE}: same content as the record with key "), "digest").alias("detail"),
        F.lit(None).cast("string").alias("raw"))
    invalid = analysed.where(F.col("reason").isNotNull()).select("source", "position", "id", "reason", "detail", "raw")
    tracker = spark.sparkContext.statusTracker()

    def poll(shown):
        # Records and bytes arrive as tasks end; the status tracker says, meanwhile, that work goes on.
        stages = [tracker.getStageInfo(i) for i in tracker.getActiveStageIds()]
        stages = [s for s in stages if s is not None]
        note = (f"{sum(s.numCompletedTasks for s in stages)} of {sum(s.numTasks for s in stages)} tasks done, "
                f"{sum(s.numActiveTasks for s in stages)} running") if stages else ""
        shown.update(counters[0].value, counters[1].value / size if size else None, note)

    with progress.track("stats: tagging") as shown, progress.polling(lambda: poll(shown)):
        invalid.unionByName(copies).write.mode("overwrite").parquet(join(out, "invalid"))
        log.info("read, parsed, tagged; wrote invalid/ in %.1f s", time.time() - started)
        records = keyed.where("occurrence = 0") if args.drop_exact_duplicates else keyed
        # Partitioned by the split each record was read from: rebalance reads the same splits
        # and finds a split's entities in entities/split=N/, so no worker holds the whole table.
        (records.select("split", "position", "key", "id", *perspectives)
         .write.mode("overwrite").partitionBy("split").parquet(join(out, "entities")))
        log.info("extracted entities/ at %.1f s", time.time() - started)
        repeats(valid, keyed).write.mode("overwrite").partitionBy("split").parquet(join(out, "repeats"))
        row = keyed.agg(F.count("*").alias("valid"), F.countDistinct("id").alias("ids"),
                        F.sum(F.when(F.col("occurrence") > 0, 1).otherwise(0)).alias("copies")).first()
        elements_read = analysed.count()
        shown.update(elements_read, 1.0)
    analysed.unpersist()
    return {"elements_read": elements_read, "repeated_ids": row["valid"] - row["ids"],
            "exact_duplicates": row["copies"] or 0, "splits": [s.to_dict() for s in splits]}


def repeats(valid, keyed):
    """What repeats in the corpus means for each record it touches: the occurrence number of the
    second and later byte-identical copies, and whether another record uses its image. Found
    here, where the corpus is counted anyway, and read by rebalance with each split, so that no
    Beam process shuffles or holds a row per record to find them (repeats/split=N/)."""
    from pyspark.sql import functions as F

    shared = (valid.where(F.col("image").isNotNull()).groupBy("image").count().where("count > 1")
              .select("image", F.lit(True).alias("image_shared")))
    return (keyed.join(shared, "image", "left")
            .where((F.col("occurrence") > 0) | F.col("image_shared").isNotNull())
            .select("split", "position", F.col("occurrence").cast("int").alias("occurrence"),
                    F.coalesce("image_shared", F.lit(False)).alias("image_shared")))


def run(args: Options, engine: Engine = Engine()) -> dict:
    """Run the job; returns the manifest it wrote."""
    perspectives, rhos = args.perspectives, args.tail_share
    files = expand_inputs(args.input)
    started = time.time()
    if any(PERSPECTIVES[p].needs_tagger for p in perspectives):
        load_nlp(args.nlp)  # fail here, in one line, rather than inside every Spark task
    spark = engine.spark or spark_session(args.master)
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    out = args.output
    remove(join(out, "manifest.json"))  # written last: the next stage must not read an old one beside new parts
    parameters = {"perspectives": list(perspectives), "tail_share": rhos, "nlp": args.nlp or "default",
                  "max_record_bytes": args.max_record_bytes, "drop_exact_duplicates": args.drop_exact_duplicates}
    identity = {"input_fingerprint": fingerprint(files), "parameters": parameters}
    done = join(out, "extracted.json")
    previous = read_json_or_none(done) if args.resume else None
    if previous and previous["identity"] == identity:
        extracted = previous["counts"]
        print("adr stats: resuming: entities/ and invalid/ of the same input and parameters reused", file=sys.stderr)
    else:
        extracted = extract(spark, args, files, perspectives, out, started)
        write_json(done, {"identity": identity, "counts": extracted})
    elements_read = extracted["elements_read"]

    entities = spark.read.parquet(join(out, "entities"))
    n_records = entities.count()
    counts = None
    for p in perspectives:
        per = (entities.select(F.explode(p).alias("entity")).groupBy("entity").count()
               .select(F.lit(p).alias("perspective"), "entity", "count"))
        counts = per if counts is None else counts.unionByName(per)
    counts = counts.persist(StorageLevel.MEMORY_AND_DISK)

    hist: dict[str, dict[int, int]] = {p: {} for p in perspectives}
    for row in counts.groupBy("perspective", "count").agg(F.count("*").alias("n")).collect():
        hist[row["perspective"]][row["count"]] = row["n"]
    thresholds = {p: threshold(hist[p], rhos[p]) for p in perspectives}
    tau = F.create_map(*[x for p in perspectives for x in (F.lit(p), F.lit(thresholds[p].tau))])
    (counts.withColumn("p", tau[F.col("perspective")].cast("double") / F.col("count"))
     .repartition(max(1, len(perspectives)), "perspective")
     .sortWithinPartitions("perspective", F.desc("count"), "entity")
     .write.mode("overwrite").parquet(join(out, "dictionary")))
    log.info("counted and wrote dictionary/ at %.1f s", time.time() - started)
    counts.unpersist()

    if args.reverse_index:
        index = None
        for p in perspectives:
            per = (entities.select("key", F.explode(p).alias("entity")).groupBy("entity")
                   .agg(F.sort_array(F.collect_list("key")).alias("keys"))
                   .select(F.lit(p).alias("perspective"), "entity", "keys"))
            index = per if index is None else index.unionByName(per)
        index.write.mode("overwrite").parquet(join(out, "reverse_index"))

    by_reason = {r["reason"]: r["count"] for r in
                 spark.read.parquet(join(out, "invalid")).groupBy("reason").count().collect()}
    manifest = {
        "version": __version__,
        "records": n_records,
        "elements_read": elements_read,
        "repeated_ids": extracted["repeated_ids"],
        "exact_duplicates": extracted["exact_duplicates"],
        "invalid": sum(by_reason.values()),
        "invalid_by_reason": dict(sorted(by_reason.items())),
        "perspectives": {p: thresholds[p].to_dict() for p in perspectives},
        # What dictionary/ holds, so a reader can tell it read the whole of this version.
        "dictionary": {"parts": dictionary_parts(out),
                       "entities": {p: sum(hist[p].values()) for p in perspectives},
                       "occurrences": {p: sum(c * n for c, n in hist[p].items()) for p in perspectives}},
        "input": {"files": files, "fingerprint": identity["input_fingerprint"]},
        # entities/split=N/ holds the records of splits[N]; rebalance reads the input by these splits.
        "splits": extracted.get("splits"),
        "parameters": parameters,
        "engine": {"spark": spark.version, "master": spark.sparkContext.master},
        "seconds": round(time.time() - started, 2),
    }
    if n_records + manifest["invalid"] != elements_read:
        raise RuntimeError(f"count mismatch: {n_records} records + {manifest['invalid']} invalid "
                           f"!= {elements_read} read")
    write_json(join(out, "manifest.json"), manifest)
    return manifest


def describe(manifest: dict, args: Options) -> str:
    """Where the outputs are and what was found, for a person at a terminal."""
    out = args.output
    lines = [f"records {manifest['records']}  invalid {manifest['invalid']}  read {manifest['elements_read']}"
             f"  ({manifest['seconds']} s)",
             f"repeated ids {manifest['repeated_ids']} (records sharing an id with an earlier one: kept)  "
             f"exact duplicates {manifest['exact_duplicates']}",
             f"{'perspective':<14}{'rho':>6}{'tau':>8}{'entities':>10}{'tail ent %':>12}{'tail mass %':>13}"]
    for name, t in manifest["perspectives"].items():
        lines.append(f"{name:<14}{t['rho']:>6}{t['tau']:>8}{t['entities']:>10}"
                     f"{t['tail_entities_pct']:>12.1f}{t['tail_mass_pct']:>13.1f}")
    if manifest["invalid_by_reason"]:
        lines.append("invalid: " + ", ".join(f"{k} {v}" for k, v in manifest["invalid_by_reason"].items()))
    lines.append(f"outputs: {join(out, 'manifest.json')}, {join(out, 'dictionary')}/, "
                 f"{join(out, 'entities')}/, {join(out, 'repeats')}/, {join(out, 'invalid')}/")
    return "\n".join(lines)


def wiring(records: list[str], run_dir: str) -> list[str]:
    return ["--input", *records, "--output", join(run_dir, "stats")]


def run_releasing_spark(args: Options, engine: Engine) -> dict:
    """`adr run`'s stats: the JVM it started is not needed by later stages; its memory is."""
    manifest = run(args, engine)
    if engine.spark is None:
        from pyspark.sql import SparkSession

        active = SparkSession.getActiveSession()
        if active is not None:
            active.stop()
    return manifest


STAGE = Stage("stats", "corpus statistics and the probability dictionary (Apache Spark)", parser, configure,
              run_releasing_spark, describe, wiring, resumable=True, resume_flags=("--resume",))


if __name__ == "__main__":  # spark-submit pipelines/stats/job.py ...: the same flags as `adr stats`
    sys.exit(spark_submit(STAGE))
