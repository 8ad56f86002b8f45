"""A diffusers ModelHandler: a new image from a scarce seed image (Beam has none for diffusers).

Variants (spec: 'Visual synthesis'):
  variation   Stable Diffusion image variations, conditioned on the seed's CLIP image embedding;
              `candidates` images per seed, the one closest to the seed by CLIP similarity kept
              (the pipeline's own image encoder measures it). Published: guidance 3, 2 candidates.
  controlnet  ControlNet on the seed's edge map (SD 1.5, 20 steps, guidance 9, 512 px).
  img2img     plain image-to-image (strength 0.75).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from apache_beam.ml.inference.base import PredictionResult

from pipelines.torch_env import BatchedHandler, generator
from udfs.images import edge_map, square

VARIANTS = ("variation", "controlnet", "img2img")
DEFAULTS = {
    "variation": {"steps": 50, "guidance": 3.0},
    "controlnet": {"steps": 20, "guidance": 9.0},
    "img2img": {"steps": 50, "guidance": 7.5},
}


@dataclass(frozen=True)
class SeedImage:
    """What the diffusion step sees: the seed's id (for its generator), image and text prompt."""
    key: str
    image: Any
    prompt: str = ""


class DiffusionHandler(BatchedHandler):
    def __init__(self, model: str, *, variant: str = "variation", device: str = "auto",
                 steps: int | None = None, guidance: float | None = None, size: int = 512,
                 strength: float = 0.75, candidates: int = 2, seed: int = 42,
                 min_batch_size: int = 1, max_batch_size: int = 4, max_batch_duration_secs: int | None = None,
                 large_model: bool = True, model_copies: int | None = None, batch_invariant: bool = True):
        if variant not in VARIANTS:
            from adr.errors import ConfigError

            raise ConfigError(f"diffusion variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
        super().__init__(model, device=device, min_batch_size=min_batch_size, max_batch_size=max_batch_size,
                         max_batch_duration_secs=max_batch_duration_secs, large_model=large_model,
                         model_copies=model_copies, namespace=f"adr_diffusion_{variant}",
                         batch_invariant=batch_invariant)
        self._variant = variant
        self._steps = steps or DEFAULTS[variant]["steps"]
        self._guidance = DEFAULTS[variant]["guidance"] if guidance is None else guidance
        self._size = size
        self._strength = strength
        self._candidates = max(1, candidates) if variant == "variation" else 1
        self._seed = seed
        if variant == "img2img" and int(self._steps * strength) < 1:
            from adr.errors import ConfigError

            raise ConfigError(f"img2img with {self._steps} steps at strength {strength} would denoise 0 steps")

    def load_model(self) -> DiffusionModel:
        import diffusers

        cls = {"variation": diffusers.StableDiffusionImageVariationPipeline,
               "controlnet": diffusers.StableDiffusionControlNetPipeline,
               "img2img": diffusers.AutoPipelineForImage2Image}[self._variant]
        pipe, device = self.load_pretrained(cls, self.model_files())
        pipe.set_progress_bar_config(disable=True)  # the denoising loop's own bar
        return DiffusionModel(pipe, self._variant, device)

    def run_inference(self, batch: Sequence[SeedImage], model, inference_args=None) -> Iterable[PredictionResult]:
        images = [image for group in self.model_calls(batch) for image in model.generate(
            [e.image for e in group], [e.prompt for e in group], [e.key for e in group], seed=self._seed,
            size=self._size, steps=self._steps, guidance=self._guidance, strength=self._strength,
            candidates=self._candidates, extra=inference_args or {})]
        return [PredictionResult(e, img, self._model) for e, img in zip(batch, images)]



class DiffusionModel:
    """A loaded diffusers pipeline and what to do with it. RunInference may host it in another
    process (large_model) and call it through a proxy, which passes method calls but not
    attribute access: the work is done in methods, on the model's side."""

    def __init__(self, pipe, variant: str, device: str):
        self.pipe, self.variant, self.device = pipe, variant, device

    def generate(self, images: list, prompts: list[str], keys: list[str], *, seed: int, size: int, steps: int,
                 guidance: float, strength: float, candidates: int, extra: dict) -> list:
        import torch

        pipe = self.pipe
        images = [square(image, size) for image in images]
        generators = [generator(self.device, seed, f"{key}#{c}") for key in keys for c in range(candidates)]
        common = {"num_inference_steps": steps, "guidance_scale": guidance, "generator": generators, **extra}
        with torch.inference_mode():
            if self.variant == "variation":
                out = pipe(image=images, num_images_per_prompt=candidates, height=size, width=size, **common).images
                return self.closest(images, out, candidates)
            if self.variant == "controlnet":
                return pipe(prompt=prompts, image=[edge_map(i) for i in images], height=size, width=size,
                            **common).images
            return pipe(prompt=prompts, image=images, strength=strength, **common).images

    def closest(self, seeds: list, candidates: list, per_seed: int) -> list:
        """Per seed, the candidate whose CLIP image embedding (the pipeline's own encoder) has
        the highest cosine similarity to the seed's."""
        if per_seed == 1:
            return candidates
        import torch

        encoder = self.pipe.image_encoder
        pixels = self.pipe.feature_extractor(images=seeds + candidates, return_tensors="pt").pixel_values
        with torch.inference_mode():
            embeds = encoder(pixels.to(self.device, encoder.dtype)).image_embeds
        embeds = torch.nn.functional.normalize(embeds.float(), dim=-1)
        seed_emb, cand_emb = embeds[: len(seeds)], embeds[len(seeds):].view(len(seeds), per_seed, -1)
        best = (cand_emb @ seed_emb.unsqueeze(-1)).squeeze(-1).argmax(dim=1).tolist()
        return [candidates[i * per_seed + b] for i, b in enumerate(best)]
