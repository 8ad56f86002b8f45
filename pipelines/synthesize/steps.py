"""Per-seed steps of a synthesis round (Beam functions), and what travels between them.

A `Seed` is a drawn seed row; a `Work` is what a seed's candidate needs from step to step
(diffusion -> caption -> LLM, or straight to a record), carried as the RunInference key. A
candidate leaves a round as one line: its method, draw and seed key, then the record's JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

import apache_beam as beam
import fsspec

from adr.errors import InputError
from adr.prompts import conversation_messages, parse_conversation, rewrite_messages
from adr.protected import keeps_short_answers
from adr.synonyms import choose_replacements, replace_in_conversation, replaceable_nouns, safe_synonyms
from adr.synthesis import provenance, synthetic_id
from pipelines.outputs import join
from pipelines.synthesize.handlers.diffusion import SeedImage
from udfs.images import content_name, load_image, png_bytes

FAILED = "failed"
IMAGE_DIR = "adr-synthetic"


@dataclass(frozen=True)
class Seed:
    """A seed row drawn for one method: u is its place in that method's order."""
    method: str
    u: float
    key: str
    id: str
    image: str | None
    tail: dict
    record: dict
    nouns: tuple | None = None  # noun lemmas, from the statistics or tagged in the round


@dataclass(frozen=True)
class Work:
    """What a candidate carries through the model steps to its record."""
    method: str
    u: float
    seed_key: str
    seed_id: str
    tail: dict
    image: str | None = None       # the record's image: the seed's (rewrite) or the diffused one (visual)
    caption: str | None = None     # visual: the captioner's text
    words: tuple | None = None     # rewrite: the synonyms offered
    seed_turns: tuple | None = None  # rewrite: the seed's turns, whose short answers must survive

    @classmethod
    def of(cls, seed: Seed, **fields) -> "Work":
        return cls(seed.method, seed.u, seed.key, seed.id, seed.tail, **fields)


def failure(work: Work | Seed, reason: str, detail: str = "") -> dict:
    seed_key = work.seed_key if isinstance(work, Work) else work.key
    seed_id = work.seed_id if isinstance(work, Work) else work.id
    return {"method": work.method, "u": work.u, "seed_key": seed_key, "seed_id": seed_id,
            "reason": reason, "detail": detail}


def candidate_line(item: tuple[Work, dict]) -> str:
    """`[method, u, seed key]<TAB>record`: the final pick reads the header alone, and the record
    text is what synthetic/ and refined/ get, unparsed (compact JSON never holds a raw tab)."""
    work, record = item
    if record.get("image") is None:
        record = {k: v for k, v in record.items() if k != "image"}
    return json.dumps([work.method, work.u, work.seed_key]) + "\t" + json.dumps(record, ensure_ascii=False)


def split_candidate(line: str) -> tuple[str, float, str, str]:
    head, record = line.split("\t", 1)
    method, u, key = json.loads(head)
    return method, u, key, record


def with_nouns(seeds: list[Seed], nlp: str | None) -> list[Seed]:
    """A batch of seeds with their noun lemmas: those the statistics had come joined already;
    the rest are tagged here, a batch at a time, by the same udf and spaCy pipeline."""
    import pyarrow as pa

    from udfs.entities import extract_entities

    todo = [s for s in seeds if s.nouns is None]
    if not todo:
        return seeds
    batch = pa.RecordBatch.from_pylist([{"key": s.key, "record": json.dumps(s.record)} for s in todo],
                                       schema=pa.schema([("key", pa.string()), ("record", pa.string())]))
    tagged = extract_entities(batch, ("token",), nlp).column("token").to_pylist()
    found = {id(s): tuple(t) for s, t in zip(todo, tagged)}
    return [s if s.nouns is not None else replace(s, nouns=found[id(s)]) for s in seeds]


def _replacements(seed: Seed, counts: dict, tau: int):
    from udfs.wordnet import dominant_sense

    return choose_replacements(seed.record["conversations"], list(seed.nouns),
                               lambda n: safe_synonyms(n, dominant_sense, counts, tau))


def synonym_record(seed: Seed, counts: dict, tau: int, seed_value: int):
    chosen = _replacements(seed, counts, tau)
    turns = seed.record["conversations"]
    work = Work.of(seed)
    if not chosen:
        free = replaceable_nouns(turns, list(seed.nouns))
        yield beam.pvalue.TaggedOutput(FAILED, failure(
            work, "no-safe-synonym",
            f"{len(set(seed.nouns))} nouns, {len(free)} outside protected text, none with a safe tail synonym"))
        return
    yield work, {"id": synthetic_id("synonym", seed.key, seed_value), "image": seed.record.get("image"),
                 "conversations": replace_in_conversation(turns, chosen),
                 "adr": provenance("synonym", seed.key, seed.id, seed.tail, {"wordnet": "3.0"},
                                   {"replacements": [r.to_dict() for r in chosen]})}


def rewrite_prompt(seed: Seed, counts: dict, tau: int) -> tuple[Work, list]:
    """The rewrite prompt offers the same safe synonyms the synonym method would use."""
    turns = seed.record["conversations"]
    words = tuple(sorted({r.synonym for r in _replacements(seed, counts, tau)}))
    work = Work.of(seed, image=seed.record.get("image"), words=words, seed_turns=tuple(turns))
    return work, rewrite_messages(turns, list(words))


def load_seed_image(seed: Seed, images_root: str):
    try:
        image = load_image(images_root, seed.image)
    except InputError as err:
        yield beam.pvalue.TaggedOutput(FAILED, failure(seed, "bad-image", str(err)))
        return
    prompt = "a photo of " + ", ".join(sorted({e for es in seed.tail.values() for e in es})[:8])
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


def parsed_record(keyed: tuple[Work, Any], method: str, plan_models: dict, params: dict, seed_value: int):
    """An LLM reply -> (its Work, a synthetic record), or a failure."""
    work, result = keyed
    turns = parse_conversation(result.inference, with_image=bool(work.image))
    if turns is None:
        yield beam.pvalue.TaggedOutput(FAILED, failure(work, "unparseable-reply", result.inference[:2000]))
        return
    changed = keeps_short_answers(list(work.seed_turns), turns) if work.seed_turns is not None else None
    if changed:  # a rewrite that changes a fact about the image is not a variant of its seed
        yield beam.pvalue.TaggedOutput(FAILED, failure(work, "changed-short-answer", changed))
        return
    made = {k: v for k, v in (("caption", work.caption),
                              ("words", list(work.words) if work.words is not None else None)) if v is not None}
    yield work, {"id": synthetic_id(method, work.seed_key, seed_value), "image": work.image, "conversations": turns,
                 "adr": provenance(method, work.seed_key, work.seed_id, work.tail, plan_models, {**params, **made})}
