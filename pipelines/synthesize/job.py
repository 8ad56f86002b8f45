"""ADR Data Synthesis on Apache Beam RunInference: refill the dropped budget with tail records.

    adr synthesize --rebalanced DIR --dictionary STATS_DIR --output OUT [--budget N]
                   [--mix visual=0.6,synonym=0.2,rewrite=0.2] [--image-model M --caption-model M]
                   [--llm M] [--images-root PATH_OR_URL] [--device auto|cpu|cuda] [--seed 42] [Beam options]

Methods: visual (diffusion image from the seed image -> caption -> LLM conversation), synonym
(a WordNet tail synonym of one of the record's nouns, in the sense the record shows), rewrite
(LLM rewrite offered those synonyms). The budget is planned per tail entity (offers: what each
seed can make, for which target, and the place of each offer in the plan, from the entities'
room under their ceilings). The engine counts each method's offers per bin of that order; the
driver runs rounds, each over the offers of the next run of bins (at least what a method still
needs, times --overdraw), selected by a filter inside the round's pipeline, until each method
has its share or its offers run out. The driver holds bin counts, never seeds, keys or records:
each method's final pick (its target's worth of candidates first in plan order) is cut by the
engine.

Outputs, each written by the engine in shards: OUT/synthetic/part-*.jsonl; OUT/refined/ (kept
records in input order, then synthetic: one LLaVA JSON array refined/refined.json joined from
fragments, or JSON Lines / Parquet part-* shards in that order); OUT/failed/part-*.jsonl;
OUT/entity_counts/part-*.parquet (perspective, entity, count of the synthetic records);
OUT/images/ (or --synthetic-images); OUT/plan/ (per entity: planned and made); OUT/rounds/NNN/
(a round's bin ranges, candidates, failures, counts: a rerun reuses finished rounds);
OUT/summary.json.

Modules: offers (the plan), steps (per-offer Beam functions), rounds (a round's pipeline and
its ceiling check), publish (the final pick and outputs), refined_writers (formats of refined/).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, WorkerOptions

from adr.entities.registry import CATCH_ALLS
from adr.errors import ConfigError
from adr.rewrite import piece_chars
from adr.synthesis import (
    METHODS,
    boundary,
    kept_per_bin,
    next_bins,
    parse_ceilings,
    parse_mix,
    plan_budget,
    reassign_shortfall,
    shard_of_cells,
)
from pipelines import progress
from pipelines.checks import at_least, rebalance_summary, stats_manifest
from pipelines.local_workers import with_local_workers
from pipelines.outputs import file_urls, join, read_json_or_none, remove, write_json
from pipelines.stage import Engine, Options, Stage, StageParser, frozen
from pipelines.synthesize.offers import PlanContext, offered
from pipelines.synthesize.publish import publish
from pipelines.synthesize.refined_writers import join_llava_json
from pipelines.synthesize.rounds import read_tallies, round_counts, run_round, write_tallies
from pipelines.synthesize.steps import FAILED
from udfs.artifacts import read_dictionary
from udfs.model_files import language_model_files, local_model_dir
from udfs.sources import total_bytes

REFINED_NAMES = {"llava-json": "refined.json"}  # one file; the other formats are part-* shards in refined/
SHARD_RECORDS = 100_000  # a shard is sorted in one worker's memory


def parser() -> StageParser:
    ap = StageParser(prog="adr synthesize", description=__doc__.splitlines()[0])
    ap.add_argument("--rebalanced", required=True, help="output directory of `adr rebalance`")
    ap.add_argument("--dictionary", required=True, help="output directory of `adr stats`")
    ap.add_argument("--output", required=True)
    ap.option("--budget", type=at_least(int, 0), default=None, help="default: the rebalance summary's budget")
    ap.option("--mix", default="visual=0.6,synonym=0.2,rewrite=0.2")
    ap.option("--image-model", model=True, help="diffusers pipeline directory/URL/hub id (enables visual)")
    ap.option("--image-variant", default="variation", choices=("variation", "controlnet", "img2img"))
    ap.option("--caption-model", model=True, help="image-to-text model (needed by visual)")
    ap.option("--llm", model=True, help="instruction LLM (needed by visual and rewrite)")
    ap.option("--images-root", default=".", help="where the seed records' images are (any URL)")
    ap.option("--synthetic-images", default=None,
                    help="where diffused images are written, as adr-synthetic/<digest>.png (default: OUT/images; "
                         "give your --image_folder to train with refined/ as it is)")
    ap.option("--output-format", default="auto", choices=("auto", "llava-json", "jsonl", "parquet"),
                    help="refined/: one LLaVA JSON array (default when the input was one), JSON Lines or Parquet")
    ap.option("--device", default="auto")
    ap.option("--seed", type=int, default=42)
    ap.option("--steps", type=int, default=None, help="diffusion steps (default: the variant's published)")
    ap.option("--guidance", type=float, default=None)
    ap.option("--size", type=int, default=512)
    ap.option("--strength", type=float, default=0.75, help="img2img strength")
    ap.option("--candidates", type=at_least(int, 1), default=2, help="image variations per seed, closest kept")
    ap.option("--max-new-tokens", type=int, default=512, help="LLM reply length")
    ap.option("--rewrite-alternatives", type=int, default=4,
                    help="replies the LLM writes per rewritten piece (the greedy one, then sampled ones): the "
                         "first that passes the checks is used")
    ap.option("--caption-max-new-tokens", type=int, default=128)
    ap.option("--batch-size", type=at_least(int, 1), default=4, help="largest model batch")
    ap.option("--batched-inference", action="store_true",
                    help="one model call per batch (GPU throughput); the default calls the model per element, "
                         "so a seed's output never depends on what Beam batched it with")
    ap.option("--overdraw", type=float, default=1.2, help="offers drawn per needed record in a round")
    ap.option("--min-tail-share", type=float, default=0.2,
                    help="a language record is made only if at least this share of the tokens it adds are tail")
    ap.option("--ceiling", default=None,
                    help="the count synthesis may lift a tail entity to: a multiple of tau (1.5), or "
                         "perspective=count,... (token=2000); default: each perspective's tau")
    ap.option("--accelerator", default=None,
                    help="Beam resource hint for the model steps only, e.g. "
                         "'type:nvidia-l4;count:1;install-nvidia-driver' (Dataflow GPU workers)")
    return ap


def configure(argv: list[str]) -> tuple[Options, list[str]]:
    args, beam_args = parser().parse_known_args(argv)
    parse_mix(args.mix)  # a malformed --mix fails here, in one line
    if args.ceiling:
        parse_ceilings(args.ceiling, {"token": 1})  # its form fails here; the perspectives once the dictionary is read
    if args.rewrite_alternatives < 1:
        raise ConfigError(f"--rewrite-alternatives must be at least 1, got {args.rewrite_alternatives}")
    if not 0.0 <= args.min_tail_share <= 1.0:
        raise ConfigError(f"--min-tail-share must be a number in [0, 1], got {args.min_tail_share}")
    visual = {"--image-model": args.image_model, "--caption-model": args.caption_model, "--llm": args.llm}
    if args.image_model or args.caption_model:
        missing = [flag for flag, value in visual.items() if not value]
        if missing:
            raise ConfigError(f"visual synthesis needs --image-model, --caption-model and --llm: "
                              f"{' and '.join(missing)} missing")
    return frozen(args), beam_args


@dataclass(frozen=True)
class Plan:
    """What the workers need, resolved once by the driver (make_plan)."""

    args: Options
    budget: int
    input: int
    kept: int
    perspectives: tuple[str, ...]
    taus: dict[str, int]
    ceilings: dict
    seeds: str                 # the seed files' glob
    work: str                  # scratch under --output
    nlp: str | None
    enabled: dict[str, bool]
    skipped: dict[str, str]    # method -> why it is off
    mix: dict[str, float]
    plan: dict[str, int]       # records per method
    images: str
    output_format: str
    models: dict[str, str]
    context: PlanContext


def make_plan(args: Options) -> Plan:
    """The plan from the rebalance summary, the dictionary and the options; a missing model is a
    one-line error here, before any engine starts."""
    summary = rebalance_summary(args.rebalanced)
    manifest = stats_manifest(args.dictionary)
    perspectives = tuple(manifest["perspectives"])
    taus = {p: manifest["perspectives"][p]["tau"] for p in perspectives}
    ceilings = parse_ceilings(args.ceiling, taus)
    nlp = manifest["parameters"].get("nlp", "default")
    for flag in ("image_model", "caption_model"):
        if getattr(args, flag):
            local_model_dir(getattr(args, flag))
    if args.llm:
        language_model_files(args.llm)
    enabled = {"synonym": "token" in manifest["perspectives"],
               "visual": bool(args.image_model and args.caption_model and args.llm),
               "rewrite": bool(args.llm)}
    skipped = {m: why for m, why in (
        ("visual", "needs --image-model, --caption-model and --llm"), ("rewrite", "needs --llm"),
        ("synonym", "needs the token perspective in the dictionary")) if not enabled[m]}
    # Disabled methods' shares go to the enabled ones; synonym replacement, which needs no
    # model, takes the whole budget when no enabled method has a share.
    mix = parse_mix(args.mix)
    shares = {m: share if enabled[m] else 0.0 for m, share in mix.items()}
    if not any(shares.values()) and enabled["synonym"]:
        shares["synonym"] = 1.0
    budget = summary["budget"] if args.budget is None else args.budget
    return Plan(
        args=args, budget=budget, input=summary["input"], kept=summary["kept"], perspectives=perspectives,
        taus=taus, ceilings=ceilings, seeds=join(args.rebalanced, "seeds", "*.jsonl"),
        work=join(args.output, "_work"), nlp=None if nlp == "default" else nlp, enabled=enabled, skipped=skipped,
        mix=mix, plan=plan_budget(budget, parse_mix(shares)) if any(shares.values()) else dict.fromkeys(METHODS, 0),
        images=args.synthetic_images or join(args.output, "images"),
        output_format=(args.output_format if args.output_format != "auto" else
                       "llava-json" if summary.get("input_format") == "json-array" else "jsonl"),
        models={k: v for k, v in (("image", args.image_model), ("caption", args.caption_model), ("llm", args.llm))
                if v},
        context=PlanContext(args.seed, tuple(m for m in METHODS if enabled[m]), taus, ceilings,
                            read_dictionary(args.dictionary, perspectives, "count"), args.min_tail_share,
                            piece_chars(args.max_new_tokens)))


def offer_histograms(plan: Plan, beam_args) -> dict[str, dict[int, int]]:
    """{method: {bin of order: offers}}: the offers made by the engine over the seed files."""
    remove(plan.work)
    with beam.Pipeline(options=PipelineOptions(beam_args)) as p:
        write_tallies([offered(p, plan.seeds, plan.context, plan.nlp, plan.work)], join(plan.work, "bins"))
    hist: dict[str, dict[int, int]] = {m: {} for m in METHODS}
    for (m, b), n in read_tallies(join(plan.work, "bins")):
        hist[m][b] = n
    return hist


def round_key(args, ranges: dict[str, tuple[int, int]], pools: dict) -> str:
    """What a round's outputs depend on: every option but the directories (a run directory that
    was moved or copied still resumes), its bin ranges, and the pools (the seeds it draws from)."""
    options = {k: v for k, v in sorted(vars(args).items()) if k not in ("output", "rebalanced", "dictionary")}
    pools = {m: sorted(h.items()) for m, h in sorted(pools.items())}
    return hashlib.sha256(json.dumps([options, sorted(ranges.items()), pools], sort_keys=True,
                                     default=str).encode()).hexdigest()[:32]


def shard_count(beam_args, records: int) -> int:
    """Output shards: one per worker the runner was given, more when a shard would be large."""
    options = PipelineOptions(beam_args)
    direct = options.view_as(DirectOptions).direct_num_workers
    workers = max(direct if direct > 0 else os.cpu_count() or 1,
                  options.view_as(WorkerOptions).max_num_workers or 0, options.view_as(WorkerOptions).num_workers or 0)
    return max(1, min(records, max(workers, math.ceil(records / SHARD_RECORDS))))


@dataclass
class Rounds:
    """What the rounds made: per method its final target, tries and candidates per bin of the plan's order."""

    target: dict[str, int]
    tried: dict[str, int]
    made_bins: dict[str, dict[int, int]]
    failed_by_reason: dict[str, int]
    reassigned: list[dict]
    round_dirs: list[str]
    count: int = 0
    reused: int = 0

    def made(self) -> dict[str, int]:
        return {m: min(self.target[m], sum(self.made_bins[m].values())) for m in METHODS}


def run_rounds(plan: Plan, pools: dict[str, dict[int, int]], round_args: list[str]) -> Rounds:
    """Rounds until each method has its share or its offers run out; a round an interrupted run
    finished with the same key is reused."""
    args = plan.args
    start = {m: 0 for m in METHODS}                 # the next bin each method draws from
    tried = {m: 0 for m in METHODS}
    made_bins: dict[str, dict[int, int]] = {m: {} for m in METHODS}  # candidates per bin of u
    failed_by_reason: dict[str, int] = {}
    target, reassigned, round_dirs = dict(plan.plan), [], []

    def made() -> dict[str, int]:
        return {m: min(target[m], sum(made_bins[m].values())) for m in METHODS}

    with progress.track("synthesize", total=plan.budget):
        round_no = reused = 0
        while True:
            # A method with no seeds left hands what it still owes to the others, round after
            # round, so the budget is met while any method can still produce.
            left = {m: sum(n for b, n in pools[m].items() if b >= start[m]) for m in METHODS}
            open_methods = [m for m in METHODS if plan.enabled[m] and left[m]]
            target, moved = reassign_shortfall(target, made(), open_methods, plan.mix)
            reassigned += [{"round": round_no, "from": m, "to": to, "records": sum(to.values())}
                           for m, to in moved.items()]
            need = {m: target[m] - made()[m] for m in METHODS}
            # Offers drawn for what a method still needs, divided by the share of its tries that
            # became records so far: a model whose replies are mostly refused (a small LLM) gets
            # as many seeds as it needs in one round, not a round per few records.
            drawn = {m: math.ceil(need[m] * args.overdraw / share_made(made_bins[m], tried[m])) for m in METHODS}
            ranges = {m: (start[m], next_bins(pools[m], start[m], max(need[m], drawn[m])))
                      for m in METHODS if need[m] > 0 and left[m]}
            if not ranges:
                break
            round_dir = join(args.output, "rounds", f"{round_no:03d}")
            # A round an interrupted run finished, with the same options and ranges, is not run again.
            key = round_key(args, ranges, pools)
            done = read_json_or_none(join(round_dir, "_done.json"))
            if done and done["key"] == key:
                reused += 1
                print(f"adr synthesize: round {round_no:03d} already done, reused", file=sys.stderr)
                got = done["counts"]
            else:
                remove(round_dir)  # a round cut short leaves shards that must not mix with the rerun's
                run_round(plan, ranges, round_dir, round_args, [join(d, "accepted*.jsonl") for d in round_dirs])
                got = round_counts(round_dir)
                write_json(join(round_dir, "_done.json"), {"key": key, "ranges": ranges, "counts": got})
            for m, (_, end) in ranges.items():
                start[m] = end
                tried[m] += got["tried"].get(m, 0)
                for b, n in got["made"].get(m, {}).items():
                    made_bins[m][int(b)] = made_bins[m].get(int(b), 0) + n
            for reason, n in got["failed"].items():
                failed_by_reason[reason] = failed_by_reason.get(reason, 0) + n
            round_dirs.append(round_dir)
            progress.update(sum(made().values()))
            round_no += 1
    return Rounds(target, tried, made_bins, failed_by_reason, reassigned, round_dirs, round_no, reused)


def run(args: Options, engine: Engine = Engine()) -> dict:
    beam_args = list(engine.beam_args)
    plan = make_plan(args)
    # The passes over every seed and every kept record use each core; a round with models runs
    # its models where the user said (one model per process).
    local = with_local_workers(beam_args, total_bytes(file_urls(join(args.rebalanced, "seeds"), ".jsonl")))
    round_args = beam_args if plan.models else local
    for method, why in plan.skipped.items():
        print(f"adr synthesize: {method} synthesis skipped ({why})", file=sys.stderr)
    pools = offer_histograms(plan, local)
    pool_size = {m: sum(pools[m].values()) for m in METHODS}
    done = run_rounds(plan, pools, round_args)
    target, tried, made_bins, round_dirs = done.target, done.tried, done.made_bins, done.round_dirs
    made_now = done.made()
    n_synthetic = sum(made_now.values())
    # The cut: per method, its made_now[m] candidates of smallest u, found from the bin counts
    # and, in the one boundary bin, by the engine.
    limits = {m: boundary(made_bins[m], made_now[m]) for m in METHODS}
    cells = [((m, b), n) for m in METHODS for b, n in sorted(kept_per_bin(made_bins[m], made_now[m]).items())]
    shards = shard_count(beam_args, n_synthetic)
    for folder in ("synthetic", "refined", FAILED, "entity_counts", "plan", "_tallies"):
        remove(join(args.output, folder))
    kept = file_urls(join(args.rebalanced, "kept"), ".jsonl")
    publish(plan, local, round_dirs, limits, shard_of_cells(cells, shards), shards, kept)
    remove(plan.work)
    tallies = {tuple(k): n for k, n in read_tallies(join(args.output, "_tallies", "publish"))}
    remove(join(args.output, "_tallies"))
    refined = join(args.output, "refined")
    if plan.output_format == "llava-json":
        fragments = file_urls(join(refined, "_fragments"), ".json")
        join_llava_json(fragments, join(refined, REFINED_NAMES["llava-json"]))
        remove(join(refined, "_fragments"))
        refined = join(refined, REFINED_NAMES["llava-json"])
    written = tallies.get(("records",), 0)
    if written != n_synthetic:
        raise RuntimeError(f"adr synthesize: {written} synthetic records written, {n_synthetic} picked")
    short = {m: {"planned": target[m], "made": made_now[m], "seeds_tried": tried[m], "pool": pool_size[m]}
             for m in METHODS if made_now[m] < target[m]}
    summary = {
        "budget": plan.budget, "planned": plan.plan, "made": made_now, "synthetic": n_synthetic,
        "reassigned": done.reassigned, "final_targets": target,
        "synonym_sources": {s: tallies.get(("source", s), 0) for s in ("tail", "unseen")},
        "refined": plan.kept + n_synthetic, "input": plan.input,
        "budget_met": n_synthetic == plan.budget,
        "size_kept": plan.kept + n_synthetic == plan.input, "short": short, "skipped": plan.skipped,
        "failed_by_reason": dict(sorted(done.failed_by_reason.items())), "rounds": done.count,
        "rounds_reused": done.reused, "offers_tried": sum(tried.values()),
        "offers_failed": sum(done.failed_by_reason.values()),
        "offers_tried_by_method": tried,
        "ceilings": plan.ceilings, "catch_alls": {p: sorted(e) for p, e in CATCH_ALLS.items()},
        "planned_entities": tallies.get(("planned_entities",), 0), "met_entities": tallies.get(("met_entities",), 0),
        "seed": args.seed, "models": plan.models, "seed_pools": pool_size,
        "refined_path": refined, "output_format": plan.output_format, "shards": shards,
        "entity_counts_records": tallies.get(("counted",), 0),
        "synthetic_images": args.synthetic_images,  # None: OUT/images, wherever OUT is moved
    }
    write_json(join(args.output, "summary.json"), summary)
    return summary


# The least share of tries assumed to become records: bounds one round's draw at 20 times
# what a method still needs.
MIN_SHARE_MADE = 0.05


def share_made(made_bins: dict[int, int], tried: int) -> float:
    """The share of a method's tries so far that became candidates (1 before any try)."""
    if not tried:
        return 1.0
    return min(1.0, max(MIN_SHARE_MADE, sum(made_bins.values()) / tried))


def describe(summary: dict, args: Options | None = None) -> str:
    lines = [f"budget {summary['budget']}  synthetic {summary['synthetic']}  refined {summary['refined']} "
             f"(input {summary['input']})  " + ("budget met" if summary["budget_met"] else "BUDGET NOT MET")]
    lines += [f"{m:<8} planned {summary['planned'][m]:>6}  made {summary['made'][m]:>6}" for m in METHODS]
    for r in summary.get("reassigned", []):
        to = ", ".join(f"{n} to {m}" for m, n in r["to"].items())
        lines.append(f"{r['from']}: no seeds left with {r['records']} to make: {to}")
    lines.append(f"refined: {summary['refined_path']} ({summary['output_format']})")
    for m, s in summary["short"].items():
        lines.append(f"{m}: short by {s['planned'] - s['made']}: tried {s['seeds_tried']} of its {s['pool']} offers, "
                     f"all the seeds could make without taking a tail entity past its ceiling or a noun out of "
                     f"its sense (--ceiling and --min-tail-share trade balance for volume)")
    if summary["failed_by_reason"]:
        lines.append("failed: " + ", ".join(f"{k} {v}" for k, v in summary["failed_by_reason"].items()))
    return "\n".join(lines)


def wiring(records: list[str], run_dir: str) -> list[str]:
    return ["--rebalanced", join(run_dir, "rebalance"), "--dictionary", join(run_dir, "stats"),
            "--output", join(run_dir, "synthesize")]


STAGE = Stage("synthesize", "refill the dropped budget with tail-centred records (Beam RunInference)", parser,
              configure, run, describe, wiring, beam=True, resumable=True)
