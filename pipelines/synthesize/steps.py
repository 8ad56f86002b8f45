"""Per-seed steps of a synthesis round (Beam functions), and what travels between them.

A `Seed` is a drawn offer (a seed row and the tail entity to make a record for); a `Work` is what
its candidate needs from step to step (diffusion -> caption -> LLM, or straight to a record),
carried as the RunInference key. A candidate leaves a round as one line: its method, order, seed
key, target and entities, then the record's JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

import apache_beam as beam
import fsspec

from adr.errors import InputError
from adr.prompts import conversation_messages, parse_conversation, rephrase_messages
from adr.reply_checks import UNCHANGED, conversation_problem, meaning_problem, piece_problem, rewrite_problem
from adr.rewrite import MAX_PIECE_CHARS, assembled, rewritable_pieces
from adr.synonyms import Replacement, replace_in_conversation
from adr.synthesis import provenance, synthetic_id
from adr.tail_turns import turns_for, word_pattern
from pipelines.outputs import join
from pipelines.synthesize.handlers.diffusion import SeedImage
from udfs.images import content_name, load_image, png_bytes

FAILED = "failed"
IMAGE_DIR = "adr-synthetic"


@dataclass(frozen=True)
class Seed:
    """An offer drawn for a round: a seed row, the method, and the tail entity (perspective,
    entity) the record is made for; `order` is the offer's place in the plan."""
    method: str
    order: float
    key: str
    id: str
    image: str | None
    tail: dict
    record: dict
    target: tuple                # (perspective, entity)
    choice: dict | None = None   # synonym: the noun, its synonym and source, chosen when offered
    nouns: tuple = ()            # the seed's noun lemmas

    @classmethod
    def of_offer(cls, offer) -> Seed:
        method, _, key, p, e, choice, _, seed_line = offer
        row = json.loads(seed_line)
        return cls(method, 0.0, key, row["id"], row.get("image"), row["tail_entities"], row["record"], (p, e),
                   choice, tuple((row.get("entities") or {}).get("token") or ()))


@dataclass(frozen=True)
class Work:
    """What a candidate carries through the model steps to its record."""
    method: str
    order: float
    seed_key: str
    seed_id: str
    tail: dict
    target: tuple                  # (perspective, entity) the record is made for
    image: str | None = None       # the record's image: the seed's (rewrite) or the diffused one (visual)
    caption: str | None = None     # visual: the captioner's text
    words: tuple | None = None     # rewrite: the synonyms offered
    seed_turns: tuple | None = None  # rewrite: the seed's turns, whose short answers must survive
    pieces: tuple = ()             # rewrite: what of seed_turns the LLM is asked to reword
    swaps: tuple = ()              # rewrite: (synonym, the noun it may stand for), as offered
    nouns: tuple = ()              # rewrite: the seed's noun lemmas (what a rewrite may name)

    @classmethod
    def of(cls, seed: Seed, **fields) -> Work:
        return cls(seed.method, seed.order, seed.key, seed.id, seed.tail, tuple(seed.target), **fields)


def failure(work: Work | Seed, reason: str, detail: str = "") -> dict:
    seed_key = work.seed_key if isinstance(work, Work) else work.key
    seed_id = work.seed_id if isinstance(work, Work) else work.id
    return {"method": work.method, "order": work.order, "seed_key": seed_key, "seed_id": seed_id,
            "made_for": list(work.target), "reason": reason, "detail": detail}


def candidate_line(item: tuple[Work, dict, dict]) -> str:
    """`[method, order, seed key, target, entities]<TAB>record`: the final pick and the counts
    read the header alone, and the record text is what synthetic/ and refined/ get, unparsed
    (compact JSON never holds a raw tab)."""
    work, record, entities = item
    if record.get("image") is None:
        record = {k: v for k, v in record.items() if k != "image"}
    return (json.dumps([work.method, work.order, work.seed_key, list(work.target), entities], ensure_ascii=False)
            + "\t" + json.dumps(record, ensure_ascii=False))


def split_candidate(line: str) -> tuple:
    """(method, order, seed key, target as 'perspective<US>entity', entities, record text):
    (order, seed key, target) is the candidate's place, unique within its method."""
    head, record = line.split("\t", 1)
    method, order, key, target, entities = json.loads(head)
    return method, order, key, "\x1f".join(target), entities, record


def with_entities(batch: list[tuple[Work, dict]], perspectives: tuple[str, ...], nlp: str | None):
    """A batch of candidates with the entities their records hold, found by the statistics' udf:
    what the ceilings are checked against and entity_counts/ sums."""
    from udfs.entities import entities_of

    return [(w, r, found) for (w, r), found in zip(batch, entities_of([r for _, r in batch], perspectives, nlp))]


def _record_id(work: Work, seed_value: int) -> str:
    return synthetic_id(work.method, work.seed_key, seed_value, "\x1f".join(work.target))


def synonym_record(seed: Seed, seed_value: int):
    """The seed's turns that hold the noun (all of them for a free-form conversation), the noun
    replaced by the synonym it was offered for."""
    chosen = Replacement(**seed.choice)
    turns = replace_in_conversation(turns_for(seed.record, chosen.noun), [chosen])
    work = Work.of(seed)
    if not word_pattern(chosen.synonym).search(json.dumps([t.get("value", "") for t in turns])):
        yield beam.pvalue.TaggedOutput(FAILED, failure(work, "no-safe-synonym", f"{chosen.noun} not replaced"))
        return
    yield work, {"id": _record_id(work, seed_value), "image": seed.record.get("image"), "conversations": turns,
                 "adr": provenance("synonym", seed.key, seed.id, seed.tail, {"wordnet": "3.0"},
                                   {"replacements": [chosen.to_dict()]}, tuple(seed.target))}


def rewrite_requests(seed: Seed, counts: dict, tau: int, max_chars: int = MAX_PIECE_CHARS):
    """One LLM request per piece (of at most `max_chars`) of the turns that hold the target
    (adr.rewrite), each offered the safe synonyms of the turns' nouns; keyed by (work, piece index)."""
    from pipelines.synthesize.offers import synonym_choices

    turns = turns_for(seed.record, seed.target[1])
    choices = synonym_choices(turns, seed.nouns, counts, tau, bool(seed.record.get("image")))
    swaps = tuple(sorted({(c["synonym"], c["noun"]) for c in choices}))
    words = tuple(sorted({synonym for synonym, _ in swaps}))
    pieces = tuple(rewritable_pieces(turns, max_chars))
    work = Work.of(seed, image=seed.record.get("image"), words=words, seed_turns=tuple(turns), pieces=pieces,
                   nouns=seed.nouns, swaps=swaps)
    if not pieces:
        yield beam.pvalue.TaggedOutput(FAILED, failure(work, "no-rewritable-piece"))
    for i, piece in enumerate(pieces):
        yield (work, i), rephrase_messages(piece.kind, piece.text, list(words))


def by_candidate(keyed) -> tuple[str, tuple]:
    """A piece's reply keyed by its candidate, so that a record's pieces meet again."""
    (work, i), result = keyed
    return json.dumps([work.seed_key, list(work.target)]), (i, work, result.inference)


def chosen_rewrite(piece, replies: tuple[str, ...], swaps: dict[str, str]) -> tuple[str, tuple | None]:
    """(the first of a piece's alternative replies that passes the piece's checks, None), else
    (the seed's own text, why the greedy reply is refused): a piece no reply rewrites stays as the
    seed says it, and the record as a whole must still change (rewrite_problem)."""
    from udfs.wordnet import word_bases

    problems = []
    for text in (r.strip() for r in replies):
        problem = piece_problem(piece.kind, piece.text, text) or meaning_problem(piece.text, text, word_bases, swaps)
        if problem is None:
            return text, None
        problems.append(problem)
    return piece.text, problems[0]


def rewritten_record(kv, plan_models: dict, params: dict, seed_value: int, nlp: str | None):
    """A candidate's piece replies -> its synthetic record, or the reason the replies are refused
    (adr.reply_checks), with what the model wrote. Pieces whose replies are all refused keep the
    seed's text, and the record's provenance says which and why."""
    from udfs.entities import entities_of
    from udfs.wordnet import related_nouns, rewrite_support

    _, replies = kv
    replies = sorted(replies, key=lambda r: r[0])
    work = replies[0][1]
    alternatives = [r[2] if isinstance(r[2], (tuple, list)) else (r[2],) for r in replies]
    said = " | ".join(a[0] for a in alternatives)[:1500]
    swaps = dict(work.swaps)
    chosen = [chosen_rewrite(piece, tuple(options), swaps) for piece, options in zip(work.pieces, alternatives)]
    refused = [(i, problem) for i, (_, problem) in enumerate(chosen) if problem]
    if len(refused) == len(chosen):
        reason, detail = next(((r, d) for _, (r, d) in refused if r != UNCHANGED), refused[0][1])
        yield beam.pvalue.TaggedOutput(FAILED, failure(work, reason, f"{detail} | reply: {said}"))
        return
    turns = assembled(list(work.seed_turns), list(work.pieces), [text for text, _ in chosen])
    seed_found, found = entities_of([{"conversations": list(work.seed_turns)}, {"conversations": turns}],
                                    ("token",), nlp)
    support = rewrite_support(set(work.nouns) | set(work.words or ()))
    problem = rewrite_problem(list(work.seed_turns), turns, work.target[1], found["token"], support,
                              {n: related_nouns(n) for n in seed_found["token"]})
    if problem:
        yield beam.pvalue.TaggedOutput(FAILED, failure(work, problem[0], f"{problem[1]} | reply: {said}"))
        return
    kept = [{"piece": i, "reason": reason, "reply": alternatives[i][0][:300]} for i, (reason, _) in refused]
    yield work, {"id": _record_id(work, seed_value), "image": work.image, "conversations": turns,
                 "adr": provenance("rewrite", work.seed_key, work.seed_id, work.tail, plan_models,
                                   {**params, "words": list(work.words or ()), "pieces": len(chosen),
                                    "kept_as_seed": kept}, tuple(work.target))}


def load_seed_image(seed: Seed, images_root: str):
    try:
        image = load_image(images_root, seed.image)
    except InputError as err:
        yield beam.pvalue.TaggedOutput(FAILED, failure(seed, "bad-image", str(err)))
        return
    others = sorted({e for es in seed.tail.values() for e in es} - {seed.target[1]})
    prompt = "a photo of " + ", ".join([seed.target[1]] + others[:7])
    yield Work.of(seed), SeedImage(seed.key, image, prompt)


def save_image(keyed: tuple[Work, Any], images: str) -> tuple[Work, Any]:
    """Writes the diffused image under its content digest (a rerun writes the same file)."""
    work, result = keyed
    data = png_bytes(result.inference)
    name = content_name(data)
    fs, root = fsspec.core.url_to_fs(join(images, IMAGE_DIR))
    fs.makedirs(root, exist_ok=True)
    with fs.open(f"{root}/{name}", "wb") as f:
        f.write(data)
    return replace(work, image=f"{IMAGE_DIR}/{name}"), result.inference


def to_conversation_request(keyed: tuple[Work, Any]) -> tuple[Work, list]:
    work, result = keyed
    return replace(work, caption=result.inference), conversation_messages(result.inference)


# The longest answer a conversation from a caption may hold: LLaVA's detailed answers run to
# about 200 words; longer is a model that does not stop.
MAX_ANSWER_WORDS = 200


def conversation_record(keyed: tuple[Work, Any], plan_models: dict, params: dict, seed_value: int,
                        nlp: str | None):
    """An LLM's conversation about a caption -> (its Work, a visual synthetic record), or the
    reason it is refused (adr.reply_checks): it must parse, ask, name the target, and say nothing
    in its answers that the caption (what the captioner saw in the new image) does not."""
    from adr.entities.token import noun_lemmas
    from udfs.entities import tag_texts
    from udfs.wordnet import rewrite_support

    work, result = keyed
    turns = parse_conversation(result.inference, with_image=bool(work.image))
    answers = [t["value"] for t in turns or () if t["from"] == "gpt"]
    tags = tag_texts(dict.fromkeys([work.caption or "", *answers]), nlp)
    caption_nouns = noun_lemmas(tags[work.caption or ""])
    answer_nouns = noun_lemmas(pair for a in answers for pair in tags[a])
    problem = conversation_problem(work.caption or "", turns, work.target[1], answer_nouns,
                                   rewrite_support(caption_nouns), MAX_ANSWER_WORDS)
    if problem:
        yield beam.pvalue.TaggedOutput(FAILED, failure(work, problem[0],
                                                       f"{problem[1]} | reply: {result.inference[:1500]}"))
        return
    yield work, {"id": _record_id(work, seed_value), "image": work.image, "conversations": turns,
                 "adr": provenance("visual", work.seed_key, work.seed_id, work.tail, plan_models,
                                   {**params, "caption": work.caption}, tuple(work.target))}
