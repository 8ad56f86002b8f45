"""The Beam rebalancing pipeline on real COCO records, against the scalar keep rule."""

import json
import math
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.test_stream import TestStream as BeamTestStream

from adr.sampling import decide, keep_probability
from pipelines.rebalance import job as beam_rebalance
from pipelines.stage import Engine
from tests.conftest import BAD_LINES, write_bad_corpus
from udfs.artifacts import read_dictionary
from udfs.rebalance import decide_batch


def read_jsonl(folder: Path) -> list[dict]:
    return [json.loads(line) for f in sorted(folder.glob("*.jsonl")) for line in f.read_text().splitlines() if line]


def rebalance(inputs, stats_dir, out, *extra):
    inputs = [inputs] if isinstance(inputs, (str, Path)) else inputs
    args, beam_args = beam_rebalance.configure(["--input", *map(str, inputs), "--dictionary", str(stats_dir),
                                                "--output", str(out), *extra])
    return beam_rebalance.launch(args, Engine(tuple(beam_args)))


@pytest.fixture(scope="module")
def stats(coco_stats):
    out, manifest = coco_stats
    perspectives = manifest["parameters"]["perspectives"]
    rows = pq.read_table(out / "entities", columns=["key", "id", *perspectives]).to_pylist()
    ids = {r["key"]: r.pop("id") for r in rows}  # COCO caption records: one id each, like the key
    entities = {r.pop("key"): r for r in rows}
    return out, manifest, entities, read_dictionary(str(out), manifest["parameters"]["perspectives"], "p"), ids


@pytest.fixture(scope="module")
def direct_run(stats, coco_jsonl, tmp_path_factory):
    out = tmp_path_factory.mktemp("rebalance")
    result, summary = rebalance(coco_jsonl, stats[0], out)
    return out, result, summary


def reference_kept(stats, seed=42, factor=1.0):
    """The ids of the records the scalar rule keeps, drawing on each record's key."""
    _, _, entities, probs, ids = stats
    return {ids[key] for key, ents in entities.items() if decide(seed, key, ents, probs, factor)[0]}


def test_vectorised_decisions_equal_the_scalar_rule_for_every_record(stats):
    _, _, entities, probs, _ = stats
    rows = [{"key": key, **ents} for key, ents in entities.items()]
    batch = pa.RecordBatch.from_pylist(rows)
    for factor in (1.0, 0.37):
        decisions = decide_batch(batch, probs, 42, factor)
        assert [d.keep for d in decisions] == [decide(42, r["key"], entities[r["key"]], probs, factor)[0] for r in rows]


def test_pipeline_keeps_exactly_the_reference_set_and_counts_add_up(stats, coco_jsonl, direct_run):
    _, _, entities, probs, _ = stats
    out, result, summary = direct_run
    kept = read_jsonl(out / "kept")
    dropped = read_jsonl(out / "dropped")
    assert {r["id"] for r in kept} == reference_kept(stats)
    assert summary["input"] == len(entities) == summary["kept"] + summary["dropped"] + summary["invalid"]
    assert (summary["kept"], summary["dropped"], summary["budget"]) == (len(kept), len(dropped), len(dropped))
    # records leave unchanged, with every field
    originals = {r["id"]: r for r in map(json.loads, coco_jsonl.read_text().splitlines())}
    assert all(r == originals[r["id"]] for r in kept)
    assert {d["reason"] for d in dropped} <= {"head-only", "no-entities"}
    counters = {m.key.metric.name: m.committed for m in result.metrics().query()["counters"]}
    assert counters["kept"] == len(kept) and counters["dropped"] == len(dropped)
    assert counters["entities_extracted"] == 0  # every record's entities came from its split's file


def test_kept_count_matches_the_closed_form_and_every_tail_record_is_kept(stats, direct_run):
    _, manifest, entities, probs, ids = stats
    out, _, summary = direct_run
    p_keep = [keep_probability(probs[k].get(e, 1.0) for k, es in ents.items() for e in es)
              for ents in entities.values()]
    expected, var = sum(p_keep), sum(p * (1 - p) for p in p_keep)
    assert summary["expected_kept"] == pytest.approx(expected, abs=1e-3)
    assert abs(summary["kept"] - expected) <= 4 * math.sqrt(var)
    kept = {r["id"] for r in read_jsonl(out / "kept")}
    tail_records = {ids[key] for key, ents in entities.items()
                    if any(probs[k][e] >= 1 for k, es in ents.items() for e in es)}
    assert tail_records and tail_records <= kept
    assert 0 < summary["dropped"] < summary["input"]
    for p, cov in summary["tail_coverage"].items():
        distinct = {e for ents in entities.values() for e in ents.get(p) or () if probs[p].get(e, 1.0) >= 1}
        assert cov["tail_entities_before"] == len(distinct) > 0, p  # counted by the engine, not merged sets
        assert cov["tail_entities_after"] == cov["tail_entities_before"]
        assert cov["tail_mass_pct_after"] >= cov["tail_mass_pct_before"]


def test_seeds_are_the_kept_tail_records_marked_by_shared_image(stats, coco_jsonl, direct_run):
    _, _, entities, probs, ids = stats
    out, _, _ = direct_run
    seeds = read_jsonl(out / "seeds")
    records = {r["id"]: r for r in map(json.loads, coco_jsonl.read_text().splitlines())}
    uses = {}
    for r in records.values():
        uses[r["image"]] = uses.get(r["image"], 0) + 1
    kept = {r["id"] for r in read_jsonl(out / "kept")}
    tail = {ids[key] for key, ents in entities.items() if any(probs[k][e] >= 1 for k, es in ents.items() for e in es)}
    assert {s["id"] for s in seeds} == kept & tail
    assert all(ids[s["key"]] == s["id"] for s in seeds)
    for s in seeds:
        assert s["image_shared"] == (uses[records[s["id"]]["image"]] > 1)
        assert s["record"] == records[s["id"]]
        assert s["tail_entities"] and all(probs[k][e] >= 1 for k, es in s["tail_entities"].items() for e in es)
    # COCO has 5 captions per image: the visual pool (unshared images) is empty here, by definition
    assert not [s for s in seeds if not s["image_shared"]]


def test_kept_set_is_the_same_for_any_runner_order_and_batching(stats, coco_jsonl, direct_run, tmp_path, capsys):
    out, _, summary = direct_run
    kept = {r["id"] for r in read_jsonl(out / "kept")}
    lines = coco_jsonl.read_text().splitlines()
    random.Random(5).shuffle(lines)
    parts = [lines[:1], lines[1:701], lines[701:738], lines[738:]]
    for i, part in enumerate(parts):
        path = tmp_path / "shuffled" / f"part-{i}.jsonl"
        path.parent.mkdir(exist_ok=True)
        path.write_text("\n".join(part) + "\n")
    # Another order is another input: its entities are extracted afresh (the statistics' are
    # found by the splits the statistics read). The other runners reuse them, a split at a time.
    runs = {
        "shuffled-direct": (tmp_path / "shuffled", ["--extract-entities"]),
        "multi-process": (coco_jsonl, ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"]),
        "portable": (coco_jsonl, ["--runner", "PortableRunner", "--job_endpoint", "embed",
                                  "--environment_type", "LOOPBACK"]),
    }
    for name, (source, flags) in runs.items():
        capsys.readouterr()
        _, s = rebalance(source, stats[0], tmp_path / name, *flags)
        assert {r["id"] for r in read_jsonl(tmp_path / name / "kept")} == kept, name
        assert (s["kept"], s["dropped"]) == (summary["kept"], summary["dropped"]), name
        # the progress line counts the records decided, also by workers in other processes
        assert f"rebalance: {s['kept'] + s['dropped']:,} records in" in capsys.readouterr().err, name


def test_target_size_scales_tau_to_give_n_records(stats, coco_jsonl, tmp_path):
    _, _, entities, probs, _ = stats
    target = int(0.6 * len(entities))
    _, summary = rebalance(coco_jsonl, stats[0], tmp_path / "t", "--target-size", str(target))
    factor = summary["tau_factor"]
    assert 0 < factor < 1 and summary["target_size"] == target
    p_keep = [keep_probability(min(1.0, probs[k].get(e, 1.0) * factor) for k, es in ents.items() for e in es)
              for ents in entities.values()]
    assert sum(p_keep) == pytest.approx(target, abs=0.5)
    assert abs(summary["kept"] - target) <= 4 * math.sqrt(sum(p * (1 - p) for p in p_keep))
    assert {r["id"] for r in read_jsonl(tmp_path / "t" / "kept")} == reference_kept(stats, factor=factor)


def test_bad_lines_are_dead_lettered_and_good_records_around_them_processed(stats, coco_jsonl, tmp_path):
    path = write_bad_corpus(tmp_path / "bad.jsonl", coco_jsonl.read_text().splitlines())
    _, summary = rebalance(path, stats[0], tmp_path / "o", "--max-record-bytes", "4000", "--extract-entities")
    invalid = read_jsonl(tmp_path / "o" / "invalid")
    assert sorted((r["position"], r["reason"]) for r in invalid) == sorted(BAD_LINES.items())
    assert summary["input"] == 47 and summary["invalid"] == 6 and summary["kept"] + summary["dropped"] == 41
    # line 15 repeats line 4 byte for byte: a legitimate record, counted, and kept by default
    assert (summary["exact_duplicates"], summary["repeated_ids"]) == (1, 1)
    assert all(r["source"] == str(path) for r in invalid)


def test_records_the_stats_job_never_saw_get_entities_extracted(stats, tmp_path):
    from tests.conftest import SCIENCEQA

    records = json.loads(SCIENCEQA.read_text())[:150]
    path = tmp_path / "sqa.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    result, summary = rebalance(path, stats[0], tmp_path / "o", "--extract-entities")
    counters = {m.key.metric.name: m.committed for m in result.metrics().query()["counters"]}
    assert counters["entities_extracted"] == 150
    assert summary["input"] == 150 and summary["invalid"] == 0
    # ScienceQA vocabulary is mostly unseen in COCO captions: unseen entities are tail, so kept.
    assert summary["kept"] >= 140


def test_streaming_on_a_test_stream_keeps_the_same_records(stats, coco_jsonl, direct_run, tmp_path):
    import apache_beam as beam

    from pipelines.rebalance.reads import raw_batch_from_messages

    out, _, _ = direct_run
    kept = {r["id"] for r in read_jsonl(out / "kept")}
    lines = [line.encode() for line in coco_jsonl.read_text().splitlines()]
    stream = BeamTestStream()
    for i in range(0, len(lines), 500):
        stream = stream.advance_watermark_to(i).add_elements(lines[i:i + 500])
    stream = stream.advance_watermark_to_infinity()

    class Source(beam.PTransform):
        def expand(self, pbegin):
            return (pbegin | stream | beam.WindowInto(beam.window.FixedWindows(1000))
                    | beam.BatchElements(min_batch_size=50, max_batch_size=300)
                    | beam.Map(raw_batch_from_messages, source="stream"))

    options = PipelineOptions(flags=[], streaming=True)
    args, _ = beam_rebalance.configure(["--input", "unused", "--dictionary", str(stats[0]), "--output",
                                        str(tmp_path / "s"), "--streaming"])
    with BeamTestPipeline(options=options) as p:
        p | Source() | beam_rebalance.Rebalance(beam_rebalance.plan(args, options), args.output)
    got = {r["id"] for r in read_jsonl(tmp_path / "s" / "kept")}
    assert got == kept
    windows = [json.loads(p.read_text()) for p in (tmp_path / "s" / "summary").glob("*.json")]
    assert sum(w["input"] for w in windows) == len(lines)
    assert sum(w["kept"] for w in windows) == len(kept)


def test_nothing_valid_is_an_error(stats, tmp_path):
    path = tmp_path / "junk.jsonl"
    path.write_text("not json\n[1]\n")
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "rebalance", "--input", str(path),
                           "--dictionary", str(stats[0]), "--output", str(tmp_path / "o"), "--extract-entities"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "no valid records" in proc.stderr.strip().splitlines()[-1]


def test_command_line_streaming_watches_a_directory_with_a_refreshed_dictionary(stats, coco_jsonl, direct_run,
                                                                                 tmp_path):
    """`--streaming --input DIR` matches files as they come; the dictionary arrives as a
    periodically reloaded side input; decisions equal the batch run's."""
    import shutil
    import subprocess
    import sys

    out, _, _ = direct_run
    kept = {r["id"] for r in read_jsonl(out / "kept")}
    watched = tmp_path / "incoming"
    watched.mkdir()
    lines = coco_jsonl.read_text().splitlines()
    (watched / "a.jsonl").write_text("\n".join(lines[:700]) + "\n")
    (watched / "b.jsonl").write_text("\n".join(lines[700:]) + "\n")
    stats_copy = tmp_path / "stats"
    shutil.copytree(stats[0], stats_copy)
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "rebalance", "--input", str(watched),
                           "--dictionary", str(stats_copy), "--output", str(tmp_path / "s"), "--streaming",
                           "--window-secs", "5", "--watch-interval-secs", "1", "--watch-for-secs", "12", "--settle-secs", "1",
                           "--dictionary-refresh-secs", "2"], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {r["id"] for r in read_jsonl(tmp_path / "s" / "kept")} == kept
    windows = [json.loads(p.read_text()) for p in (tmp_path / "s" / "summary").glob("*.json")]
    assert sum(w["input"] for w in windows) == len(lines)


def test_vectorised_expected_kept_equals_the_scalar_closed_form(stats):
    """The numpy twin behind --target-size agrees with adr.sampling.expected_kept."""
    from adr.sampling import expected_kept
    from udfs.rebalance import expected_kept_fn

    out, _, entities, probs, _ = stats
    table = pq.read_table(out / "entities", columns=["key", *probs])
    vectorised = expected_kept_fn(table, probs)
    ps_by_record = [[probs[k].get(e, float("inf")) for k in probs for e in (ents.get(k) or [])]
                    for ents in (entities[key] for key in table["key"].to_pylist())]
    for factor in (0.05, 0.37, 1.0, 3.0):
        assert vectorised(factor) == pytest.approx(expected_kept(ps_by_record, factor), rel=1e-9)


def test_kept_entity_counts_are_the_kept_records_entities(stats, direct_run):
    from collections import Counter

    from udfs.artifacts import read_counts

    _, manifest, entities, _, ids = stats
    out, _, summary = direct_run
    kept = {json.loads(line)["id"] for line in "\n".join(
        f.read_text() for f in sorted((out / "kept").glob("*.jsonl"))).splitlines() if line}
    perspectives = manifest["parameters"]["perspectives"]
    expected = {p: Counter() for p in perspectives}
    for key, ents in entities.items():
        if ids[key] in kept:
            for p in perspectives:
                expected[p].update(set(ents[p] or ()))
    assert summary["kept"] == len(kept)
    assert read_counts(str(out / "entity_counts"), perspectives) == expected


def test_repeats_reach_the_records_by_a_join_not_a_side_input(stats, coco_jsonl, tmp_path):
    """No step holds a corpus-wide table: no side input but Beam's own (the file sinks' init and
    shard names, the global combine's default)."""
    import apache_beam as beam

    lines = coco_jsonl.read_text().splitlines()[:300]
    # byte-identical copies (numbered in input order) and an image another record uses
    corpus = tmp_path / "in.jsonl"
    corpus.write_text("\n".join(lines + lines[:5] + lines[:2]) + "\n")
    options = PipelineOptions(flags=[])
    pipeline = beam.Pipeline(options=options)
    args, _ = beam_rebalance.configure(["--input", str(corpus), "--dictionary", str(stats[0]), "--output",
                                        str(tmp_path / "out"), "--extract-entities"])
    beam_rebalance.graph(pipeline, beam_rebalance.plan(args, options), args)
    _, summary = beam_rebalance.run_pipeline(pipeline, str(tmp_path / "out" / "summary.json"))
    proto = pipeline.to_runner_api()
    from apache_beam.portability import common_urns
    from apache_beam.portability.api import beam_runner_api_pb2

    with_side = [t.unique_name for t in proto.components.transforms.values()
                 if t.spec.urn == common_urns.primitives.PAR_DO.urn and not any(own in t.unique_name for own in ("/WriteImpl/", "/InjectDefault"))
                 and beam_runner_api_pb2.ParDoPayload.FromString(t.spec.payload).side_inputs]
    assert with_side == []
    assert summary["exact_duplicates"] == 7 and summary["input"] == 307
    keys = [json.loads(line)["key"] for f in sorted((tmp_path / "out" / "dropped").glob("*.jsonl"))
            for line in f.read_text().splitlines()] + \
           [json.loads(line)["key"] for f in sorted((tmp_path / "out" / "seeds").glob("*.jsonl"))
            for line in f.read_text().splitlines()]
    assert len(keys) == len(set(keys))
    assert any(k.endswith("-2") for k in keys) or any(k.endswith("-1") for k in keys)
    seeds = [json.loads(line) for f in sorted((tmp_path / "out" / "seeds").glob("*.jsonl"))
             for line in f.read_text().splitlines()]
    uses = {}
    for line in corpus.read_text().splitlines():
        image = json.loads(line).get("image")
        uses[image] = uses.get(image, 0) + 1
    assert seeds and all(s["image_shared"] == (uses[s["image"]] > 1) for s in seeds)


def test_a_rerun_into_the_same_output_leaves_nothing_of_the_earlier_run(stats, coco_jsonl, tmp_path, monkeypatch):
    """Shards of another shard count and an old summary would mix with this run's: seeds/,
    dropped/ and invalid/ are cleared like kept/, and a run cut short leaves no summary for
    synthesize to trust."""
    from adr.errors import ConfigError
    from pipelines.checks import rebalance_summary
    from pipelines.rebalance import decide

    out = tmp_path / "o"
    rebalance(coco_jsonl, stats[0], out)
    stale = {folder: out / folder / "part-00007-of-00009.jsonl" for folder in ("seeds", "dropped", "invalid", "kept")}
    for path in stale.values():
        path.write_text('{"stale": true}\n')
    _, summary = rebalance(coco_jsonl, stats[0], out)
    assert not any(p.exists() for p in stale.values())
    lines = {f: len(read_jsonl(out / f)) for f in ("kept", "dropped", "invalid")}
    assert (lines["kept"], lines["dropped"], lines["invalid"]) == (summary["kept"], summary["dropped"], summary["invalid"])

    def cut_short(self, item):
        raise RuntimeError("the worker went away")

    monkeypatch.setattr(decide.Decide, "process", cut_short)
    with pytest.raises(Exception, match="went away"):
        rebalance(coco_jsonl, stats[0], out)
    with pytest.raises(ConfigError, match="cut short"):
        rebalance_summary(str(out))


def test_an_unreadable_file_is_one_dead_letter_and_the_other_files_are_read(stats, coco_jsonl, tmp_path):
    import gzip

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.jsonl").write_bytes(coco_jsonl.read_bytes())
    data = gzip.compress(coco_jsonl.read_bytes()[:20000])
    (folder / "cut.jsonl.gz").write_bytes(data[: len(data) // 2])
    (folder / "_temporary").mkdir()
    (folder / "_temporary" / "part-0.jsonl").write_bytes(coco_jsonl.read_bytes())  # an engine's half-written output
    _, summary = rebalance(folder, stats[0], tmp_path / "o", "--extract-entities")
    invalid = read_jsonl(tmp_path / "o" / "invalid")
    assert [(r["source"].rsplit("/", 1)[-1], r["reason"]) for r in invalid] == [("cut.jsonl.gz", "unreadable-file")]
    good = len(coco_jsonl.read_text().splitlines())
    assert summary["kept"] + summary["dropped"] == summary["input"] - summary["invalid"]
    # every line read before the damage is in, and the dead letter says where reading stopped
    assert summary["input"] > good and invalid[0]["position"] == summary["input"] - good


def test_a_dictionary_read_in_part_is_refused_and_a_refresh_keeps_the_previous_one(stats, tmp_path, caplog):
    """An object store replaces dictionary/ one object at a time: a reader that sees a part
    missing, or a part of another run beside this one's, must not decide by it."""
    import shutil

    from adr.errors import InputError
    from pipelines.rebalance.decide import load_dictionary, reload_dictionary

    perspectives = tuple(stats[1]["parameters"]["perspectives"])
    whole = load_dictionary(str(stats[0]), perspectives, 1.0)
    assert whole.probs == stats[3]
    copy = tmp_path / "stats"
    shutil.copytree(stats[0], copy)
    parts = sorted((copy / "dictionary").glob("*.parquet"))
    assert len(parts) >= 2 and stats[1]["dictionary"]["parts"] == [p.name for p in parts]
    parts[0].unlink()  # half-way through a copy
    with pytest.raises(InputError, match="not the one its manifest describes"):
        load_dictionary(str(copy), perspectives, 1.0)
    with caplog.at_level("WARNING"):
        assert reload_dictionary(str(copy), perspectives, 1.0) is None
    assert "previous dictionary is kept" in caplog.text
    shutil.copy(parts[1], parts[0])  # a part of the right name but another content
    with pytest.raises(InputError, match="entities, occurrences differ"):
        load_dictionary(str(copy), perspectives, 1.0)
