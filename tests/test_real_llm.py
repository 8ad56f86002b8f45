"""The LLM paths against a real instruct model: SmolLM2-135M-Instruct as a GGUF file, installed
by `make install` (scripts/install_smollm2.py), loaded through the stage's own handler.

A model this small mostly echoes, answers instead of rewording, or changes the question; these
tests hold the checks to what it really writes: nothing it says becomes a record unless every
check passes, and each refusal names its reason and carries the reply.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from apache_beam.ml.inference.base import PredictionResult

from adr.errors import ConfigError
from adr.reply_checks import REASONS
from pipelines.synthesize import steps
from pipelines.synthesize.handlers.llm import ChatLLMHandler, render_chat
from tests.test_beam_synthesize import corpus, read_jsonl  # noqa: F401  (corpus: a fixture)
from udfs.model_files import language_model_files

GGUF = Path(sys.prefix) / "models" / "SmolLM2-135M-Instruct" / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def smollm2():
    assert GGUF.is_file(), f"{GGUF} missing: `make install` (scripts/install_smollm2.py) puts it there"
    handler = ChatLLMHandler(str(GGUF), device="cpu", max_new_tokens=40)
    return handler, handler.load_model()


def test_llm_takes_a_gguf_file_or_a_folder_holding_one(tmp_path):
    assert language_model_files(str(GGUF)) == language_model_files(str(GGUF.parent))
    assert language_model_files(str(GGUF)).load_kwargs() == {"gguf_file": GGUF.name}
    two = tmp_path / "two"
    two.mkdir()
    for name in ("a.gguf", "b.gguf"):
        (two / name).symlink_to(GGUF)
    with pytest.raises(ConfigError, match="holds 2 GGUF files"):
        language_model_files(str(two))
    with pytest.raises(ConfigError, match="no such file"):
        language_model_files(str(tmp_path / "none.gguf"))


def test_the_gguf_model_answers_through_its_own_chat_template(smollm2):
    handler, model = smollm2
    messages = [{"role": "user", "content": "Name one animal with stripes."}]
    assert "<|im_start|>assistant" in render_chat(model.tokenizer, messages)  # the GGUF's template
    (result,) = handler.run_inference([messages], model)
    assert isinstance(result.inference, str) and result.inference.strip()
    (again,) = handler.run_inference([messages], model, {"alternatives": 3})
    assert len(again.inference) == 3 and again.inference[0] == result.inference  # greedy first


def test_replies_from_the_prompts_cached_head_equal_replies_read_whole(smollm2, monkeypatch):
    """The instructions and worked examples every rewrite request shares are read once and kept;
    a reply, greedy or sampled, is the one the model gives reading the whole prompt."""
    from adr.prompts import rephrase_messages
    from pipelines.synthesize.handlers.llm import ChatModel

    handler, model = smollm2
    requests = [rephrase_messages("question", q, words) for q, words in (
        ("Is the dog chasing the cat in the park?", []), ("Where is the bus parked?", []),
        ("What is the man wearing on his head?", ["cap"]))]
    cached = [handler.run_inference([m], model, {"alternatives": 3})[0].inference for m in requests]
    assert len(model._heads) >= 2  # the question head, and the one naming an offered word
    monkeypatch.setattr(ChatModel, "_head_cache", lambda self, messages, ids: None)
    whole = [handler.run_inference([m], model, {"alternatives": 3})[0].inference for m in requests]
    assert cached == whole


@pytest.fixture(scope="module")
def llm_run(shared_data, spark, tmp_path_factory):
    """`adr run --llm SmolLM2.gguf --mix rewrite=1` on a small LLaVA-shaped corpus, as a user runs
    it: (run directory, its records, the synthesize summary)."""
    from pipelines import run
    from scripts.make_llava_mix import generate, write
    from tests.conftest import NLP_ARGS, SHARED

    root = tmp_path_factory.mktemp("llm-run")
    records = list(generate(RECORDS, seed=11, data_dir=SHARED))
    write(root / "mix.json", records)
    run.run(["--input", str(root / "mix.json"), "--output", str(root / "run"), "--master", "local[2]",
             "--mix", "rewrite=1", "--budget", str(BUDGET), "--llm", str(GGUF), "--device", "cpu",
             "--rewrite-alternatives", "2", "--max-new-tokens", "32", "--ceiling", "1000", "--min-tail-share", "0",
             *NLP_ARGS], spark=spark)
    summary = json.loads((root / "run" / "synthesize" / "summary.json").read_text())
    return root / "run", records, summary


# A small corpus bounds the tries: SmolLM2-135M has 3.5% of them accepted (benchmarks/RESULTS.md),
# so its rewrite offers may run out, and what they leave is handed to synonym replacement.
RECORDS, BUDGET = 30, 1


@pytest.mark.slow
def test_adr_run_with_the_real_llm_meets_its_budget_with_records_that_pass_every_check(llm_run):
    from adr.protected import keeps_short_answers
    from adr.tail_turns import turns_for

    out, records, summary = llm_run
    assert summary["budget_met"] and summary["synthetic"] == BUDGET
    handed_on = sum(r["records"] for r in summary["reassigned"] if r["from"] == "rewrite")
    assert summary["made"]["rewrite"] + handed_on == BUDGET  # the shortfall is said, and refilled
    seeds = {r["key"]: r for r in read_jsonl(out / "rebalance" / "seeds")}
    made = [r for r in read_jsonl(out / "synthesize" / "synthetic") if r["adr"]["method"] == "rewrite"]
    assert len(made) == summary["made"]["rewrite"]
    for record in made:
        prov = record["adr"]
        seed = seeds[prov["seed_key"]]
        target = prov["made_for"]["entity"]
        before = turns_for(seed["record"], target)
        assert prov["method"] == "rewrite" and record["image"] == seed["record"].get("image")
        assert record["conversations"] != before and len(record["conversations"]) == len(before)
        assert keeps_short_answers(before, record["conversations"]) is None
        assert any(target in t["value"].lower() for t in record["conversations"])
        kept = prov["parameters"]["kept_as_seed"]
        assert len(kept) < prov["parameters"]["pieces"] and all(k["reason"] in REASONS for k in kept)
    refined = json.loads((out / "synthesize" / "refined" / "refined.json").read_text())
    assert len(refined) == summary["refined"] and sum(1 for r in refined if "adr" in r) == BUDGET
    failed = [f for f in read_jsonl(out / "synthesize" / "failed") if f["method"] == "rewrite"]
    assert failed, "a 135M model's replies are refused too"
    assert {f["reason"] for f in failed} <= set(REASONS) | {"no-rewritable-piece"}
    assert all("reply: " in f["detail"] for f in failed if f["reason"] != "no-rewritable-piece")
    assert sum(summary["failed_by_reason"].values()) == len(read_jsonl(out / "synthesize" / "failed"))


def test_a_conversation_from_a_real_caption_is_checked_against_it(smollm2):
    """The visual method's conversation step on the real LLM, from a real COCO caption: a
    record only if its answers name nothing the caption does not."""
    from adr.prompts import conversation_messages

    handler, model = smollm2
    caption = "A giraffe eating leaves from a tall tree next to a zebra in a grassy field."
    work = steps.Work("visual", 0.1, "k", "id", {"object": ["giraffe"]}, ("object", "giraffe"),
                      image="adr-synthetic/x.png", caption=caption)
    long_handler = ChatLLMHandler(str(GGUF), device="cpu", max_new_tokens=96)
    (result,) = long_handler.run_inference([conversation_messages(caption)], model)
    (out,) = steps.conversation_record((work, PredictionResult(None, result.inference, str(GGUF))), {"llm": "m"},
                                       {"seed": 42}, 42, None)
    if hasattr(out, "tag"):
        assert out.value["reason"] in REASONS and result.inference[:200] in out.value["detail"]
    else:
        assert "giraffe" in " ".join(t["value"] for t in out[1]["conversations"]).lower()


def test_a_missing_gguf_is_a_one_line_error(corpus, tmp_path):
    root, _ = corpus
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "synthesize", "--rebalanced", str(root / "rebalanced"),
                           "--dictionary", str(root / "stats"), "--output", str(tmp_path / "o"),
                           "--llm", str(tmp_path / "model.gguf")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "model.gguf" in proc.stderr and "no such file" in proc.stderr.strip().splitlines()[-1]
