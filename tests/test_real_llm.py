"""The LLM paths against a real instruct model: SmolLM2-135M-Instruct as a GGUF file, installed
by `make install` (scripts/install_smollm2.py), loaded through the stage's own handler.

A model this small mostly echoes, answers instead of rewording, or changes the question; these
tests hold the checks to what it really writes: nothing it says becomes a record unless every
check passes, and each refusal names its reason and carries the reply.
"""

import subprocess
import sys
from pathlib import Path

import pytest
from apache_beam.ml.inference.base import PredictionResult

from adr.errors import ConfigError
from adr.reply_checks import REASONS
from adr.rewrite import rewritable_pieces
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


def test_real_rewrites_become_records_only_when_every_check_passes(corpus, smollm2):
    """The first seeds with rewritable pieces, through the stage's own steps."""
    from udfs.artifacts import read_dictionary

    root, _ = corpus
    handler, model = smollm2
    counts = read_dictionary(str(root / "stats"), ("token",), "count")["token"]
    rows = [r for r in read_jsonl(root / "rebalanced" / "seeds") if r["tail_entities"].get("token")]
    made, refused = [], []
    for row in rows[:3]:
        target = min(row["tail_entities"]["token"], key=lambda e: (counts.get(e, 0), e))
        seed = steps.Seed("rewrite", 0.5, row["key"], row["id"], row.get("image"), row["tail_entities"],
                          row["record"], ("token", target), None, tuple(row["entities"]["token"]))
        requests = [e for e in steps.rewrite_requests(seed, counts, 10 ** 6) if isinstance(e, tuple)]
        assert len(requests) == len(rewritable_pieces(requests[0][0][0].seed_turns))
        results = handler.run_inference([m for _, m in requests], model, {"alternatives": 2})
        grouped = [steps.by_candidate((key, r)) for (key, _), r in zip(requests, results)]
        for out in steps.rewritten_record((grouped[0][0], [g[1] for g in grouped]), {"llm": str(GGUF)},
                                          {"seed": 42}, 42, None):
            (refused if hasattr(out, "tag") else made).append(out)
    assert len(made) + len(refused) == 3
    for failure in refused:
        assert failure.tag == steps.FAILED and failure.value["reason"] in REASONS
        assert "reply: " in failure.value["detail"] and failure.value["made_for"][0] == "token"
    for work, record in made:
        target = work.target[1]
        assert any(target in t["value"].lower() for t in record["conversations"])
        assert record["conversations"] != list(work.seed_turns)


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
