"""Benchmark: the rewrite method with a real instruct LLM (SmolLM2-135M-Instruct, GGUF), on CPU.

    python -m benchmarks.llm_rewrite --rebalanced OUT/rebalanced --dictionary OUT/stats [--seeds 40]

Runs the stage's own steps (rewrite_requests -> ChatLLMHandler -> rewritten_record) on the first
seeds with a tail token, and prints: generated tokens/s by batch size, the share of seeds whose
replies passed every check, the rejection reasons, and accepted and rejected rewrites beside
their seeds (for benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
DEFAULT_MODEL = Path(sys.prefix) / "models" / "SmolLM2-135M-Instruct"


def seeds(rebalanced: str, counts: dict, tau: int, n: int) -> list:
    from pipelines.outputs import iter_jsonl, join
    from pipelines.synthesize.steps import Seed

    out = []
    for row in iter_jsonl(join(rebalanced, "seeds", "*.jsonl")):
        tail = [e for e in (row["tail_entities"].get("token") or ()) if counts.get(e, 0) <= tau]
        if tail:
            target = min(tail, key=lambda e: (counts.get(e, 0), e))
            out.append(Seed("rewrite", 0.0, row["key"], row["id"], row.get("image"), row["tail_entities"],
                            row["record"], ("token", target), None, tuple(row["entities"]["token"])))
        if len(out) == n:
            break
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rebalanced", required=True)
    ap.add_argument("--dictionary", required=True)
    ap.add_argument("--llm", default=str(DEFAULT_MODEL))
    ap.add_argument("--seeds", type=int, default=40)
    ap.add_argument("--alternatives", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from pipelines.synthesize.handlers.llm import ChatLLMHandler
    from pipelines.synthesize.steps import by_candidate, rewrite_requests, rewritten_record
    from pipelines.checks import stats_manifest
    from udfs.artifacts import read_dictionary

    manifest = stats_manifest(args.dictionary)
    counts = read_dictionary(args.dictionary, ("token",), "count")["token"]
    tau = manifest["perspectives"]["token"]["tau"]
    chosen = seeds(args.rebalanced, counts, tau, args.seeds)

    # Throughput by batch size: one model call per batch (batch_invariant off), greedy replies.
    speed = {}
    for size in (1, 4, 8):
        handler = ChatLLMHandler(args.llm, device="cpu", max_new_tokens=args.max_new_tokens, batch_invariant=False)
        model = handler.load_model()
        prompts = [m for s in chosen[:8] for (_, m) in
                   (e for e in rewrite_requests(s, counts, tau) if isinstance(e, tuple))][:8]
        start, tokens = time.perf_counter(), 0
        for i in range(0, len(prompts), size):
            for reply in model.reply(prompts[i:i + size], args.max_new_tokens, 0.0, {}):
                tokens += len(model.tokenizer(reply, add_special_tokens=False).input_ids)
        speed[size] = round(tokens / (time.perf_counter() - start), 1)

    handler = ChatLLMHandler(args.llm, device="cpu", max_new_tokens=args.max_new_tokens)
    model = handler.load_model()
    reasons, accepted, rejected = collections.Counter(), [], []
    start = time.perf_counter()
    for seed in chosen:
        requests = [e for e in rewrite_requests(seed, counts, tau) if isinstance(e, tuple)]
        if not requests:
            reasons["no-rewritable-piece"] += 1
            continue
        results = handler.run_inference([m for _, m in requests], model, {"alternatives": args.alternatives})
        grouped = [by_candidate((key, result)) for (key, _), result in zip(requests, results)]
        out = list(rewritten_record((grouped[0][0], [g[1] for g in grouped]), {"llm": args.llm}, {"seed": 42}, 42,
                                    None))
        for item in out:
            if hasattr(item, "tag"):
                reasons[item.value["reason"]] += 1
                rejected.append((seed.record["conversations"], item.value["reason"], item.value["detail"]))
            else:
                reasons["accepted"] += 1
                accepted.append((seed.record["conversations"], item[1]["conversations"]))
    took = time.perf_counter() - start
    report = {"model": args.llm, "seeds": len(chosen), "tokens_per_s_by_batch": speed,
              "accepted": reasons["accepted"], "share_accepted": round(reasons["accepted"] / max(1, len(chosen)), 3),
              "reasons": dict(reasons.most_common()), "seconds": round(took, 1),
              "alternatives": args.alternatives}
    print(json.dumps(report, indent=1))
    for before, after in accepted[:6]:
        print("ACCEPTED\n  seed: " + json.dumps(before)[:400] + "\n  new:  " + json.dumps(after)[:400])
    for before, reason, detail in rejected[:8]:
        print(f"REJECTED {reason}\n  seed: " + json.dumps(before)[:300] + "\n  why:  " + detail[:300])
