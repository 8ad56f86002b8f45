"""A transformers image-to-text ModelHandler: "Please describe the image in detail."."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from apache_beam.ml.inference.base import PredictionResult

from adr.prompts import CAPTION_PROMPT
from pipelines.torch_env import BatchedHandler


class CaptionHandler(BatchedHandler):
    """PIL images in, captions out. Chat-style vision-language models get the prompt through
    their chat template; captioners such as BLIP get it as the text prefix."""

    def __init__(self, model: str, *, prompt: str = CAPTION_PROMPT, device: str = "auto",
                 max_new_tokens: int = 128, min_batch_size: int = 1, max_batch_size: int = 16,
                 max_batch_duration_secs: int | None = None, large_model: bool = False, model_copies: int | None = None,
                 batch_invariant: bool = True):
        super().__init__(model, device=device, min_batch_size=min_batch_size, max_batch_size=max_batch_size,
                         max_batch_duration_secs=max_batch_duration_secs, large_model=large_model,
                         model_copies=model_copies, namespace="adr_caption", batch_invariant=batch_invariant)
        self._prompt = prompt
        self._max_new_tokens = max_new_tokens

    def load_model(self) -> Captioner:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        files = self.model_files()
        model, device = self.load_pretrained(AutoModelForImageTextToText, files)
        return Captioner(AutoProcessor.from_pretrained(files.folder), model, device)

    def run_inference(self, batch: Sequence[Any], model, inference_args=None) -> Iterable[PredictionResult]:
        captions = [caption for group in self.model_calls(batch) for caption in model.caption(
            [image.convert("RGB") for image in group], self._prompt, self._max_new_tokens, inference_args or {})]
        return [PredictionResult(image, caption, self._model) for image, caption in zip(batch, captions)]



class Captioner:
    """A loaded processor and model; methods do the work (see diffusion.DiffusionModel for why)."""

    def __init__(self, processor, model, device: str):
        self.processor, self.model, self.device = processor, model, device

    def caption(self, images: list, prompt: str, max_new_tokens: int, extra: dict) -> list[str]:
        import torch

        processor, net = self.processor, self.model
        text = prompt
        if getattr(processor, "chat_template", None):
            messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
            text = processor.apply_chat_template(messages, add_generation_prompt=True)
        inputs = processor(images=images, text=[text] * len(images), return_tensors="pt", padding=True).to(self.device)
        with torch.inference_mode():
            out = net.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, **extra)
        if not net.config.is_encoder_decoder and out.shape[1] > inputs["input_ids"].shape[1]:
            out = out[:, inputs["input_ids"].shape[1]:]
        return [strip_prompt(t, prompt) for t in processor.batch_decode(out, skip_special_tokens=True)]


def strip_prompt(text: str, prompt: str) -> str:
    """Captioners that take the prompt as a prefix repeat it; keep only what follows."""
    text = text.strip()
    lowered, p = text.lower(), prompt.lower().strip()
    return text[len(p):].strip() if lowered.startswith(p) else text
