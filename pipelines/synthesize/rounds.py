"""One synthesis round as a Beam pipeline, and the counts it leaves for the driver.

A round reads the offers, keeps those whose plan order falls in each method's bin range, and
runs them through their method's steps. Each record made is tagged (the statistics' udf) and
checked against the ceilings: grouped by each tail entity it carries, in plan order, it must fit
in what that entity may still receive after the earlier rounds. The round writes its candidates,
failures and accepted entity counts as shards under rounds/NNN/, and tallies/: offers tried per
method, candidates per method and bin of order, failures per reason. The driver plans the next
round from those counts alone.
"""

from __future__ import annotations

import json

import apache_beam as beam
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from adr.synthesis import METHODS, bin_of, capacity
from pipelines import progress
from pipelines.outputs import iter_jsonl, join
from pipelines.synthesize.handlers.captioning import CaptionHandler
from pipelines.synthesize.handlers.diffusion import DiffusionHandler
from pipelines.synthesize.handlers.llm import ChatLLMHandler
from pipelines.synthesize.offers import PlanContext, order_of, read_offer_counts, split_offer
from pipelines.synthesize.steps import (
    FAILED,
    Seed,
    by_candidate,
    candidate_line,
    conversation_record,
    failure,
    load_seed_image,
    rewrite_requests,
    rewritten_record,
    save_image,
    synonym_record,
    to_conversation_request,
    with_entities,
)
from pipelines.torch_env import on_accelerator


def drawn_offers(offer_lines, offer_counts, ranges: dict[str, tuple[int, int]], ctx: PlanContext):
    """The round's offers of each method: those whose order falls in the method's bin range."""
    from dataclasses import replace

    def in_range(line, offers):
        offer = split_offer(line)
        if offer[0] not in ranges:
            return
        order = order_of(offer, offers, ctx)
        lo, hi = ranges[offer[0]]
        if order is not None and lo <= bin_of(order) < hi:
            yield beam.pvalue.TaggedOutput(offer[0], replace(Seed.of_offer(offer), order=order))

    return offer_lines | "DrawOffers" >> beam.FlatMap(in_range, beam.pvalue.AsDict(offer_counts)).with_outputs(
        *METHODS)


def ceiling_claims(candidate, ctx: PlanContext):
    """(entity, the candidate's place) for every tail entity the candidate's record carries."""
    work, _, entities = candidate
    place = (work.order, work.method, work.seed_key, list(work.target))
    for perspective, found in entities.items():
        for entity in found:
            if ctx.is_target(perspective, entity):
                yield (perspective, entity), place


def past_ceiling(kv, ctx: PlanContext, accepted: dict):
    """The candidates an entity cannot take: past its room left, in plan order."""
    (perspective, entity), places = kv
    n = ctx.counts.get(perspective, {}).get(entity, 0)
    room = capacity(n, ctx.ceilings[perspective]) - accepted.get((perspective, entity), 0)
    for place in sorted(places)[max(0, room):]:
        yield _candidate_id(place), f"{perspective} '{entity}' at its ceiling {ctx.ceilings[perspective]}"


def _candidate_id(place) -> str:
    _, method, key, target = place
    return json.dumps([method, key, list(target)])


def checked(candidates, claims_of, accepted, ctx: PlanContext):
    """Candidates whose every tail entity has room (records) and those past a ceiling (failures),
    given `accepted`: ((perspective, entity), records) that earlier rounds accepted, in parts.
    A candidate refused by one entity still holds its place at the others: conservative, so no
    entity is ever taken past its ceiling, whatever order the engine runs in."""
    accepted = accepted | "SumAccepted" >> beam.CombinePerKey(sum)
    refused = (candidates | "Claims" >> beam.FlatMap(claims_of, ctx)
               | "ByEntity" >> beam.GroupByKey()
               | "PastCeiling" >> beam.FlatMap(past_ceiling, ctx, beam.pvalue.AsDict(accepted)))
    keyed = candidates | "ById" >> beam.Map(
        lambda c: (_candidate_id((c[0].order, c[0].method, c[0].seed_key, c[0].target)), c))

    def verdict(kv):
        _, grouped = kv
        reasons = sorted(set(grouped["refused"]))
        for c in grouped["candidates"]:
            if reasons:
                yield beam.pvalue.TaggedOutput(FAILED, failure(c[0], "past-ceiling", "; ".join(reasons)[:2000]))
            else:
                yield c

    return ({"candidates": keyed, "refused": refused} | "JoinRefusals" >> beam.CoGroupByKey()
            | "Verdict" >> beam.FlatMap(verdict).with_outputs(FAILED, main="records"))


class SynthesisRound(beam.PTransform):
    """One round: {"offers": offer lines, "offer_counts": ((method, perspective, entity), offers),
    "accepted": ((perspective, entity), records the earlier rounds accepted)} -> {"candidates":
    (Work, record, entities), "failed": failures, "accepted": ((perspective, entity), this round's
    candidates carrying it), "tallies": (key, 1)}. Only the methods in `ranges` are drawn."""

    def __init__(self, plan, ranges: dict[str, tuple[int, int]]):
        super().__init__()
        args = plan.args
        self.plan, self.ranges = plan, ranges
        self.llm = ChatLLMHandler(args.llm, device=args.device, max_new_tokens=args.max_new_tokens,
                                  max_batch_size=args.batch_size, batch_invariant=not args.batched_inference,
                                  seed=args.seed) if args.llm else None

    def expand(self, inputs):
        plan, ranges, ctx = self.plan, self.ranges, self.plan.context
        drawn = drawn_offers(inputs["offers"], inputs["offer_counts"], ranges, ctx)
        results, failures = [], []
        tallies = [drawn[m] | f"Tried{m.title()}" >> beam.Map(lambda s: (("tried", s.method), 1)) for m in ranges]
        for method, make in (("synonym", self.synonym), ("rewrite", self.rewrite), ("visual", self.visual)):
            if method in ranges:
                records, failed = make(drawn[method])
                results.append(records)
                failures += failed

        made = (results | "AllRecords" >> beam.Flatten()
                | "BatchRecords" >> beam.BatchElements(min_batch_size=16, max_batch_size=512)
                | "Entities" >> beam.FlatMap(with_entities, plan.perspectives, plan.nlp))
        out = checked(made, ceiling_claims, inputs["accepted"], ctx)
        failed = (*failures, out[FAILED]) | "AllFailures" >> beam.Flatten()
        accepted = (out.records
                    | "AcceptedEntities" >> beam.FlatMap(lambda c, ctx: (k for k, _ in ceiling_claims(c, ctx)), ctx)
                    | "CountAccepted" >> beam.combiners.Count.PerElement())
        tallies += [out.records | "MadeBins" >> beam.Map(lambda c: (("made", c[0].method, bin_of(c[0].order)), 1)),
                    failed | "FailedReasons" >> beam.Map(lambda f: (("failed", f["reason"]), 1))]
        return {"candidates": out.records, "failed": failed, "accepted": accepted,
                "tallies": tallies | "AllTallies" >> beam.Flatten()}

    # Each method: its drawn Seeds -> (its records, [its failures]).

    def synonym(self, drawn):
        out = drawn | "Synonyms" >> beam.FlatMap(synonym_record, self.plan.args.seed).with_outputs(
            FAILED, main="records")
        return out.records, [out[FAILED]]

    def rewrite(self, drawn):
        plan, args, ctx = self.plan, self.plan.args, self.plan.context
        requests = drawn | "RewritePieces" >> beam.FlatMap(
            rewrite_requests, ctx.counts.get("token", {}), ctx.taus.get("token", 0),
            ctx.piece_chars).with_outputs(FAILED, main="pieces")
        replies = (requests.pieces
                   | "Rewrite" >> on_accelerator(RunInference(
                       KeyedModelHandler(self.llm), inference_args={"alternatives": args.rewrite_alternatives}),
                       args.accelerator)
                   | "ByCandidate" >> beam.Map(by_candidate)
                   | "PiecesOfCandidate" >> beam.GroupByKey())
        out = replies | "CheckRewrite" >> beam.FlatMap(
            rewritten_record, {"llm": args.llm}, {"seed": args.seed}, args.seed, plan.nlp).with_outputs(
                FAILED, main="records")
        return out.records, [requests[FAILED], out[FAILED]]

    def visual(self, drawn):
        plan, args = self.plan, self.plan.args
        diffusion = DiffusionHandler(args.image_model, variant=args.image_variant, device=args.device,
                                     steps=args.steps, guidance=args.guidance, size=args.size,
                                     strength=args.strength, candidates=args.candidates, seed=args.seed,
                                     max_batch_size=args.batch_size, batch_invariant=not args.batched_inference)
        captioner = CaptionHandler(args.caption_model, device=args.device, max_batch_size=args.batch_size,
                                   batch_invariant=not args.batched_inference,
                                   max_new_tokens=args.caption_max_new_tokens)
        loaded = drawn | "LoadImages" >> beam.FlatMap(load_seed_image, args.images_root).with_outputs(
            FAILED, main="images")
        replies = (loaded.images
                   | "Diffuse" >> on_accelerator(RunInference(KeyedModelHandler(diffusion)), args.accelerator)
                   | "SaveImages" >> beam.Map(save_image, plan.images)
                   | "Caption" >> on_accelerator(RunInference(KeyedModelHandler(captioner)), args.accelerator)
                   | "ConversationPrompt" >> beam.Map(to_conversation_request)
                   | "Converse" >> on_accelerator(RunInference(KeyedModelHandler(self.llm)), args.accelerator))
        visual_params = {"seed": args.seed, "variant": args.image_variant, "steps": diffusion._steps,
                         "guidance": diffusion._guidance, "size": args.size}
        out = replies | "CheckConversation" >> beam.FlatMap(
            conversation_record, plan.models, visual_params, args.seed, plan.nlp).with_outputs(
                FAILED, main="records")
        return out.records, [loaded[FAILED], out[FAILED]]


def round_sources(p, work: str, accepted_files: list[str]) -> dict:
    """A round's inputs: the offers and their counts under `work`, and what the earlier rounds'
    accepted/ files counted."""
    accepted = (p | "AcceptedFiles" >> beam.Create(accepted_files)
                | "ReadAccepted" >> beam.io.ReadAllFromText()
                | "AcceptedCount" >> beam.Map(lambda line: (tuple(json.loads(line)[0][1:]), json.loads(line)[1])))
    return {"offers": p | "ReadOffers" >> beam.io.ReadFromText(join(work, "offers*.jsonl")),
            "offer_counts": read_offer_counts(p, work), "accepted": accepted}


def run_round(plan, ranges: dict[str, tuple[int, int]], round_dir: str, beam_args, accepted_files: list[str]) -> None:
    """The round's pipeline: rounds/NNN/candidates, accepted, failed and tallies shards."""
    with beam.Pipeline(options=PipelineOptions(beam_args)) as p:
        out = round_sources(p, plan.work, accepted_files) | "Round" >> SynthesisRound(plan, ranges)
        (out["candidates"] | "Progress" >> beam.Map(lambda c: progress.advance(1) or c)
         | "Line" >> beam.Map(candidate_line)
         | "WriteCandidates" >> beam.io.WriteToText(join(round_dir, "candidates"), file_name_suffix=".jsonl"))
        (out["accepted"]
         | "AcceptedLine" >> beam.Map(lambda kv: json.dumps([["accepted", *kv[0]], kv[1]], ensure_ascii=False))
         | "WriteAccepted" >> beam.io.WriteToText(join(round_dir, "accepted"), file_name_suffix=".jsonl"))
        (out["failed"] | "FailureLine" >> beam.Map(lambda f: json.dumps(f, ensure_ascii=False))
         | "WriteFailures" >> beam.io.WriteToText(join(round_dir, "failed"), file_name_suffix=".jsonl"))
        write_tallies([out["tallies"]], join(round_dir, "tallies"))


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
