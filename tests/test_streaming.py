"""Streaming rebalance as an operator runs it: files read once and only when complete, late and
bad messages dead-lettered by message, a dictionary refreshed mid-run, files per window."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.test_stream import TestStream as BeamTestStream

from pipelines.rebalance import job as rebalance
from pipelines.rebalance.reads import Message
from pipelines.rebalance.watch import Listed, WatchPolicy, new_files
from pipelines.stage import execute
from tests.conftest import NLP_ARGS
from udfs.artifacts import read_dictionary
from udfs.rebalance import decide_batch


def from_pubsub(argv: list[str], messages) -> None:
    """The rebalancing graph on the streaming DirectRunner, `messages` (a TestStream) standing in
    for the Pub/Sub subscription in argv."""
    from pipelines.rebalance.reads import from_messages

    args, beam_args = rebalance.configure(argv)
    options = PipelineOptions(flags=beam_args)
    with BeamTestPipeline(options=options) as p:
        batches, found = from_messages(p | messages, args.pubsub_subscription, args)
        batches | rebalance.Rebalance(rebalance.plan(args, options), args.output, found=found)


def rows(folder: Path) -> list[dict]:
    return [json.loads(line) for f in sorted(folder.glob("*.jsonl")) for line in f.read_text().splitlines() if line]


# ---- the watch ---------------------------------------------------------------------------

def test_a_file_is_read_once_only_when_settled_and_the_state_keeps_one_retention_period():
    policy = WatchPolicy(settle_secs=10, retention_secs=100)
    listing = [Listed("d/old.jsonl", 0.0), Listed("d/writing.jsonl", 995.0), Listed("d/_SUCCESS", 0.0),
               Listed("d/.old.jsonl.tmp", 0.0), Listed("d/notes.txt", 0.0)]
    new, seen = new_files(listing, None, policy, now=1000.0)
    assert new == ["d/old.jsonl"] and seen == {}  # first listing reads what is there; "old" is past retention
    new, seen = new_files(listing, seen, policy, now=1003.0)
    assert new == []                                # still being written, and "old" is not read again
    listing = [Listed("d/old.jsonl", 0.0), Listed("d/writing.jsonl", 998.0), Listed("d/next.jsonl", 1001.0)]
    new, seen = new_files(listing, seen, policy, now=1007.5)
    assert new == [] and seen == {}                 # "writing" changed at 998: not settled yet
    new, seen = new_files(listing, seen, policy, now=1011.0)
    assert new == ["d/writing.jsonl", "d/next.jsonl"] and set(seen) == {"d/writing.jsonl", "d/next.jsonl"}
    new, seen = new_files(listing, seen, policy, now=1050.0)
    assert new == []
    # a thousand files later the state holds only the last retention period's
    for i in range(1000):
        new, seen = new_files([Listed(f"f{i}.jsonl", 2000.0 + i)], seen, policy, now=2010.0 + i)
        assert new == [f"f{i}.jsonl"]
    assert len(seen) == 91
    assert new_files([Listed("copied-with-old-time.jsonl", 5.0)], seen, policy, now=3100.0)[0] == []


def test_a_done_marker_makes_a_file_complete_and_dates_it():
    policy = WatchPolicy(settle_secs=1e9, retention_secs=100, done_marker=".done")
    listing = [Listed("a.jsonl", 0.0), Listed("b.jsonl", 0.0), Listed("b.jsonl.done", 500.0),
               Listed(".c.jsonl", 0.0), Listed(".c.jsonl.done", 500.0)]
    new, seen = new_files(listing, {}, policy, now=510.0)
    assert new == ["b.jsonl"] and seen == {"b.jsonl": 500.0}
    new, _ = new_files(listing + [Listed("a.jsonl.done", 505.0)], seen, policy, now=511.0)
    assert new == ["a.jsonl"]  # an old file, fresh marker: read


# ---- messages: lateness and dead letters that name the message ---------------------------

def test_late_and_bad_messages_are_dead_lettered_with_their_message_ids(coco_stats, coco_jsonl, tmp_path):
    import apache_beam as beam
    from apache_beam.transforms.window import TimestampedValue

    lines = coco_jsonl.read_text().splitlines()[:60]
    now = time.time()
    on_time = [TimestampedValue(Message(line.encode(), {"message_id": f"m{i}", "publish_time": now}), now)
               for i, line in enumerate(lines[:50])]
    late = [TimestampedValue(Message(line.encode(), {"message_id": f"late{i}", "publish_time": now - 3600}),
                             now - 3600) for i, line in enumerate(lines[50:])]
    bad = [TimestampedValue(Message(b"{not json", {"message_id": "bad0", "publish_time": now}), now)]
    stream = (BeamTestStream().add_elements(on_time[:25]).add_elements(late).add_elements(bad)
              .add_elements(on_time[25:]).advance_watermark_to_infinity())

    class Messages(beam.PTransform):
        def expand(self, pbegin):
            return pbegin | stream

    out = tmp_path / "s"
    from_pubsub(["--pubsub-subscription", "projects/p/subscriptions/s", "--dictionary", str(coco_stats[0]),
                 "--output", str(out), "--streaming", "--window-secs", "60", "--allowed-lateness-secs", "30"],
                Messages())
    letters = rows(out / "invalid")
    assert sorted(l["message"]["message_id"] for l in letters if l["reason"] == "late") == \
        sorted(f"late{i}" for i in range(10))
    assert all("behind the clock" in l["detail"] for l in letters if l["reason"] == "late")
    assert [l["message"]["message_id"] for l in letters if l["reason"] != "late"] == ["bad0"]
    windows = [json.loads(p.read_text()) for p in (out / "summary").glob("*.json")]
    total = {k: sum(w[k] for w in windows) for k in ("input", "kept", "dropped", "invalid", "late")}
    assert total["input"] == 61 and total["late"] == 10 and total["invalid"] == 1
    assert total["kept"] + total["dropped"] == 50
    assert {s["image_shared"] for s in rows(out / "seeds")} == {None}
    assert all("no seed is offered to visual synthesis" in w["image_seeds"] for w in windows)


def test_late_records_within_the_allowed_lateness_reach_every_sink_and_their_own_summary(coco_stats, coco_jsonl,
                                                                                       tmp_path):
    """On time, then the watermark past the window's end (the on-time pane fires), then records of
    the same window within --allowed-lateness-secs (a late pane), then the end: every record is in
    kept/, dropped/ or invalid/, and the two panes' summaries add up to them."""
    import apache_beam as beam
    from apache_beam.transforms.window import TimestampedValue

    lines = coco_jsonl.read_text().splitlines()[:90]
    start = (int(time.time()) // 60 - 2) * 60  # a window that closed a minute ago: within the lateness
    def message(i, line):
        return TimestampedValue(Message(line.encode(), {"message_id": f"m{i}"}), start + 1 + i % 50)

    on_time = [message(i, line) for i, line in enumerate(lines[:60])]
    late = [message(i, line) for i, line in enumerate(lines[60:], start=60)] + [
        TimestampedValue(Message(b"{late and bad", {"message_id": "bad"}), start + 30)]
    stream = (BeamTestStream().add_elements(on_time).advance_watermark_to(start + 61)
              .advance_processing_time(5).add_elements(late).advance_watermark_to_infinity())

    class Messages(beam.PTransform):
        def expand(self, pbegin):
            return pbegin | stream

    out = tmp_path / "s"
    from_pubsub(["--pubsub-subscription", "projects/p/subscriptions/s", "--dictionary", str(coco_stats[0]),
                 "--output", str(out), "--streaming", "--window-secs", "60", "--allowed-lateness-secs", "600"],
                Messages())
    summaries = sorted((out / "summary").glob("*.json"))
    panes = [json.loads(p.read_text()) for p in summaries]
    # the on-time pane, then late ones (a late pane fires with the late elements that have come)
    assert [p["pane"] for p in panes] == list(range(len(panes))) and len(panes) >= 2, [p.name for p in summaries]
    assert panes[0]["input"] == 60 and sum(p["input"] for p in panes[1:]) == 31
    assert sum(p["invalid"] for p in panes[1:]) == 1
    files = {f: rows(out / f) for f in ("kept", "dropped", "invalid")}
    assert {f: len(r) for f, r in files.items()} == {f: sum(p[f] for p in panes) for f in files}
    ids = sorted(r["id"] for f in ("kept", "dropped") for r in files[f])
    assert ids == sorted(json.loads(line)["id"] for line in lines)
    assert any("-pane-001-" in p.name for p in (out / "kept").glob("*.jsonl"))
    assert not list(out.rglob("_temporary/*"))  # nothing half-written left behind


def test_allowed_lateness_is_for_messages_and_a_watch_flag_for_a_watch(coco_stats, tmp_path):
    from adr.errors import ConfigError

    with pytest.raises(ConfigError, match="never late"):
        rebalance.configure(["--input", str(tmp_path), "--dictionary", "d", "--output", "o", "--streaming",
                              "--allowed-lateness-secs", "5"])
    with pytest.raises(ConfigError, match="watched --input"):
        rebalance.configure(["--pubsub-subscription", "s", "--dictionary", "d", "--output", "o", "--streaming",
                              "--settle-secs", "5"])


# ---- a dictionary refreshed mid-run ------------------------------------------------------

@pytest.fixture(scope="module")
def second_stats(spark, coco_jsonl, tmp_path_factory):
    """Another `adr stats` over the same records, cut elsewhere: other tau, other decisions."""
    from pipelines.stats import job as spark_stats

    out = tmp_path_factory.mktemp("stats_b")
    execute(spark_stats.STAGE, ["--input", str(coco_jsonl), "--output", str(out), "--tail-share",
                     "token=0.5,object=0.5,cooccurrence=0.5,interrogation=0.5", *NLP_ARGS], spark)[1]
    return out


def kept_under(stats_dir: Path, entities: pa.Table, perspectives) -> set[str]:
    probs = read_dictionary(str(stats_dir), perspectives, "p")
    batch = entities.select(["key", *perspectives]).combine_chunks().to_batches()[0]
    return {key for key, d in zip(batch.column("key").to_pylist(), decide_batch(batch, probs, 42)) if d.keep}


def wait_for(predicate, timeout: float, what: str):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_records_after_a_refresh_follow_the_new_dictionary(coco_stats, second_stats, coco_jsonl, tmp_path):
    first, manifest = coco_stats
    perspectives = manifest["parameters"]["perspectives"]
    entities = pq.read_table(first / "entities", columns=["key", "id", *perspectives])
    id_of = dict(zip(entities["key"].to_pylist(), entities["id"].to_pylist()))
    lines = coco_jsonl.read_text().splitlines()
    before_ids = {json.loads(line)["id"] for line in lines[:700]}
    kept_a = {id_of[k] for k in kept_under(first, entities, perspectives)}
    kept_b = {id_of[k] for k in kept_under(second_stats, entities, perspectives)}
    after_ids = {json.loads(line)["id"] for line in lines[700:]}
    # the test can fail: the two dictionaries decide differently on both halves
    assert (kept_a ^ kept_b) & before_ids and (kept_a ^ kept_b) & after_ids

    watched, out, live = tmp_path / "incoming", tmp_path / "out", tmp_path / "stats"
    watched.mkdir()
    shutil.copytree(first, live)
    (watched / "a.jsonl").write_text("\n".join(lines[:700]) + "\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "rebalance", "--input", str(watched),
                             "--dictionary", str(live), "--output", str(out), "--streaming", "--window-secs", "3",
                             "--watch-interval-secs", "0.5", "--settle-secs", "0.5", "--watch-for-secs", "45",
                             "--dictionary-refresh-secs", "1", *NLP_ARGS],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    log = []

    def read_until(text: str):
        for line in proc.stdout:
            log.append(line)
            if text in line:
                return
        raise AssertionError(f"the job ended before {text!r}:\n{''.join(log)[-3000:]}")

    try:
        read_until("watch: reading " + str(watched / "a.jsonl"))
        time.sleep(15)  # its 700 records decided (no output shows it before the windows close)
        # replace the dictionary as an operator would: the new one beside it, then renamed in
        staged = tmp_path / "stats.new"
        shutil.copytree(second_stats, staged)
        live.rename(tmp_path / "stats.old")
        staged.rename(live)
        (watched / "b.jsonl").write_text("\n".join(lines[700:]) + "\n")
        read_until("watch: reading " + str(watched / "b.jsonl"))
        read_until("dictionary: now")
        log.append(proc.communicate(timeout=300)[0])
    finally:
        proc.kill()
    assert proc.returncode == 0, "".join(log)[-3000:]

    kept = {r["id"] for r in rows(out / "kept")}
    assert kept & before_ids == kept_a & before_ids
    assert kept & after_ids == kept_b & after_ids
    windows = [json.loads(p.read_text()) for p in sorted((out / "summary").glob("*.json"))]
    tau = {str(path): json.loads((path / "manifest.json").read_text())["perspectives"]
           for path in (first, second_stats)}
    used = [{p: v["tau"] for p, v in tau[str(s)].items()} for s in (first, second_stats)]
    versions = [v["tau"] for w in windows for v in w["dictionaries"]]
    assert used[0] in versions and used[1] in versions
    assert versions.index(used[0]) < len(versions) - 1 - versions[::-1].index(used[1])
    assert sum(w["input"] for w in windows) == sum(w["kept"] + w["dropped"] + w["invalid"] + w["late"]
                                                    for w in windows) == len(lines)
    # output files follow --window-secs: named by their window's start, not one per second
    kept_files = sorted((out / "kept").glob("*.jsonl"))
    starts = {int(f.name.split("-")[1]) for f in kept_files}
    assert kept_files and all(start % 3 == 0 for start in starts) and len(starts) <= len(windows)


# ---- a watch that restarts: the ledger ------------------------------------------------------

def _watch(stats_dir, folder, out, secs="2", graph=False):
    """The local loop of bounded runs, or (`graph`) the streaming pipeline Dataflow runs, on the
    streaming DirectRunner."""
    argv = ["--input", str(folder), "--dictionary", str(stats_dir), "--output", str(out), "--streaming",
            "--window-secs", "5", "--watch-interval-secs", "0.5", "--settle-secs", "0", "--watch-for-secs", secs,
            *NLP_ARGS]
    if not graph:
        return execute(rebalance.STAGE, argv)
    args, beam_args = rebalance.configure(argv)
    options = PipelineOptions(flags=beam_args)
    pipeline = BeamTestPipeline(options=options)
    rebalance.graph(pipeline, rebalance.plan(args, options), args)
    return rebalance.run_pipeline(pipeline, None)


def _decided(out: Path) -> list[str]:
    return sorted([r["id"] for r in rows(out / "kept")] + [r["id"] for r in rows(out / "dropped")])


@pytest.mark.parametrize("graph", [False, True], ids=["local loop", "streaming pipeline"])
def test_a_restarted_watch_decides_each_file_once_and_refuses_one_that_changed(coco_stats, coco_jsonl, tmp_path,
                                                                              graph):
    lines = coco_jsonl.read_text().splitlines()
    folder, out = tmp_path / "incoming", tmp_path / "out"
    folder.mkdir()
    (folder / "a.jsonl").write_text("\n".join(lines[:300]) + "\n")
    _watch(coco_stats[0], folder, out, graph=graph)
    first = _decided(out)
    assert first == sorted(json.loads(line)["id"] for line in lines[:300])
    # a restart, a new file, and the first one grown after it was decided
    (folder / "b.jsonl").write_text("\n".join(lines[300:500]) + "\n")
    with (folder / "a.jsonl").open("a") as f:
        f.write("\n".join(lines[500:520]) + "\n")
    _watch(coco_stats[0], folder, out, graph=graph)
    assert _decided(out) == sorted(json.loads(line)["id"] for line in lines[:500])  # nothing twice
    letters = rows(out / "invalid")
    assert [(l["source"], l["reason"]) for l in letters] == [(str(folder / "a.jsonl"), "changed-after-read")]
    summaries = [json.loads(p.read_text()) for p in (out / "summary").glob("*.json")]
    assert sum(s["input"] for s in summaries) == 501 and sum(s["invalid"] for s in summaries) == 1
    _watch(coco_stats[0], folder, out, "1", graph=graph)  # and the refusal is not repeated by the next restart
    assert len(rows(out / "invalid")) == 1 and _decided(out) == sorted(json.loads(l)["id"] for l in lines[:500])


@pytest.mark.parametrize("crash", ["before its files are moved", "after its files are moved"])
def test_a_batch_cut_short_is_decided_again_whole_and_not_twice(coco_stats, coco_jsonl, tmp_path, monkeypatch, crash):
    from pipelines.rebalance import ledger, local_watch

    lines = coco_jsonl.read_text().splitlines()
    folder, out = tmp_path / "incoming", tmp_path / "out"
    folder.mkdir()
    (folder / "a.jsonl").write_text("\n".join(lines[:200]) + "\n")

    def killed(*args, **kwargs):
        raise RuntimeError("killed")

    if crash == "before its files are moved":
        monkeypatch.setattr(local_watch, "publish", killed)
    else:
        monkeypatch.setattr(ledger.Ledger, "commit", killed)
    with pytest.raises(RuntimeError, match="killed"):
        _watch(coco_stats[0], folder, out)
    assert list((out / "_watch").glob("pending-*.json")) and not list((out / "_watch").glob("commit-*"))
    monkeypatch.undo()
    _watch(coco_stats[0], folder, out, "1")
    assert not list((out / "_watch").glob("pending-*.json")) and len(list((out / "_watch").glob("commit-*"))) == 1
    assert _decided(out) == sorted(json.loads(line)["id"] for line in lines[:200])


def test_sources_resume_kafka_from_its_groups_offsets_and_pubsub_drops_repeats_by_id():
    from pipelines.rebalance.reads import kafka_consumer, pubsub_read

    args, _ = rebalance.configure(["--kafka-topic", "t", "--dictionary", "d", "--output", "o", "--streaming"])
    assert kafka_consumer(args) == {"bootstrap.servers": "localhost:9092", "group.id": "adr-rebalance",
                                    "auto.offset.reset": "earliest", "enable.auto.commit": "false"}
    args, _ = rebalance.configure(["--kafka-topic", "t", "--kafka-group", "g", "--kafka-bootstrap", "b:1",
                                    "--dictionary", "d", "--output", "o", "--streaming"])
    assert kafka_consumer(args)["group.id"] == "g" and kafka_consumer(args)["bootstrap.servers"] == "b:1"
    args, _ = rebalance.configure(["--pubsub-subscription", "projects/p/subscriptions/s", "--pubsub-id-label", "uid",
                                    "--dictionary", "d", "--output", "o", "--streaming"])
    assert pubsub_read(args) == {"subscription": "projects/p/subscriptions/s", "with_attributes": True,
                                 "id_label": "uid"}
    import inspect

    import apache_beam as beam
    from apache_beam.io.kafka import ReadFromKafka

    # the arguments are the ones these Beam transforms take
    assert {"subscription", "with_attributes", "id_label"} <= set(inspect.signature(beam.io.ReadFromPubSub).parameters)
    assert "commit_offset_in_finalize" in inspect.signature(ReadFromKafka).parameters
