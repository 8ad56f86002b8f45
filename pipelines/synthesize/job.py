"""ADR Data Synthesis on Apache Beam RunInference: refill the dropped budget with tail records.

    adr synthesize --rebalanced DIR --dictionary STATS_DIR --output OUT [--budget N]
                   [--mix visual=0.6,synonym=0.2,rewrite=0.2] [--image-model M --caption-model M]
                   [--llm M] [--images-root PATH_OR_URL] [--device auto|cpu|cuda] [--seed 42] [Beam options]

Methods: visual (diffusion image from the seed image -> caption -> LLM conversation), synonym
(WordNet tail synonyms of the record's nouns), rewrite (LLM rewrite offered those synonyms).
Seeds are drawn in a seeded order per method; the driver runs rounds over the next seeds until
each method has its share or the pool runs out, so the output is exactly the budget when the
pool allows. Outputs: OUT/synthetic/, OUT/refined/ (kept in input order, then synthetic: one LLaVA
JSON array, JSON Lines or Parquet), OUT/images/ (or --synthetic-images), OUT/failed/, OUT/summary.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys

import apache_beam as beam
import fsspec
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from adr.errors import ConfigError, InputError
from adr.prompts import conversation_messages, parse_conversation, rewrite_messages
from adr.protected import keeps_short_answers
from adr.synonyms import choose_replacements, replace_in_conversation, replaceable_nouns, safe_synonyms
from adr.synthesis import (METHODS, parse_mix, plan_budget, provenance, reassign_shortfall, seed_order,
                           synthetic_id)
from pipelines.synthesize.handlers.captioning import CaptionHandler
from pipelines.synthesize.handlers.diffusion import DiffusionHandler, SeedImage
from pipelines.synthesize.handlers.llm import ChatLLMHandler
from pipelines.torch_env import on_accelerator
from pipelines import progress
from pipelines.checks import ArgumentParser, at_least, rebalance_summary, stats_manifest
from pipelines.outputs import iter_jsonl, join, read_json_or_none, read_jsonl, remove, write_json
from udfs.images import content_name, load_image, png_bytes
from udfs.model_files import local_model_dir
from udfs.rebalance import read_table

FAILED = "failed"
IMAGE_DIR = "adr-synthetic"


def parser() -> argparse.ArgumentParser:
    """The stage's flags; `adr run` offers the same ones."""
    ap = ArgumentParser(prog="adr synthesize", description=__doc__.splitlines()[0])
    ap.add_argument("--rebalanced", required=True, help="output directory of `adr rebalance`")
    ap.add_argument("--dictionary", required=True, help="output directory of `adr stats`")
    ap.add_argument("--output", required=True)
    ap.add_argument("--budget", type=at_least(int, 0), default=None, help="default: the rebalance summary's budget")
    ap.add_argument("--mix", default="visual=0.6,synonym=0.2,rewrite=0.2")
    ap.add_argument("--image-model", help="diffusers pipeline directory/URL/hub id (enables visual)")
    ap.add_argument("--image-variant", default="variation", choices=("variation", "controlnet", "img2img"))
    ap.add_argument("--caption-model", help="image-to-text model (needed by visual)")
    ap.add_argument("--llm", help="instruction LLM (needed by visual and rewrite)")
    ap.add_argument("--images-root", default=".", help="where the seed records' images are (any URL)")
    ap.add_argument("--synthetic-images", default=None,
                    help="where diffused images are written, as adr-synthetic/<digest>.png (default: OUT/images; "
                         "give your --image_folder to train with refined/ as it is)")
    ap.add_argument("--output-format", default="auto", choices=("auto", "llava-json", "jsonl", "parquet"),
                    help="refined/: one LLaVA JSON array (default when the input was one), JSON Lines or Parquet")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--steps", type=int, default=None, help="diffusion steps (default: the variant's published)")
    ap.add_argument("--guidance", type=float, default=None)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--strength", type=float, default=0.75, help="img2img strength")
    ap.add_argument("--candidates", type=at_least(int, 1), default=2, help="image variations per seed, closest kept")
    ap.add_argument("--max-new-tokens", type=int, default=512, help="LLM reply length")
    ap.add_argument("--caption-max-new-tokens", type=int, default=128)
    ap.add_argument("--batch-size", type=at_least(int, 1), default=4, help="largest model batch")
    ap.add_argument("--batched-inference", action="store_true",
                    help="one model call per batch (GPU throughput); the default calls the model per element, "
                         "so a seed's output never depends on what Beam batched it with")
    ap.add_argument("--overdraw", type=float, default=1.2, help="seeds drawn per needed record in a round")
    ap.add_argument("--accelerator", default=None,
                    help="Beam resource hint for the model steps only, e.g. "
                         "'type:nvidia-l4;count:1;install-nvidia-driver' (Dataflow GPU workers)")
    return ap


def parse_args(argv=None):
    args, beam_args = parser().parse_known_args(argv)
    parse_mix(args.mix)  # a malformed --mix fails here, in one line
    visual = {"--image-model": args.image_model, "--caption-model": args.caption_model, "--llm": args.llm}
    if args.image_model or args.caption_model:
        missing = [flag for flag, value in visual.items() if not value]
        if missing:
            raise ConfigError(f"visual synthesis needs --image-model, --caption-model and --llm: "
                              f"{' and '.join(missing)} missing")
    return args, beam_args


class Plan:
    """What the workers need, resolved once by the driver."""

    def __init__(self, args):
        self.args = args
        summary = rebalance_summary(args.rebalanced)
        manifest = stats_manifest(args.dictionary)
        self.budget = summary["budget"] if args.budget is None else args.budget
        self.input = summary["input"]
        self.kept = summary["kept"]
        self.tau_token = manifest["perspectives"].get("token", {}).get("tau", 0)
        nlp = manifest["parameters"].get("nlp", "default")
        self.nlp = None if nlp == "default" else nlp
        for flag in ("image_model", "caption_model", "llm"):
            if getattr(args, flag):
                local_model_dir(getattr(args, flag))  # a missing model is a one-line error, now
        self.enabled = enabled = {"synonym": "token" in manifest["perspectives"],
                   "visual": bool(args.image_model and args.caption_model and args.llm),
                   "rewrite": bool(args.llm)}
        self.skipped = {m: why for m, why in (
            ("visual", "needs --image-model, --caption-model and --llm"), ("rewrite", "needs --llm"),
            ("synonym", "needs the token perspective in the dictionary")) if not enabled[m]}
        # Disabled methods' shares go to the enabled ones; synonym replacement, which needs no
        # model, takes the whole budget when no enabled method has a share.
        self.mix = parse_mix(args.mix)
        shares = {m: share if enabled[m] else 0.0 for m, share in self.mix.items()}
        if not any(shares.values()) and enabled["synonym"]:
            shares["synonym"] = 1.0
        self.plan = plan_budget(self.budget, parse_mix(shares)) if any(shares.values()) else dict.fromkeys(METHODS, 0)
        self.images = args.synthetic_images or join(args.output, "images")
        self.output_format = (args.output_format if args.output_format != "auto" else
                              "llava-json" if summary.get("input_format") == "json-array" else "jsonl")
        self.models = {k: v for k, v in (("image", args.image_model), ("caption", args.caption_model),
                                          ("llm", args.llm)) if v}


def token_counts(stats_dir: str) -> dict[str, int]:
    import pyarrow.compute as pc

    table = read_table(join(stats_dir, "dictionary"), ["perspective", "entity", "count"])
    table = table.filter(pc.equal(table["perspective"], "token"))
    return dict(zip(table["entity"].to_pylist(), table["count"].to_pylist()))


def with_nouns(items: list, nlp: str | None) -> list:
    """(seed item, its noun lemmas) for a batch of seeds. The driver looked them up in the
    statistics' entities/ by key (`nouns`); a seed it did not find is tagged here, a batch at a
    time, by the same udf and spaCy pipeline as the statistics."""
    import pyarrow as pa

    from udfs.entities import extract_entities

    todo = [(rank, row) for rank, row in items if row.get("nouns") is None]
    tagged = {}
    if todo:
        batch = pa.RecordBatch.from_pylist([{"key": row["key"], "record": json.dumps(row["record"])} for _, row in todo],
                                           schema=pa.schema([("key", pa.string()), ("record", pa.string())]))
        tagged = dict(zip((row["key"] for _, row in todo), extract_entities(batch, ("token",), nlp).column("token").to_pylist()))
    return [((rank, row), row["nouns"] if row.get("nouns") is not None else tagged[row["key"]]) for rank, row in items]


# ---- per-seed steps (Beam functions) -------------------------------------------------------

def synonym_record(item_nouns, counts: dict, tau: int, seed: int):
    (rank, row), nouns = item_nouns
    from udfs.wordnet import dominant_sense

    record = row["record"]
    turns = record["conversations"]
    chosen = choose_replacements(turns, nouns, lambda n: safe_synonyms(n, dominant_sense, counts, tau))
    if not chosen:
        free = replaceable_nouns(turns, nouns)
        yield beam.pvalue.TaggedOutput(FAILED, failure(
            "synonym", rank, row, "no-safe-synonym",
            f"{len(set(nouns))} nouns, {len(free)} outside protected text, none with a safe tail synonym"))
        return
    yield rank, {"id": synthetic_id("synonym", row["key"], seed), "image": record.get("image"),
                 "conversations": replace_in_conversation(turns, chosen),
                 "adr": provenance("synonym", row["key"], row["id"], row["tail_entities"], {"wordnet": "3.0"},
                                   {"replacements": [r.to_dict() for r in chosen]})}


def rewrite_messages_for(item_nouns, counts: dict, tau: int):
    """The rewrite prompt offers the same safe synonyms the synonym method would use."""
    (rank, row), nouns = item_nouns
    from udfs.wordnet import dominant_sense

    turns = row["record"]["conversations"]
    chosen = choose_replacements(turns, nouns, lambda n: safe_synonyms(n, dominant_sense, counts, tau))
    words = sorted({r.synonym for r in chosen})
    info = {"tail": row["tail_entities"], "seed_id": row["id"], "image": row["record"].get("image"), "words": words,
            "seed_turns": turns}
    return (rank, row["key"], json.dumps(info)), rewrite_messages(turns, words)


def load_seed_image(item, images_root: str):
    rank, row = item
    try:
        image = load_image(images_root, row["image"])
    except InputError as err:
        yield beam.pvalue.TaggedOutput(FAILED, failure("visual", rank, row, "bad-image", str(err)))
        return
    prompt = "a photo of " + ", ".join(sorted({e for es in row["tail_entities"].values() for e in es})[:8])
    yield (rank, row["key"], json.dumps({"tail": row["tail_entities"], "seed_id": row["id"]})), \
        SeedImage(row["key"], image, prompt)


def save_image(keyed, images: str):
    key, result = keyed
    data = png_bytes(result.inference)
    name = content_name(data)
    fs, root = fsspec.core.url_to_fs(join(images, IMAGE_DIR))
    fs.makedirs(root, exist_ok=True)
    with fs.open(f"{root}/{name}", "wb") as f:
        f.write(data)
    rank, seed_key, extra = key
    return (rank, seed_key, json.dumps({**json.loads(extra), "image": f"{IMAGE_DIR}/{name}"})), result.inference


def to_conversation_request(keyed):
    (rank, seed_key, extra), result = keyed
    return (rank, seed_key, json.dumps({**json.loads(extra), "caption": result.inference})), \
        conversation_messages(result.inference)


def parsed_record(keyed, method: str, plan_models: dict, params: dict, seed: int):
    """An LLM reply -> a synthetic record, or a failure. The key carries what the record needs:
    (seed rank, seed key, JSON with the seed's id and tail entities, the image and step outputs)."""
    (rank, seed_key, extra), result = keyed
    info = json.loads(extra)
    image = info.pop("image", None)
    tail = info.pop("tail")
    seed_id = info.pop("seed_id")
    seed_turns = info.pop("seed_turns", None)
    turns = parse_conversation(result.inference, with_image=bool(image))
    if turns is None:
        yield beam.pvalue.TaggedOutput(FAILED, failure(method, rank, {"key": seed_key, "id": seed_id}, "unparseable-reply",
                                                       result.inference[:2000]))
        return
    changed = keeps_short_answers(seed_turns, turns) if seed_turns is not None else None
    if changed:  # a rewrite that changes a fact about the image is not a variant of its seed
        yield beam.pvalue.TaggedOutput(FAILED, failure(method, rank, {"key": seed_key, "id": seed_id},
                                                       "changed-short-answer", changed))
        return
    yield rank, {"id": synthetic_id(method, seed_key, seed), "image": image, "conversations": turns,
                 "adr": provenance(method, seed_key, seed_id, tail, plan_models, {**params, **info})}


def seed_item(line: str) -> tuple[int, dict]:
    item = json.loads(line)
    return item["rank"], item["row"]


def failure(method: str, rank: int, row: dict, reason: str, detail: str = "") -> str:
    return json.dumps({"method": method, "rank": rank, "seed_key": row["key"], "seed_id": row["id"],
                       "reason": reason, "detail": detail})


# ---- one round ---------------------------------------------------------------------------

def run_round(plan: Plan, assignments: dict[str, list], round_dir: str, beam_args, counts):
    """One Beam pipeline over the round's seeds, which write_round_seeds put in round_dir/seeds/."""
    args = plan.args
    options = PipelineOptions(beam_args)
    llm = ChatLLMHandler(args.llm, device=args.device, max_new_tokens=args.max_new_tokens,
                         max_batch_size=args.batch_size, batch_invariant=not args.batched_inference,
                         seed=args.seed) if args.llm else None
    params = {"seed": args.seed}

    def seeds(p, method):
        return (p | f"Read{method.title()}Seeds" >> beam.io.ReadFromText(join(round_dir, "seeds", f"{method}.jsonl"))
                | f"Parse{method.title()}Seeds" >> beam.Map(seed_item))

    with beam.Pipeline(options=options) as p:
        results, failures = [], []
        if assignments.get("synonym"):
            out = (seeds(p, "synonym")
                   | "BatchSynonymSeeds" >> beam.BatchElements(min_batch_size=8, max_batch_size=256)
                   | "TagSynonymSeeds" >> beam.FlatMap(with_nouns, plan.nlp)
                   | "Synonyms" >> beam.FlatMap(synonym_record, counts, plan.tau_token, args.seed).with_outputs(
                       FAILED, main="records"))
            results.append(out.records | "SynonymOut" >> beam.Map(lambda r: ("synonym", r)))
            failures.append(out[FAILED])
        if assignments.get("rewrite"):
            replies = (seeds(p, "rewrite")
                       | "BatchRewriteSeeds" >> beam.BatchElements(min_batch_size=8, max_batch_size=256)
                       | "TagRewriteSeeds" >> beam.FlatMap(with_nouns, plan.nlp)
                       | "RewritePrompt" >> beam.Map(rewrite_messages_for, counts, plan.tau_token)
                       | "Rewrite" >> on_accelerator(RunInference(KeyedModelHandler(llm)), args.accelerator))
            out = replies | "ParseRewrite" >> beam.FlatMap(
                parsed_record, "rewrite", {"llm": args.llm}, params, args.seed).with_outputs(
                FAILED, main="records")
            results.append(out.records | "RewriteOut" >> beam.Map(lambda r: ("rewrite", r)))
            failures.append(out[FAILED])
        if assignments.get("visual"):
            diffusion = DiffusionHandler(args.image_model, variant=args.image_variant, device=args.device,
                                         steps=args.steps, guidance=args.guidance, size=args.size,
                                         strength=args.strength, candidates=args.candidates, seed=args.seed,
                                         max_batch_size=args.batch_size, batch_invariant=not args.batched_inference)
            captioner = CaptionHandler(args.caption_model, device=args.device, max_batch_size=args.batch_size,
                                       batch_invariant=not args.batched_inference,
                                       max_new_tokens=args.caption_max_new_tokens)
            loaded = (seeds(p, "visual")
                      | "LoadImages" >> beam.FlatMap(load_seed_image, args.images_root).with_outputs(
                          FAILED, main="images"))
            failures.append(loaded[FAILED])
            replies = (loaded.images
                       | "Diffuse" >> on_accelerator(RunInference(KeyedModelHandler(diffusion)), args.accelerator)
                       | "SaveImages" >> beam.Map(save_image, plan.images)
                       | "Caption" >> on_accelerator(RunInference(KeyedModelHandler(captioner)), args.accelerator)
                       | "ConversationPrompt" >> beam.Map(to_conversation_request)
                       | "Converse" >> on_accelerator(RunInference(KeyedModelHandler(llm)), args.accelerator))
            visual_params = {**params, "variant": args.image_variant, "steps": diffusion._steps,
                             "guidance": diffusion._guidance, "size": args.size}
            out = replies | "ParseConversation" >> beam.FlatMap(
                parsed_record, "visual", plan.models, visual_params, args.seed).with_outputs(
                FAILED, main="records")
            results.append(out.records | "VisualOut" >> beam.Map(lambda r: ("visual", r)))
            failures.append(out[FAILED])
        if results:
            (results | "AllRecords" >> beam.Flatten()
             | "Progress" >> beam.Map(lambda mr: progress.advance(1) or mr)
             | "Line" >> beam.Map(lambda mr: json.dumps({"method": mr[0], "rank": mr[1][0], "record": mr[1][1]},
                                                         ensure_ascii=False))
             | "WriteCandidates" >> beam.io.WriteToText(join(round_dir, "candidates"), file_name_suffix=".jsonl"))
        if failures:
            (failures | "AllFailures" >> beam.Flatten()
             | "WriteFailures" >> beam.io.WriteToText(join(round_dir, "failed"), file_name_suffix=".jsonl"))


def round_key(args, assignments: dict[str, list]) -> str:
    """What a round's outputs depend on: its seeds and every option but the directories (a run
    directory that was moved or copied still resumes; its seeds carry what came from them)."""
    options = {k: v for k, v in sorted(vars(args).items()) if k not in ("output", "rebalanced", "dictionary")}
    seeds = {m: [(rank, key) for rank, key in picked] for m, picked in sorted(assignments.items())}
    return hashlib.sha256(json.dumps([options, seeds], sort_keys=True, default=str).encode()).hexdigest()[:32]


def run(argv=None) -> dict:
    args, beam_args = parse_args(argv)
    plan = Plan(args)
    for method, why in plan.skipped.items():
        print(f"adr synthesize: {method} synthesis skipped ({why})", file=sys.stderr)
    seeds = join(args.rebalanced, "seeds", "*.jsonl")
    # The visual pool is the spec's: tail records whose image no other record uses. Language
    # methods need a tail in the text (a tail token), whatever the image. Only keys are held:
    # the pool grows with the corpus; a round reads the rows of its own seeds.
    visual_pool, text_pool = [], []
    for s in iter_jsonl(seeds):
        if s.get("image") and not s.get("image_shared"):
            visual_pool.append(s["key"])
        if s["tail_entities"].get("token"):
            text_pool.append(s["key"])
    pools = {"visual": seed_order(visual_pool, args.seed, "visual"),
             "synonym": seed_order(text_pool, args.seed, "synonym"),
             "rewrite": seed_order(text_pool, args.seed, "rewrite")}
    # Loaded whenever a language method may run: shortfalls can hand either of them records.
    counts = token_counts(args.dictionary) if plan.enabled["synonym"] or plan.enabled["rewrite"] else {}
    chosen: dict[str, list] = {m: [] for m in METHODS}
    failed: list[dict] = []
    cursor = {m: 0 for m in METHODS}
    target, reassigned = dict(plan.plan), []
    with progress.track("synthesize", total=plan.budget):
        round_no = reused = 0
        while True:
            # A method with no seeds left hands what it still owes to the others, round after
            # round, so the budget is met while any method can still produce.
            made_so_far = {m: len(chosen[m]) for m in METHODS}
            open_methods = [m for m in METHODS if plan.enabled[m] and cursor[m] < len(pools[m])]
            target, moved = reassign_shortfall(target, made_so_far, open_methods, plan.mix)
            reassigned += [{"round": round_no, "from": m, "to": to, "records": sum(to.values())}
                           for m, to in moved.items()]
            need = {m: target[m] - len(chosen[m]) for m in METHODS}
            assignments = {}
            for m in METHODS:
                if need[m] > 0 and cursor[m] < len(pools[m]):
                    take = max(need[m], int(need[m] * args.overdraw + 0.999))
                    keys = pools[m][cursor[m]:cursor[m] + take]
                    assignments[m] = [(cursor[m] + i, key) for i, key in enumerate(keys)]
                    cursor[m] += len(keys)
            if not assignments:
                break
            round_dir = join(args.output, "rounds", f"{round_no:03d}")
            # A round an interrupted run finished, with the same options and seeds, is not run again.
            key = round_key(args, assignments)
            done = read_json_or_none(join(round_dir, "_done.json"))
            if done and done["key"] == key:
                reused += 1
                print(f"adr synthesize: round {round_no:03d} already done, reused", file=sys.stderr)
            else:
                remove(round_dir)  # a round cut short leaves shards that must not mix with the rerun's
                write_round_seeds(seeds, assignments, round_dir, args.dictionary)
                run_round(plan, assignments, round_dir, beam_args, counts)
                write_json(join(round_dir, "_done.json"), {"key": key})
            # Records are held as JSON text, not objects: the budget grows with the corpus.
            got: dict[str, list] = {m: [] for m in METHODS}
            for c in iter_jsonl(join(round_dir, "candidates*.jsonl")):
                got[c["method"]].append((c["rank"], json.dumps(c["record"], ensure_ascii=False)))
            failed += read_jsonl(join(round_dir, "failed*.jsonl"))
            for m in METHODS:
                chosen[m] += [text for _, text in sorted(got[m])[: max(0, need[m])]]
            del got
            progress.update(sum(len(c) for c in chosen.values()))
            round_no += 1

    synthetic_path = join(args.output, "synthetic", "part-00000.jsonl")
    synonym_sources = {"tail": 0, "unseen": 0}  # where the synonyms came from (spec: tail tokens first)
    with fsspec.open(synthetic_path, "w", encoding="utf-8", auto_mkdir=True) as f:
        for m in METHODS:
            for text in chosen[m]:
                record = json.loads(text)
                if record.get("image") is None:
                    record.pop("image", None)
                for r in record["adr"]["parameters"].get("replacements", []) if m == "synonym" else []:
                    synonym_sources[r["source"]] += 1
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
    n_synthetic = sum(len(c) for c in chosen.values())
    write_jsonl(join(args.output, "failed", "part-00000.jsonl"), failed)
    refined = write_refined(args.rebalanced, args.output, synthetic_path, plan.output_format)
    made = {m: len(chosen[m]) for m in METHODS}
    chosen.clear()
    short = {m: {"planned": target[m], "made": made[m], "seeds_tried": cursor[m], "pool": len(pools[m])}
             for m in METHODS if made[m] < target[m]}
    summary = {
        "budget": plan.budget, "planned": plan.plan, "made": made, "synthetic": n_synthetic,
        "reassigned": reassigned, "final_targets": target, "synonym_sources": synonym_sources,
        "refined": plan.kept + n_synthetic, "input": plan.input,
        "budget_met": n_synthetic == plan.budget,
        "size_kept": plan.kept + n_synthetic == plan.input, "short": short, "skipped": plan.skipped,
        "failed_by_reason": _count(failed), "rounds": round_no, "rounds_reused": reused, "seed": args.seed, "models": plan.models,
        "seed_pools": {m: len(pools[m]) for m in METHODS},
        "refined_path": refined, "output_format": plan.output_format,
        "synthetic_images": args.synthetic_images,  # None: OUT/images, wherever OUT is moved
    }
    write_json(join(args.output, "summary.json"), summary)
    return summary


def _count(failed: list[dict]) -> dict:
    out: dict[str, int] = {}
    for f in failed:
        out[f["reason"]] = out.get(f["reason"], 0) + 1
    return dict(sorted(out.items()))


def write_jsonl(url: str, rows: list[dict]) -> None:
    with fsspec.open(url, "w", auto_mkdir=True) as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


REFINED_NAMES = {"llava-json": "refined.json", "jsonl": "refined.jsonl", "parquet": "refined.parquet"}


def write_refined(rebalanced: str, output: str, synthetic: str, fmt: str) -> str:
    """refined/ = the kept records, unchanged and in input order (kept/ file names sort so),
    then the synthetic ones; streamed, never held whole. Returns the file's path."""
    from pipelines.synthesize.refined_writers import WRITERS

    fs, kept = fsspec.core.url_to_fs(join(rebalanced, "kept"))
    remove(join(output, "refined"))
    path = join(output, "refined", REFINED_NAMES[fmt])

    def lines():
        for name in sorted(fs.glob(kept + "/*.jsonl")):
            with fs.open(name, "r", encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        yield line.rstrip("\n")
        with fsspec.open(synthetic, "r", encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    yield line.rstrip("\n")

    WRITERS[fmt](path, lines())
    return path


def write_round_seeds(pattern: str, assignments: dict[str, list], round_dir: str, stats_dir: str) -> None:
    """round_dir/seeds/<method>.jsonl: the rows of the round's seeds (rank, key) with their noun
    lemmas, streamed from the seed files in one pass. Seeds travel as files, not inside the
    pipeline graph (runners cap its size), and are never all held: the pool grows with the corpus."""
    import contextlib

    wanted: dict[str, list] = {}
    for m, picked in assignments.items():
        for rank, key in picked:
            wanted.setdefault(key, []).append((m, rank))
    nouns = stats_nouns(stats_dir, {key for m in ("synonym", "rewrite") for _, key in assignments.get(m, [])})
    with contextlib.ExitStack() as stack:
        out = {m: stack.enter_context(fsspec.open(join(round_dir, "seeds", f"{m}.jsonl"), "w", encoding="utf-8",
                                                  auto_mkdir=True)) for m in assignments}
        for row in iter_jsonl(pattern):
            for m, rank in wanted.get(row["key"], ()):
                row["nouns"] = nouns.get(row["key"]) if m in ("synonym", "rewrite") else None
                out[m].write(json.dumps({"rank": rank, "row": row}, ensure_ascii=False) + "\n")


def stats_nouns(stats_dir: str, keys: set[str]) -> dict[str, list]:
    """key -> noun lemmas, from the statistics' entities/: the same tagger's output, read instead
    of computed again (a seed not found there is tagged in the round)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    if not keys:
        return {}
    fs, path = fsspec.core.url_to_fs(join(stats_dir, "entities"))
    table = ds.dataset(path, filesystem=fs, format="parquet").to_table(
        columns=["key", "token"], filter=pc.field("key").isin(pa.array(sorted(keys), pa.string())))
    return dict(zip(table["key"].to_pylist(), table["token"].to_pylist()))


def describe(summary: dict) -> str:
    lines = [f"budget {summary['budget']}  synthetic {summary['synthetic']}  refined {summary['refined']} "
             f"(input {summary['input']})  " + ("budget met" if summary["budget_met"] else "BUDGET NOT MET")]
    lines += [f"{m:<8} planned {summary['planned'][m]:>6}  made {summary['made'][m]:>6}" for m in METHODS]
    for r in summary.get("reassigned", []):
        to = ", ".join(f"{n} to {m}" for m, n in r["to"].items())
        lines.append(f"{r['from']}: no seeds left with {r['records']} to make: {to}")
    lines.append(f"refined: {summary['refined_path']} ({summary['output_format']})")
    for m, s in summary["short"].items():
        lines.append(f"{m}: short by {s['planned'] - s['made']}: tried {s['seeds_tried']} of {s['pool']} seeds")
    if summary["failed_by_reason"]:
        lines.append("failed: " + ", ".join(f"{k} {v}" for k, v in summary["failed_by_reason"].items()))
    return "\n".join(lines)


def main(argv=None) -> int:
    print(describe(run(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
