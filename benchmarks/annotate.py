"""Benchmark: zero-shot object grounding throughput (images/s) by batch size, on the present device.

    python benchmarks/annotate.py --scale tiny   # the tests' tiny Grounding DINO (runs anywhere)
    python benchmarks/annotate.py --scale real   # Grounding-DINO-base shapes at 800 px (GPU)

The detector is random-weight, built from a config and saved, then timed through
DetectionHandler.run_inference (what RunInference calls) on real COCO_Tiny images, prompted
with 20 COCO category names (one prompt chunk). The baseline is batch size 1 in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
LABELS = ("person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "bench",
          "bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe")


def build_real_grounding_dino(path: Path) -> Path:
    """Grounding DINO base shapes: Swin-B backbone (embed 128, depths 2-2-18-2), BERT-base text,
    900 queries, 6+6 layers; the processor resizes to 800 px on the short side."""
    from transformers import (
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
    )

    from tests.tiny_models import bert_tokenizer

    if (path / "config.json").exists():
        return path
    tok = bert_tokenizer()
    config = GroundingDinoConfig(
        backbone_config=dict(model_type="swin", image_size=384, patch_size=4, embed_dim=128, depths=[2, 2, 18, 2],
                             num_heads=[4, 8, 16, 32], window_size=12, out_indices=[2, 3, 4]),
        text_config=dict(model_type="bert", vocab_size=30522, hidden_size=768, num_hidden_layers=12,
                         num_attention_heads=12, intermediate_size=3072, max_position_embeddings=512,
                         pad_token_id=tok.pad_token_id),
        max_text_len=256)
    GroundingDinoForObjectDetection(config).eval().save_pretrained(path, safe_serialization=True)
    processor = GroundingDinoProcessor(
        image_processor=GroundingDinoImageProcessor(size={"shortest_edge": 800, "longest_edge": 1333}), tokenizer=tok)
    processor.save_pretrained(path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", choices=("tiny", "real"), default="tiny")
    ap.add_argument("--models", default="/tmp/adr-bench/models")
    ap.add_argument("--batch-sizes", default="1,2,4,8,16")
    ap.add_argument("--images", default=str(ROOT.parent / "shared" / "data" / "coco_tiny" / "val2017"), help="a folder of JPEGs (COCO_Tiny by default)")
    args = ap.parse_args()
    import torch
    from PIL import Image

    from pipelines.annotate.detection import DetectionHandler, GroundingRequest
    from tests import tiny_models as tiny

    root = Path(args.models) / args.scale
    path = (build_real_grounding_dino(root / "gdino-base") if args.scale == "real"
            else tiny.build_zero_shot_detector(root / "gdino", kind="grounding-dino"))
    images = [Image.open(p).convert("RGB") for p in
              sorted(Path(args.images).glob("*.jpg"))[:16]]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    handler = DetectionHandler(str(path), device=device, box_threshold=0.4, text_threshold=0.3)
    model = handler.load_model()
    rows = []
    for bs in map(int, args.batch_sizes.split(",")):
        batch = [GroundingRequest(f"i{i}", images[i % len(images)], LABELS) for i in range(bs)]
        handler.run_inference(batch, model)  # warm-up
        start = time.perf_counter()
        repeats = 3
        for _ in range(repeats):
            handler.run_inference(batch, model)
        seconds = (time.perf_counter() - start) / repeats
        rows.append({"batch": bs, "images_per_s": round(bs / seconds, 2)})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)  # a row as soon as measured
    base = rows[0]["images_per_s"]
    for row in rows:
        row["vs_batch_1"] = round(row["images_per_s"] / base, 2)
    print(json.dumps({"device": torch.cuda.get_device_name(0) if device == "cuda" else f"cpu x{os.cpu_count()}",
                      "scale": args.scale, "labels": len(LABELS), "rows": rows,
                      "model_bytes": sum(f.stat().st_size for f in path.rglob("*") if f.is_file())}, indent=2))


if __name__ == "__main__":
    main()
