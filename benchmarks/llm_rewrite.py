"""Benchmark: the rewrite method with a real instruct LLM (SmolLM2-135M-Instruct, GGUF), on CPU.

    python -m benchmarks.llm_rewrite --rebalanced OUT/rebalanced --dictionary OUT/stats [--budget 6]

Prints the generated tokens/s by batch size (the stage's handler, greedy replies), then runs
`adr synthesize --mix rewrite=1` itself with the real model and reports from its outputs: the
budget and what was made, the share of tries accepted, the refusal reasons (failed/), and
accepted and refused rewrites beside their seeds (for benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
DEFAULT_MODEL = Path(sys.prefix) / "models" / "SmolLM2-135M-Instruct"


def tokens_per_second(llm: str, rebalanced: str, max_new_tokens: int) -> dict[int, float]:
    """Greedy rewording replies to the first eight question lines of the seeds, by batch size."""
    from adr.prompts import rephrase_messages
    from adr.rewrite import QUESTION, rewritable_pieces
    from pipelines.outputs import iter_jsonl, join
    from pipelines.synthesize.handlers.llm import ChatLLMHandler

    questions = []
    for row in iter_jsonl(join(rebalanced, "seeds", "*.jsonl")):
        questions += [p.text for p in rewritable_pieces(row["record"]["conversations"]) if p.kind == QUESTION]
        if len(questions) >= 8:
            break
    prompts = [rephrase_messages(QUESTION, q, []) for q in questions[:8]]
    handler = ChatLLMHandler(llm, device="cpu", max_new_tokens=max_new_tokens, batch_invariant=False)
    model = handler.load_model()
    speed = {}
    for size in (1, 4, 8):
        start, tokens = time.perf_counter(), 0
        for i in range(0, len(prompts), size):
            for reply in model.reply(prompts[i:i + size], max_new_tokens, 0.0, {}):
                tokens += len(model.tokenizer(reply, add_special_tokens=False).input_ids)
        speed[size] = round(tokens / (time.perf_counter() - start), 1)
    return speed


def seed_turns(rebalanced: str) -> dict[str, list]:
    from pipelines.outputs import iter_jsonl, join

    return {row["key"]: row["record"]["conversations"] for row in iter_jsonl(join(rebalanced, "seeds", "*.jsonl"))}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rebalanced", required=True)
    ap.add_argument("--dictionary", required=True)
    ap.add_argument("--output", default="/tmp/adr-llm-rewrite")
    ap.add_argument("--llm", default=str(DEFAULT_MODEL))
    ap.add_argument("--budget", type=int, default=6)
    ap.add_argument("--alternatives", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("extra", nargs="*", help="more `adr synthesize` options, after --")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from pipelines.outputs import iter_jsonl

    speed = tokens_per_second(args.llm, args.rebalanced, args.max_new_tokens)
    command = [sys.executable, "-m", "pipelines.cli", "synthesize", "--rebalanced", args.rebalanced,
               "--dictionary", args.dictionary, "--output", args.output, "--mix", "rewrite=1",
               "--budget", str(args.budget), "--llm", args.llm, "--device", "cpu",
               "--rewrite-alternatives", str(args.alternatives), "--max-new-tokens", str(args.max_new_tokens),
               *args.extra]
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    took = time.perf_counter() - start
    summary = json.loads(Path(args.output, "summary.json").read_text())
    made = list(iter_jsonl(str(Path(args.output, "synthetic", "*.jsonl"))))
    failed = [f for f in iter_jsonl(str(Path(args.output, "failed", "*.jsonl"))) if f["method"] == "rewrite"]
    # Every drawn offer is tried; the accepted ones past the budget are left out of synthetic/.
    # Rewrite's own tries only: a shortfall handed to synonym replacement is tried there.
    tries, refused = summary["offers_tried_by_method"]["rewrite"], len(failed)
    report = {"model": args.llm, "tokens_per_s_by_batch": speed, "budget": args.budget,
              "made": summary["made"]["rewrite"], "handed_on": summary["reassigned"], "budget_met": summary["budget_met"], "rounds": summary["rounds"],
              "tries": tries, "accepted": tries - refused, "share_accepted": round((tries - refused) / max(1, tries), 3),
              "reasons": dict(Counter(f["reason"] for f in failed)), "seconds": round(took, 1), "alternatives": args.alternatives}
    print(json.dumps(report, indent=1))
    seeds = seed_turns(args.rebalanced)
    for record in made:
        if record["adr"]["method"] != "rewrite":
            continue
        kept = record["adr"]["parameters"].get("kept_as_seed", [])
        print("ACCEPTED (made for " + record["adr"]["made_for"]["entity"] + f", {len(kept)} piece(s) kept as the seed's)"
              + "\n  seed: " + json.dumps(seeds.get(record["adr"]["seed_key"]))[:400]
              + "\n  new:  " + json.dumps(record["conversations"])[:400])
    for failure in failed[:10]:
        print(f"REFUSED {failure['reason']}\n  seed: " + json.dumps(seeds.get(failure["seed_key"]))[:300]
              + "\n  why:  " + failure["detail"][:300])
