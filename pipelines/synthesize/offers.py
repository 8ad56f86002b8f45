"""What each seed can make, and for which tail entity: the offers the plan orders (adr.synthesis).

An offer is a record a method could make from one seed for one tail entity, its target:
- synonym: one offer per noun of the seed that has a safe synonym in this record's sense; the
  target is the synonym (a tail token, or a word the corpus lacks). What fails, fails here,
  once per seed, before any round: the rounds only draw offers that can be made.
- rewrite: the seed's rarest tail token (the LLM is offered the safe synonyms).
- visual: the seed's rarest tail entity, objects first (a new image of the same things).
Targets past their ceiling (no room left) are never offered.

The engine writes the offers as `[method, u, seed key, perspective, entity, choice, carried]<TAB>
seed line`, carried being every tail entity the record would hold, and counts them per (method,
perspective, entity) carried; the order of an offer in the plan follows from its draw and those
counts, so the driver holds bin counts only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import apache_beam as beam

from adr.entities.registry import extract_record
from adr.rewrite import MAX_PIECE_CHARS, rewritable_pieces
from adr.synonyms import fitting, replaceable_nouns, sentence_context, word_synonyms
from adr.synthesis import bin_of, capacity, is_target, offer_draw, offer_order
from adr.tail_turns import turns_for, word_pattern
from pipelines.outputs import join

TEXT_METHODS = ("synonym", "rewrite")


@dataclass(frozen=True)
class PlanContext:
    """What an offer's target and order depend on, the same on every worker."""
    seed: int
    enabled: tuple[str, ...]
    taus: dict              # perspective -> tau
    ceilings: dict          # perspective -> ceiling
    counts: dict            # perspective -> entity -> records holding it (the dictionary)
    min_tail_share: float = 0.0  # of the tokens a language record adds, at least this share tail
    piece_chars: int = MAX_PIECE_CHARS  # rewrite: the longest piece the LLM's replies can hold
    _synonyms: dict = field(default_factory=dict, compare=False, repr=False)  # per worker, per noun

    def is_target(self, perspective: str, entity: str) -> bool:
        return is_target(perspective, entity, self.counts.get(perspective, {}).get(entity, 0),
                         self.taus.get(perspective, 0))

    def synonyms_of(self, noun: str) -> list[tuple[str, str]]:
        """`word_synonyms` under this plan's token counts, looked up once per noun per worker."""
        from udfs.wordnet import dominant_sense

        if noun not in self._synonyms:
            self._synonyms[noun] = word_synonyms(noun, dominant_sense, self.counts.get("token", {}),
                                                 self.taus.get("token", 0))
        return self._synonyms[noun]

    def room(self, perspective: str, entity: str) -> int:
        """What the entity may still receive, from any method (each method orders its offers by
        it; a round refuses what earlier records already took, see rounds.checked); 0 for head
        and catch-alls."""
        if not self.is_target(perspective, entity):
            return 0
        return capacity(self.counts.get(perspective, {}).get(entity, 0), self.ceilings[perspective])


def pools_of(row: dict) -> tuple[str, ...]:
    """The methods a seed row can serve. Visual: the spec's tail records whose image no other
    record uses. Language methods need a tail in the text (a tail token), whatever the image."""
    out = []
    if row.get("image") and row.get("image_shared") is False:  # null: unknown (a streamed seed), not unshared
        out.append("visual")
    if row["tail_entities"].get("token"):
        out += TEXT_METHODS
    return tuple(out)


SCENE_NOUNS = 30  # a record about one image with at most this many nouns describes one scene


def sense_evidence(turns: list[dict], noun: str, nouns, image: bool) -> frozenset[str]:
    """The nouns that show which sense `noun` has in this record: those of its sentences and, in
    a short record about an image, every noun of the record: they name the same scene ("Is the
    man holding a controller?" ... "a Wii")."""
    scene = frozenset(nouns) if image and len(set(nouns)) <= SCENE_NOUNS else frozenset()
    return (sentence_context(turns, noun, nouns) | scene) - {noun}


def synonym_choices(turns: list[dict], nouns, counts: dict, tau: int, image: bool = False,
                    fits=None, synonyms_of=None) -> list[dict]:
    """Per replaceable noun of the record, its best synonym in this record's sense (`fits`:
    udfs.wordnet.sense_fits unless given; `synonyms_of(noun)`: a memo of `word_synonyms`)."""
    from udfs.wordnet import dominant_sense, sense_fits

    synonyms_of = synonyms_of or (lambda noun: word_synonyms(noun, dominant_sense, counts, tau))
    # The rules on the words alone first: most nouns have no synonym, and their occurrences
    # need not be found.
    candidates = {noun: found for noun in set(nouns) if noun and (found := synonyms_of(noun))}
    out = []
    for noun, occurrences in sorted(replaceable_nouns(turns, candidates).items()):
        found = fitting(noun, candidates[noun], dominant_sense(noun).name,
                        sense_evidence(turns, noun, nouns, image), fits or sense_fits)
        if found:
            synonym, source = found[0]
            out.append({"noun": noun, "synonym": synonym, "source": source, "occurrences": occurrences})
    return out


def _rarest(ctx: PlanContext, tail: dict, perspectives: tuple[str, ...]):
    best = None
    for p in perspectives:
        for e in sorted(tail.get(p, ())):
            room = ctx.room(p, e)
            if room > 0 and (best is None or room > best[0]):
                best = (room, p, e)
        if best:
            return best[1], best[2]
    return None


def carried(row: dict, method: str, target: tuple[str, str], choice: dict | None, turns: list[dict],
            ctx: PlanContext) -> list:
    """The tail entities the record would carry, its target among them, as far as the seed tells:
    the seed's tail tokens in the `turns` it keeps, the question types of those turns, and its
    image's tail objects and pairs (the record keeps the image). A visual record's conversation
    is not known before it is written."""
    if method == "visual":
        return [list(target)]
    text = "\n".join(t.get("value", "") for t in turns)
    found = {p: set(es) for p, es in row["tail_entities"].items()}
    if "interrogation" in ctx.taus:
        found["interrogation"] = extract_record({"conversations": turns}, [], ("interrogation",))["interrogation"]
    out = {tuple(target)}
    for p, entities in found.items():
        for e in entities:
            if (choice and e == choice["noun"]) or (p == "token" and not word_pattern(e).search(text)):
                continue  # replaced, or in a turn the record does not keep
            if ctx.is_target(p, e):
                out.add((p, e))
    return sorted(list(x) for x in out)


def head_tokens(nouns, replaced: str, turns: list[dict], ctx: PlanContext) -> int:
    """Head tokens of the seed in the `turns` its record would keep, the replaced noun aside."""
    text = "\n".join(t.get("value", "") for t in turns)
    counts, tau = ctx.counts.get("token", {}), ctx.taus.get("token", 0)
    return sum(1 for n in set(nouns) if counts.get(n, 0) > tau and n != replaced and word_pattern(n).search(text))


def seed_offers(row: dict, nouns, ctx: PlanContext) -> list[tuple[str, str, str, dict | None]]:
    """(method, perspective, entity, choice) of every record this seed can make."""
    out = []
    methods = [m for m in pools_of(row) if m in ctx.enabled]
    if "synonym" in methods and nouns:
        tokens = ctx.counts.get("token", {})
        seen = set()
        for choice in synonym_choices(row["record"]["conversations"], nouns, tokens, ctx.taus["token"],
                                      bool(row["record"].get("image")), synonyms_of=ctx.synonyms_of):
            if choice["synonym"] not in seen and ctx.room("token", choice["synonym"]) > 0:
                seen.add(choice["synonym"])
                out.append(("synonym", "token", choice["synonym"], choice))
    if "rewrite" in methods:
        target = _rarest(ctx, row["tail_entities"], ("token",))
        if target:
            out.append(("rewrite", *target, None))
    if "visual" in methods:
        target = _rarest(ctx, row["tail_entities"], ("object", "token"))
        if target:
            out.append(("visual", *target, None))
    return out


def offer_lines(lines: list[str], ctx: PlanContext, nlp: str | None):
    """A batch of seed lines -> offer lines; seeds without their nouns (a rebalance output older
    than the field) are tagged here, a batch at a time, by the statistics' own udf."""
    rows = [json.loads(line) for line in lines]
    nouns = [(r.get("entities") or {}).get("token") for r in rows]
    todo = [i for i, n in enumerate(nouns) if n is None and "synonym" in ctx.enabled]
    if todo:
        from udfs.entities import entities_of

        for i, found in zip(todo, entities_of([rows[i]["record"] for i in todo], ("token",), nlp)):
            nouns[i] = found["token"]
    for row, line, found in zip(rows, lines, nouns):
        for method, p, e, choice in seed_offers(row, found or (), ctx):
            word = choice["noun"] if choice else e  # the word the record's turns are kept for
            turns = turns_for(row["record"], word) if method != "visual" else []
            if method == "rewrite" and not rewritable_pieces(turns, ctx.piece_chars):
                continue  # nothing in these turns is the model's to reword: no record could come of it
            carrying = carried(row, method, (p, e), choice, turns, ctx)
            tail = sum(1 for q, _ in carrying if q == "token")
            if method != "visual" and tail < ctx.min_tail_share * (tail + head_tokens(found or (), word, turns, ctx)):
                continue  # the record would add mostly to the head
            u = offer_draw(ctx.seed, row["key"], method, p, e)
            head = [method, u, row["key"], p, e, choice, carrying]
            yield json.dumps(head, ensure_ascii=False) + "\t" + line


def split_offer(line: str):
    """(method, u, seed key, perspective, entity, choice, carried, seed line)."""
    head, seed_line = line.split("\t", 1)
    return (*json.loads(head), seed_line)


def order_of(offer, offers: dict, ctx: PlanContext) -> float | None:
    """The offer's place in the plan: its most constrained entity's (adr.synthesis.offer_order),
    so that taking offers below t takes about t times the room of every entity they carry."""
    method, u, *_, carrying, _ = offer
    worst = 0.0
    for p, e in carrying:
        order = offer_order(u, offers.get((method, p, e), 0), ctx.room(p, e))
        if order is None:
            return None
        worst = max(worst, order)
    return worst


class Offers(beam.PTransform):
    """Seed lines -> {"offers": offer lines, "counts": ((method, perspective, entity), offers
    carrying it), "bins": ((method, bin of order), offers)}."""

    def __init__(self, ctx: PlanContext, nlp: str | None):
        super().__init__()
        self.ctx, self.nlp = ctx, nlp

    def expand(self, seed_lines):
        ctx = self.ctx
        lines = (seed_lines | "BatchPoolSeeds" >> beam.BatchElements(min_batch_size=16, max_batch_size=512)
                 | "Offers" >> beam.FlatMap(offer_lines, ctx, self.nlp))
        parsed = lines | "SplitOffers" >> beam.Map(split_offer)
        counts = (parsed | "OfferEntities" >> beam.FlatMap(lambda o: (((o[0], p, e), 1) for p, e in o[6]))
                  | "CountOffers" >> beam.CombinePerKey(sum))

        def order_bin(offer, offers):
            order = order_of(offer, offers, ctx)
            if order is not None:
                yield (offer[0], bin_of(order)), 1

        bins = (parsed | "OrderBins" >> beam.FlatMap(order_bin, beam.pvalue.AsDict(counts))
                | "CountOrderBins" >> beam.CombinePerKey(sum))
        return {"offers": lines, "counts": counts, "bins": bins}


def offered(p, seeds_pattern: str, ctx: PlanContext, nlp: str | None, work: str):
    """Offers of the seed files: writes work/offers*.jsonl and work/offer_counts*.jsonl; returns
    ((method, bin), offers)."""
    out = p | "ReadPoolSeeds" >> beam.io.ReadFromText(seeds_pattern) | "Offers" >> Offers(ctx, nlp)
    _ = out["offers"] | "WriteOffers" >> beam.io.WriteToText(join(work, "offers"), file_name_suffix=".jsonl")
    _ = (out["counts"]
         | "OfferCountLine" >> beam.Map(lambda kv: json.dumps([list(kv[0]), kv[1]], ensure_ascii=False))
         | "WriteOfferCounts" >> beam.io.WriteToText(join(work, "offer_counts"), file_name_suffix=".jsonl"))
    return out["bins"]


def read_offer_counts(p, work: str):
    """The offers' counts per (method, perspective, entity), as a PCollection of pairs."""
    return (p | "OfferCountFiles" >> beam.Create([join(work, "offer_counts*.jsonl")])
            | "ReadOfferCounts" >> beam.io.ReadAllFromText()
            | "OfferCount" >> beam.Map(lambda line: (tuple(json.loads(line)[0]), json.loads(line)[1])))
