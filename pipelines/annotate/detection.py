"""A transformers zero-shot object detector ModelHandler (Grounding DINO, OWLv2, OWL-ViT).

Examples are GroundingRequests (an image and the labels to look for); predictions are the
detections above the thresholds, matched back to those labels (adr.grounding).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from apache_beam.ml.inference.base import PredictionResult

from adr.grounding import Detection, chunks, merge
from pipelines.torch_env import BatchedHandler


@dataclass(frozen=True)
class GroundingRequest:
    key: str
    image: Any
    labels: tuple[str, ...]


class DetectionHandler(BatchedHandler):
    def __init__(self, model: str, *, box_threshold: float = 0.4, text_threshold: float = 0.3,
                 labels_per_call: int = 32, device: str = "auto", min_batch_size: int = 1,
                 max_batch_size: int = 8, max_batch_duration_secs: int | None = None,
                 large_model: bool = False, model_copies: int | None = None):
        super().__init__(model, device=device, min_batch_size=min_batch_size, max_batch_size=max_batch_size,
                         max_batch_duration_secs=max_batch_duration_secs, large_model=large_model,
                         model_copies=model_copies, namespace="adr_detection")
        self._box_threshold = box_threshold
        self._text_threshold = text_threshold
        self._labels_per_call = labels_per_call

    def load_model(self) -> Detector:
        from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

        files = self.model_files()
        model, device = self.load_pretrained(AutoModelForZeroShotObjectDetection, files)
        return Detector(AutoProcessor.from_pretrained(files.folder), model, device)

    def run_inference(self, batch: Sequence[GroundingRequest], model,
                      inference_args=None) -> Iterable[PredictionResult]:
        found = model.detect([r.image for r in batch], [list(r.labels) for r in batch], self._box_threshold,
                             self._text_threshold, self._labels_per_call)
        return [PredictionResult(r, detections, self._model) for r, detections in zip(batch, found)]



class Detector:
    """A loaded processor and detector; methods do the work (see diffusion.DiffusionModel)."""

    def __init__(self, processor, model, device: str):
        self.processor, self.model, self.device = processor, model, device
        self.text_budget = getattr(model.config, "max_text_len", None)  # Grounding DINO: one joined prompt
        post = processor.post_process_grounded_object_detection
        self.takes_text_threshold = "text_threshold" in inspect.signature(post).parameters

    def label_chunks(self, labels: list[str], per_call: int) -> list[list[str]]:
        """Prompt-sized groups: by joined token length for one-prompt models (Grounding DINO
        joins labels as 'a. b. c.'), by count for one-query-per-label models (OWL-ViT)."""
        if not self.text_budget:
            return chunks(labels, per_call)
        tokenizer = self.processor.tokenizer
        out, current, used = [], [], 2  # [CLS] ... [SEP]
        for label in labels:
            cost = len(tokenizer(f"{label}.", add_special_tokens=False)["input_ids"])
            if current and (used + cost > self.text_budget or len(current) >= per_call):
                out.append(current)
                current, used = [], 2
            current.append(label)
            used += cost
        return out + [current] if current else out or [[]]

    def detect(self, images: list, labels: list[list[str]], box_threshold: float, text_threshold: float,
               per_call: int) -> list[list[Detection]]:
        import torch

        images = [image.convert("RGB") for image in images]
        plans = [self.label_chunks(ls, per_call) for ls in labels]
        raw: list[list[Detection]] = [[] for _ in images]
        for k in range(max(len(p) for p in plans)):
            rows = [i for i, p in enumerate(plans) if k < len(p) and p[k]]
            if not rows:
                continue
            texts = [plans[i][k] for i in rows]
            if not self.text_budget:
                # The processor pads shorter query lists with " "; post-processing indexes these
                # lists, so pad them the same way (a blank query matches no candidate label).
                width = max(len(t) for t in texts)
                texts = [t + [" "] * (width - len(t)) for t in texts]
            # One-query-per-label models (OWL-ViT) pad each image's queries on their own: pad all
            # to the model's length so a batch of different label lists stacks.
            padding = {"padding": True} if self.text_budget else {"padding": "max_length", "truncation": True}
            inputs = self.processor(text=texts, images=[images[i] for i in rows], return_tensors="pt",
                                    **padding).to(self.device)
            with torch.inference_mode():
                outputs = self.model(**inputs)
            extra = {"text_threshold": text_threshold} if self.takes_text_threshold else {}
            results = self.processor.post_process_grounded_object_detection(
                outputs, threshold=box_threshold, target_sizes=[(images[i].height, images[i].width) for i in rows],
                text_labels=texts, **extra)
            for i, result in zip(rows, results):
                raw[i] += [Detection(str(label), float(score), tuple(box.tolist()))
                           for label, score, box in zip(result["text_labels"], result["scores"], result["boxes"])]
        return [merge(found, ls, box_threshold) for found, ls in zip(raw, labels)]
