"""Benchmark: each synthesis handler's throughput by batch size, on whatever device is present.

    python benchmarks/synthesis.py --scale tiny   # CPU-sized random models (runs anywhere)
    python benchmarks/synthesis.py --scale real   # SD 1.5 shapes at 512 px, a 1B-class LLM (GPU)

Models are random-weight, built from configs and saved, then loaded through the handlers' own
path (`from_pretrained` of a local directory), so the work per image/token is that of real
checkpoints of the same shapes. Each handler is timed through `run_inference`, the call Beam's
RunInference makes: images/s for diffusion, generated tokens/s for captioning and the LLM. On a
GPU it also samples GPU utilisation (NVML) during the diffusion step.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def build_real_sd(path: Path, variant: str) -> Path:
    """Stable Diffusion 1.5 shapes: UNet (320, 640, 1280, 1280), 4-block VAE, CLIP ViT-L/14 encoders."""
    import diffusers
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPVisionConfig, CLIPVisionModelWithProjection

    from tests.tiny_models import _clip_image_processor, clip_tokenizer

    if (path / "model_index.json").exists():
        return path
    unet = diffusers.UNet2DConditionModel(sample_size=64, cross_attention_dim=768)
    vae = diffusers.AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                                  down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                                  sample_size=512)
    scheduler = diffusers.PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                        skip_prk_steps=True)
    if variant == "variation":
        encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(hidden_size=1024, intermediate_size=4096,
                                                                 num_hidden_layers=24, num_attention_heads=16,
                                                                 image_size=224, patch_size=14, projection_dim=768))
        pipe = diffusers.StableDiffusionImageVariationPipeline(
            vae=vae, image_encoder=encoder, unet=unet, scheduler=scheduler, safety_checker=None,
            feature_extractor=_clip_image_processor(224), requires_safety_checker=False)
    else:
        tok = clip_tokenizer()
        text = CLIPTextModel(CLIPTextConfig(vocab_size=len(tok), hidden_size=768, intermediate_size=3072,
                                            num_hidden_layers=12, num_attention_heads=12))
        pipe = diffusers.StableDiffusionImg2ImgPipeline(vae=vae, text_encoder=text, tokenizer=tok, unet=unet,
                                                        scheduler=scheduler, safety_checker=None,
                                                        feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(path, safe_serialization=True)
    return path


def build_real_llm(path: Path) -> Path:
    """A 1.1B-parameter Llama shape (TinyLlama-1.1B: 22 layers, width 2048, GQA 32/4)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from tests.tiny_models import bpe_tokenizer

    if (path / "config.json").exists():
        return path
    tok = bpe_tokenizer()
    config = LlamaConfig(vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                         num_attention_heads=32, num_key_value_heads=4, max_position_embeddings=4096,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return path


class GpuBusy:
    """Fraction of NVML samples with the GPU busy, while the block runs."""

    def __enter__(self):
        self.samples, self._stop = [], threading.Event()
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(0)
            self._read = lambda: pynvml.nvmlDeviceGetUtilizationRates(handle).gpu
        except Exception:
            self._read = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while self._read and not self._stop.is_set():
            self.samples.append(self._read())
            time.sleep(0.05)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def busy_pct(self):
        return round(sum(self.samples) / len(self.samples), 1) if self.samples else None


def timed(fn, repeats: int = 2):
    fn()  # warm-up: kernels, caches, first allocation
    start = time.perf_counter()
    for _ in range(repeats):
        out = fn()
    return (time.perf_counter() - start) / repeats, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", choices=("tiny", "real"), default="tiny")
    ap.add_argument("--models", default="/tmp/adr-bench/models")
    ap.add_argument("--batch-sizes", default="1,2,4,8")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--images", default=str(ROOT.parent / "shared" / "data" / "coco_tiny" / "val2017"), help="a folder holding the seed image 000000532481.jpg")
    args = ap.parse_args()
    import torch
    from PIL import Image

    from adr.prompts import conversation_messages
    from pipelines.synthesize.handlers.captioning import CaptionHandler
    from pipelines.synthesize.handlers.diffusion import DiffusionHandler, SeedImage
    from pipelines.synthesize.handlers.llm import ChatLLMHandler
    from tests import tiny_models as tiny

    if not torch.cuda.is_available():
        torch.set_num_threads(max(1, os.cpu_count() or 1))
    models = Path(args.models) / args.scale
    size = 512 if args.scale == "real" else tiny.SD_IMAGE
    if args.scale == "real":
        paths = {"img2img": build_real_sd(models / "sd15-img2img", "img2img"),
                 "variation": build_real_sd(models / "sd15-variation", "variation"),
                 "llm": build_real_llm(models / "llama-1b")}
    else:
        paths = {"img2img": tiny.build_sd_img2img(models / "sd-img2img"),
                 "variation": tiny.build_sd_image_variation(models / "sd-variation"),
                 "llm": tiny.build_causal_lm(models / "llm")}
    paths["captioner"] = tiny.build_captioner(models / "captioner")
    seed_image = Image.open(Path(args.images) / "000000532481.jpg")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    results = {"device": torch.cuda.get_device_name(0) if device == "cuda" else f"cpu x{os.cpu_count()}",
               "scale": args.scale, "size": size, "steps": args.steps, "rows": []}
    for variant in ("img2img", "variation"):
        handler = DiffusionHandler(str(paths[variant]), variant=variant, device=device, steps=args.steps,
                                   size=size, candidates=1)
        model = handler.load_model()
        for bs in map(int, args.batch_sizes.split(",")):
            batch = [SeedImage(f"s{i}", seed_image, "a photo of a cat") for i in range(bs)]
            with GpuBusy() as gpu:
                seconds, _ = timed(lambda: handler.run_inference(batch, model))
            results["rows"].append({"handler": f"diffusion-{variant}", "batch": bs, "images_per_s": round(bs / seconds, 3),
                                    "gpu_busy_pct": gpu.busy_pct})
            print(json.dumps(results["rows"][-1]), file=sys.stderr, flush=True)  # a row as soon as measured
        del model
    # Random weights stop at once: fix the length (min = max new tokens) so every row generates
    # exactly batch x new_tokens tokens.
    for name, new_tokens, handler, make in (
        ("caption", 32, CaptionHandler(str(paths["captioner"]), device=device, max_new_tokens=32, batch_invariant=False),
         lambda bs: [seed_image] * bs),
        ("llm", 64, ChatLLMHandler(str(paths["llm"]), device=device, max_new_tokens=64, large_model=False,
                                     batch_invariant=False),
         lambda bs: [conversation_messages("A cat sleeps on a red sofa next to a lamp.")] * bs),
    ):
        model = handler.load_model()
        for bs in map(int, args.batch_sizes.split(",")):
            seconds, _ = timed(lambda: handler.run_inference(make(bs), model, {"min_new_tokens": new_tokens}))
            results["rows"].append({"handler": name, "batch": bs, "new_tokens": new_tokens,
                                    "tokens_per_s": round(bs * new_tokens / seconds, 1)})
            print(json.dumps(results["rows"][-1]), file=sys.stderr, flush=True)
    results["model_bytes"] = {k: sum(f.stat().st_size for f in Path(p).rglob("*") if f.is_file())
                              for k, p in paths.items()}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
