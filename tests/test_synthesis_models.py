"""Synthesis with models whose replies parse, through Beam RunInference; batch-invariant handlers.

The LLM here is tiny_models.build_trained_chat_lm: trained (seconds, one CPU thread) to answer
tiny_models.CHAT_REPLY, a parseable `Question: ... === Answer: ... ===` block, to any chat the
stage renders, so the visual (diffusion -> caption -> LLM) and rewrite paths run to written records.
"""

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adr.prompts import conversation_messages, parse_conversation, rephrase_messages
from adr.records import IMAGE_TOKEN
from adr.synthesis import synthetic_id
from pipelines.synthesize import steps
from tests import tiny_models as tiny
from tests.conftest import COCO_IMAGES
from tests.test_beam_synthesize import corpus, read_jsonl, synthesize  # noqa: F401  (corpus: a fixture)

PROVENANCE = {"method", "seed_key", "seed_id", "made_for", "tail_entities", "models", "parameters"}


@pytest.fixture(scope="module")
def models(tmp_path_factory, request):
    root = tmp_path_factory.mktemp("models")
    # The trained LM takes seconds to build: kept between sessions in pytest's cache, under the
    # digest of tiny_models.py, so that any change to its builder builds it again.
    cache = request.config.cache.mkdir("adr-tiny-models") if getattr(request.config, "cache", None) else root
    cache = cache / hashlib.sha256(Path(tiny.__file__).read_bytes()).hexdigest()[:16]
    return {"img2img": tiny.build_sd_img2img(root / "img2img"),
            "variation": tiny.build_sd_image_variation(root / "variation"),
            "controlnet": tiny.build_controlnet(root / "controlnet"),
            "captioner": tiny.build_captioner(root / "captioner"),
            "captioner_llava": tiny.build_captioner(root / "captioner_llava", kind="llava"),
            "causal_lm": tiny.build_causal_lm(root / "causal_lm"),
            "chat_lm": tiny.build_trained_chat_lm(cache / "trained_chat_lm")}


def seeds_by_key(corpus) -> dict:
    root, _ = corpus
    return {s["key"]: s for s in read_jsonl(root / "rebalanced" / "seeds")}


def check_provenance(record: dict, seed: dict, method: str, models: dict) -> dict:
    adr = record["adr"]
    assert set(adr) == PROVENANCE
    assert adr["method"] == method and adr["seed_key"] == seed["key"] and adr["seed_id"] == seed["id"]
    assert adr["tail_entities"] == seed["tail_entities"] and any(adr["tail_entities"].values())
    assert adr["models"] == models
    target = (adr["made_for"]["perspective"], adr["made_for"]["entity"])
    assert target[1] in adr["tail_entities"][target[0]]  # made for one of the seed's tail entities
    assert record["id"] == synthetic_id(method, seed["key"], 42, "\x1f".join(target))
    return adr["parameters"]


def check_one_image_token(record: dict) -> None:
    turns = record["conversations"]
    assert [t["from"] for t in turns] == ["human", "gpt"] * (len(turns) // 2) and turns
    assert sum(t["value"].count(IMAGE_TOKEN) for t in turns) == (1 if record.get("image") else 0)
    if record.get("image"):
        assert turns[0]["value"].startswith(IMAGE_TOKEN + "\n")


def test_the_trained_chat_lm_answers_its_reply_through_the_handler(models):
    from pipelines.synthesize.handlers.llm import ChatLLMHandler

    assert len(parse_conversation(tiny.CHAT_REPLY)) == 2
    handler = ChatLLMHandler(str(models["chat_lm"]), device="cpu", max_new_tokens=48)
    chats = [conversation_messages("A giraffe ##q eats leaves from a tall tree next to a zebra."),
             conversation_messages(""),
             rephrase_messages("question", "What is on the table?", ["crockery"])]
    replies = handler.run_inference(chats, handler.load_model())  # one batch: left-padded
    assert [r.inference for r in replies] == [tiny.CHAT_REPLY] * 3


def check_refusals(summary: dict, out: Path, method: str) -> list[dict]:
    """Every try is a record or a failure; the method made nothing, each of its tries refused with
    a reason the checks name and the reply it refused (what it owed went to synonym replacement)."""
    from adr.reply_checks import REASONS

    failed = read_jsonl(out / "failed")
    assert summary["offers_tried"] == summary["synthetic"] + summary["offers_failed"] == len(failed) + \
        summary["synthetic"]
    assert summary["made"][method] == 0 and summary["made"]["synonym"] == summary["synthetic"]
    refused = [f for f in failed if f["method"] == method and f["reason"] != "bad-image"]  # bad-image: a missing file
    assert refused and all(f["reason"] in REASONS for f in refused)
    assert all("reply: " in f["detail"] for f in refused)  # what the model wrote, for the user to read
    assert all(r["adr"]["method"] == "synonym" for r in read_jsonl(out / "synthetic"))
    return refused


def test_visual_replies_that_fail_the_checks_never_become_records(corpus, models, tmp_path):
    """The trained LM answers one fixed conversation ("What is in the image? The image shows a
    small object.") whatever the caption: it names no seed's tail entity and says "object", which
    no caption of the tiny captioner holds, so every reply is refused; the diffused images are
    still written under their digests."""
    root, rebalanced = corpus
    out = tmp_path / "visual"
    summary = synthesize(corpus, out, "--budget", "2", "--mix", "visual=1", "--image-model", str(models["img2img"]),
                         "--image-variant", "img2img", "--caption-model", str(models["captioner"]),
                         "--llm", str(models["chat_lm"]), "--size", "64", "--steps", "2", "--max-new-tokens", "40",
                         "--caption-max-new-tokens", "6", "--batch-size", "2", "--device", "cpu", "--overdraw", "1")
    failed = check_refusals(summary, out, "visual")
    assert {f["reason"] for f in failed} <= {"unsupported-noun", "missing-target", "not-a-question"}
    assert all(parse_conversation(tiny.CHAT_REPLY)[1]["value"] in f["detail"] for f in failed)
    images = list((out / "images" / steps.IMAGE_DIR).glob("*.png"))
    assert images and all(len(p.stem) >= 16 for p in images)
    assert len(read_jsonl(out / "refined")) == rebalanced["kept"] + summary["synthetic"] == summary["refined"]


def test_rewrite_replies_that_fail_the_checks_never_become_records(corpus, models, tmp_path):
    """Asked to reword a question or an answer, the trained LM answers its fixed conversation:
    a chatty reply ("Question: ..."), refused with its reason."""
    root, rebalanced = corpus
    out = tmp_path / "rewrite"
    summary = synthesize(corpus, out, "--budget", "2", "--mix", "rewrite=1", "--llm", str(models["chat_lm"]),
                         # replies long enough for the five-caption answers to be handed to it
                         "--max-new-tokens", "160", "--batch-size", "2", "--device", "cpu",
                         "--rewrite-alternatives", "1", "--overdraw", "1")
    failed = check_refusals(summary, out, "rewrite")
    assert {f["reason"] for f in failed} == {"chatty-reply"}
    assert len(read_jsonl(out / "refined")) == rebalanced["kept"] + summary["synthetic"]


# ---- batch invariance: Beam's BatchElements groups elements differently from run to run ----------
#
# Batched kernels round differently by batch shape (a single Linear or conv differs in the last
# bits between a batch of 4 and of 1 on this CPU; an LLM's left padding changes shapes too), so
# batched model calls agree only up to float rounding: the image-variation pipeline gave a pixel
# one level off, hence another PNG and file name. The handlers therefore call the model on one
# element at a time by default (batch_invariant); these tests fail if an element's output depends
# on what it was batched with, and check that no model call saw more than one element.

GROUPINGS = ([[0, 1, 2, 3]], [[0], [1, 2], [3]], [[3, 1], [0, 2]])


def by_grouping(handler, elements: list, output, method: str, inference_args=None) -> list[list]:
    """Each element's output under each GROUPINGS entry (batches of element indices), in element
    order, from one loaded model; `method` is the model's method the handler calls per model call."""
    model = handler.load_model()
    sizes = []
    inner = getattr(model, method)
    setattr(model, method, lambda first, *args, **kw: sizes.append(len(first)) or inner(first, *args, **kw))
    results = []
    for grouping in GROUPINGS:
        got = {}
        for batch in grouping:
            for i, result in zip(batch, handler.run_inference([elements[i] for i in batch], model,
                                                                  inference_args)):
                got[i] = output(result.inference)
        results.append([got[i] for i in range(len(elements))])
    assert sizes == [1] * (len(elements) * len(GROUPINGS))
    return results


def coco_images(n: int = 4) -> list:
    return [Image.open(p).convert("RGB") for p in sorted(COCO_IMAGES.glob("*.jpg"))[:n]]


@pytest.mark.needs_shared
@pytest.mark.parametrize("variant", ["img2img", "variation", "controlnet"])
def test_diffusion_output_does_not_depend_on_the_batching(models, variant):
    from pipelines.synthesize.handlers.diffusion import DiffusionHandler, SeedImage

    handler = DiffusionHandler(str(models[variant]), variant=variant, steps=2, size=64, candidates=2, device="cpu")
    prompts = ["a photo of a dog", "a cat", "a photo of a red bus on a wet street at dusk", ""]
    elements = [SeedImage(f"seed-{i}", image, prompt) for i, (image, prompt) in enumerate(zip(coco_images(), prompts))]
    whole, split, shuffled = by_grouping(handler, elements, np.asarray, "generate")
    for i in range(len(elements)):
        assert np.array_equal(whole[i], split[i]) and np.array_equal(whole[i], shuffled[i]), (variant, i)
    assert not np.array_equal(whole[0], whole[1])


@pytest.mark.needs_shared
@pytest.mark.parametrize("kind", ["captioner", "captioner_llava"])
def test_captions_do_not_depend_on_the_batching(models, kind):
    from pipelines.synthesize.handlers.captioning import CaptionHandler

    handler = CaptionHandler(str(models[kind]), device="cpu", max_new_tokens=12)
    whole, split, shuffled = by_grouping(handler, coco_images(), str, "caption", {"min_new_tokens": 8})
    assert whole == split == shuffled and all(whole)


@pytest.mark.parametrize("lm, temperature", [("causal_lm", 0.0), ("causal_lm", 1.0), ("chat_lm", 0.0)])
def test_llm_replies_do_not_depend_on_the_batching(models, lm, temperature):
    """Prompts of different lengths, so that batched they would be padded differently; sampled
    replies (temperature > 0) too, each from an RNG seeded by its own prompt."""
    from pipelines.synthesize.handlers.llm import ChatLLMHandler

    handler = ChatLLMHandler(str(models[lm]), device="cpu", max_new_tokens=40, temperature=temperature)
    chats = [conversation_messages("a dog"),
             rephrase_messages("question", "What color is the bus?", ["omnibus"]),
             conversation_messages("Two people ride bicycles down a city street past a parked truck and a bench."),
             rephrase_messages("answer", "A bowl of fruit on a wooden kitchen table, next to a knife, a cup and "
                                         "a spoon.", [])]
    # Random weights end a reply at once, or repeat one token: make them write 24 varied tokens.
    forced = {"min_new_tokens": 24, "no_repeat_ngram_size": 2} if lm == "causal_lm" else None
    whole, split, shuffled = by_grouping(handler, chats, str, "reply", forced)
    assert whole == split == shuffled
    if lm == "chat_lm":
        assert whole == [tiny.CHAT_REPLY] * 4
    else:
        assert all(whole) and len(set(whole)) > 1
