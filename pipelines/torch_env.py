"""What the handlers share: device, precision, seeded generators, and the batching knobs."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

from apache_beam.ml.inference.base import ModelHandler

log = logging.getLogger("adr.handlers")


def resolve_device(spec: str = "auto") -> str:
    """'auto' -> cuda when a GPU is visible, else cpu. A cuda request without a GPU falls back to
    the CPU with a warning, as Beam's PyTorch handler does."""
    import torch

    if spec not in ("auto", "cpu", "cuda") and not spec.startswith("cuda:"):
        from adr.errors import ConfigError

        raise ConfigError(f"--device must be auto, cpu or cuda[:N], got {spec!r}")
    if spec == "cpu":
        return "cpu"
    if torch.cuda.is_available():
        return "cuda" if spec == "auto" else spec
    if spec != "auto":
        log.warning("--device %s was asked for but no CUDA GPU is available: running on the CPU", spec)
    return "cpu"


def dtype_for(device: str):
    import torch

    return torch.float16 if device.startswith("cuda") else torch.float32


def seed_value(seed: int, key: str) -> int:
    """A 63-bit torch seed from (seed, key)."""
    return int.from_bytes(hashlib.blake2b(f"{seed}\x1f{key}".encode(), digest_size=8).digest(), "little") >> 1


def generator(device: str, seed: int, key: str):
    """A torch Generator seeded from (seed, key): the same output for an element on any worker."""
    import torch

    return torch.Generator(device=device).manual_seed(seed_value(seed, key))



class BatchedHandler(ModelHandler):
    """The knobs every ADR handler has, stored as Beam's handlers store them: batch sizes (and
    how long to wait for a batch across bundles, in streaming), one model shared per process
    (large_model) or several copies (model_copies).

    batch_invariant (default): the model runs on one element at a time, so an element's output is
    bit for bit the same whatever BatchElements grouped it with. Batched kernels round differently
    by batch shape (and an LLM's left padding changes its shapes), on a CPU as on a GPU: batched,
    outputs agree only up to float rounding (a diffused pixel one level off, so another image file;
    a greedy token at a near-tie). False: one model call per batch, for throughput on a GPU."""

    def __init__(self, model: str, *, device: str, min_batch_size: int, max_batch_size: int,
                 max_batch_duration_secs: int | None, large_model: bool, model_copies: int | None,
                 namespace: str, batch_invariant: bool = True):
        self._model = model
        self._batch_invariant = batch_invariant
        self._device_spec = device
        self._batching = {"min_batch_size": min_batch_size, "max_batch_size": max_batch_size}
        if max_batch_duration_secs is not None:
            self._batching["max_batch_duration_secs"] = max_batch_duration_secs
        self._large_model = large_model or bool(model_copies)
        self._model_copies = model_copies or 1
        self._namespace = namespace

    def model_calls(self, batch: Sequence) -> list[list]:
        """The groups of elements the model is called on: one each when batch_invariant."""
        return [[e] for e in batch] if self._batch_invariant else [list(batch)]

    def batch_elements_kwargs(self):
        return self._batching

    def share_model_across_processes(self) -> bool:
        return self._large_model

    def model_copies(self) -> int:
        return self._model_copies

    def get_metrics_namespace(self) -> str:
        return self._namespace


def on_accelerator(transform, accelerator: str | None):
    """The model step with a Beam accelerator resource hint, so only it asks for GPU workers."""
    return transform.with_resource_hints(accelerator=accelerator) if accelerator else transform
