"""What the handlers share: device, precision, seeded generators, the batching knobs, and how a
model is loaded."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import Any

from apache_beam.ml.inference.base import ModelHandler

from udfs.model_files import ModelFiles, local_model_dir

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


def load_pretrained(cls, files: ModelFiles, device_spec: str = "auto", **kwargs) -> tuple[Any, str]:
    """The load every handler shares: `cls.from_pretrained` on the model's files (safetensors or a
    GGUF file, see udfs.model_files) in the device's float type, on the device (resolve_device),
    in eval mode where it is a torch module (a diffusers pipeline is not, and has no eval).
    The progress bars of cls's library (transformers or diffusers) are turned off first: on a
    worker they are lines of carriage returns in the log. Returns (model, device)."""
    import importlib

    import torch

    importlib.import_module(cls.__module__.partition(".")[0]).utils.logging.disable_progress_bar()
    device = resolve_device(device_spec)
    model = cls.from_pretrained(files.folder, dtype=dtype_for(device), **files.load_kwargs(), **kwargs).to(device)
    return (model.eval() if isinstance(model, torch.nn.Module) else model), device


class BatchedHandler(ModelHandler):
    """The knobs every ADR handler has, handed to Beam's ModelHandler, which stores them and
    answers batch_elements_kwargs, share_model_across_processes and model_copies from them: batch
    sizes (and how long to wait for a batch across bundles, in streaming), one model shared per
    process (large_model) or several copies (model_copies).

    batch_invariant (default): the model runs on one element at a time, so an element's output is
    bit for bit the same whatever BatchElements grouped it with. Batched kernels round differently
    by batch shape (and an LLM's left padding changes its shapes), on a CPU as on a GPU: batched,
    outputs agree only up to float rounding (a diffused pixel one level off, so another image file;
    a greedy token at a near-tie). False: one model call per batch, for throughput on a GPU."""

    def __init__(self, model: str, *, device: str, min_batch_size: int, max_batch_size: int,
                 max_batch_duration_secs: int | None, large_model: bool, model_copies: int | None,
                 namespace: str, batch_invariant: bool = True):
        # model_copies 0 is no copies asked for: one model, not shared (Beam shares for any number).
        super().__init__(min_batch_size=min_batch_size, max_batch_size=max_batch_size,
                         max_batch_duration_secs=max_batch_duration_secs, large_model=large_model,
                         model_copies=model_copies or None)
        self._model = model
        self._batch_invariant = batch_invariant
        self._device_spec = device
        self._namespace = namespace

    def model_files(self) -> ModelFiles:
        """Where the model's files are: a local folder (one copied down once per worker from a URL)
        or a hub id."""
        return ModelFiles(local_model_dir(self._model))

    def load_pretrained(self, cls, files: ModelFiles, **kwargs) -> tuple[Any, str]:
        """load_pretrained on this handler's device: (model, device)."""
        return load_pretrained(cls, files, self._device_spec, **kwargs)

    def model_calls(self, batch: Sequence) -> list[list]:
        """The groups of elements the model is called on: one each when batch_invariant."""
        return [[e] for e in batch] if self._batch_invariant else [list(batch)]

    # Kept: Beam's answers 'RunInference' for every handler; each ADR family has its own metrics.
    def get_metrics_namespace(self) -> str:
        return self._namespace


def on_accelerator(transform, accelerator: str | None):
    """The model step with a Beam accelerator resource hint, so only it asks for GPU workers."""
    return transform.with_resource_hints(accelerator=accelerator) if accelerator else transform
