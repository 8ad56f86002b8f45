"""One synthesis round as a Beam pipeline, and the counts it leaves for the driver.

A round reads the seed files, keeps the seeds whose draw falls in each method's bin range, and
runs them through their method's steps. It writes its candidates and failures as shards under
rounds/NNN/, and tallies/: seeds tried per method, candidates per method and bin of u, failures
per reason. The driver plans the next round from those counts alone.
"""

from __future__ import annotations

import json

import apache_beam as beam
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from adr.synthesis import bin_of
from pipelines import progress
from pipelines.outputs import iter_jsonl, join
from pipelines.synthesize.handlers.captioning import CaptionHandler
from pipelines.synthesize.handlers.diffusion import DiffusionHandler
from pipelines.synthesize.handlers.llm import ChatLLMHandler
from pipelines.synthesize.seeds import TEXT_METHODS, join_stats_nouns, select_seeds
from pipelines.synthesize.steps import (FAILED, candidate_line, load_seed_image, parsed_record, rewrite_prompt,
                                        save_image, synonym_record, to_conversation_request, with_nouns)
from pipelines.torch_env import on_accelerator


def _is(method: str):
    return lambda seed: seed.method == method


def run_round(plan, ranges: dict[str, tuple[int, int]], round_dir: str, beam_args, counts: dict,
              stats_files: list[str]) -> None:
    args = plan.args
    options = PipelineOptions(beam_args)
    llm = ChatLLMHandler(args.llm, device=args.device, max_new_tokens=args.max_new_tokens,
                         max_batch_size=args.batch_size, batch_invariant=not args.batched_inference,
                         seed=args.seed) if args.llm else None
    params = {"seed": args.seed}

    with beam.Pipeline(options=options) as p:
        drawn = select_seeds(p, plan.seeds, ranges, args.seed)
        results, failures = [], []
        tallies = [drawn[m] | f"Tried{m.title()}" >> beam.Map(lambda s: (("tried", s.method), 1)) for m in ranges]
        text = [drawn[m] for m in TEXT_METHODS if m in ranges]
        if text:
            seeds = (text | "TextSeeds" >> beam.Flatten())
            seeds = (join_stats_nouns(p, seeds, stats_files, ranges, args.seed)
                     | "BatchTextSeeds" >> beam.BatchElements(min_batch_size=8, max_batch_size=256)
                     | "TagTextSeeds" >> beam.FlatMap(with_nouns, plan.nlp))
        if "synonym" in ranges:
            out = (seeds | "SynonymSeeds" >> beam.Filter(_is("synonym"))
                   | "Synonyms" >> beam.FlatMap(synonym_record, counts, plan.tau_token, args.seed).with_outputs(
                       FAILED, main="records"))
            results.append(out.records)
            failures.append(out[FAILED])
        if "rewrite" in ranges:
            replies = (seeds | "RewriteSeeds" >> beam.Filter(_is("rewrite"))
                       | "RewritePrompt" >> beam.Map(rewrite_prompt, counts, plan.tau_token)
                       | "Rewrite" >> on_accelerator(RunInference(KeyedModelHandler(llm)), args.accelerator))
            out = replies | "ParseRewrite" >> beam.FlatMap(
                parsed_record, "rewrite", {"llm": args.llm}, params, args.seed).with_outputs(FAILED, main="records")
            results.append(out.records)
            failures.append(out[FAILED])
        if "visual" in ranges:
            diffusion = DiffusionHandler(args.image_model, variant=args.image_variant, device=args.device,
                                         steps=args.steps, guidance=args.guidance, size=args.size,
                                         strength=args.strength, candidates=args.candidates, seed=args.seed,
                                         max_batch_size=args.batch_size, batch_invariant=not args.batched_inference)
            captioner = CaptionHandler(args.caption_model, device=args.device, max_batch_size=args.batch_size,
                                       batch_invariant=not args.batched_inference,
                                       max_new_tokens=args.caption_max_new_tokens)
            loaded = (drawn["visual"]
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
                parsed_record, "visual", plan.models, visual_params, args.seed).with_outputs(FAILED, main="records")
            results.append(out.records)
            failures.append(out[FAILED])

        candidates = (results | "AllRecords" >> beam.Flatten()
                      | "Progress" >> beam.Map(lambda wr: progress.advance(1) or wr))
        (candidates | "Line" >> beam.Map(candidate_line)
         | "WriteCandidates" >> beam.io.WriteToText(join(round_dir, "candidates"), file_name_suffix=".jsonl"))
        tallies.append(candidates | "MadeBins" >> beam.Map(lambda wr: (("made", wr[0].method, bin_of(wr[0].u)), 1)))
        failed = failures | "AllFailures" >> beam.Flatten()
        (failed | "FailureLine" >> beam.Map(lambda f: json.dumps(f, ensure_ascii=False))
         | "WriteFailures" >> beam.io.WriteToText(join(round_dir, "failed"), file_name_suffix=".jsonl"))
        tallies.append(failed | "FailedReasons" >> beam.Map(lambda f: (("failed", f["reason"]), 1)))
        write_tallies(tallies, join(round_dir, "tallies"))


def write_tallies(parts: list, prefix: str):
    """Counts summed by the engine, one `[key, n]` line each: what the driver reads of a job."""
    return (parts | "AllTallies" >> beam.Flatten()
            | "SumTallies" >> beam.CombinePerKey(sum)
            | "TallyLine" >> beam.Map(lambda kv: json.dumps([list(kv[0]), kv[1]]))
            | "WriteTallies" >> beam.io.WriteToText(prefix, file_name_suffix=".jsonl"))


def read_tallies(prefix: str) -> list[tuple[list, int]]:
    return [(key, n) for key, n in iter_jsonl(prefix + "*.jsonl")]


def round_counts(round_dir: str) -> dict:
    """tried {method: seeds}, made {method: {bin: candidates}}, failed {reason: seeds}."""
    out = {"tried": {}, "made": {}, "failed": {}}
    for key, n in read_tallies(join(round_dir, "tallies")):
        if key[0] == "made":
            out["made"].setdefault(key[1], {})[str(key[2])] = n
        else:
            out[key[0]][key[1]] = n
    return out
