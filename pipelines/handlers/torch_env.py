"""Device, precision and seeded generators shared by the torch-based handlers."""

from __future__ import annotations

import hashlib
import logging

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


def generator(device: str, seed: int, key: str):
    """A torch Generator seeded from (seed, key): the same output for an element on any worker."""
    import torch

    value = int.from_bytes(hashlib.blake2b(f"{seed}\x1f{key}".encode(), digest_size=8).digest(), "little") >> 1
    return torch.Generator(device=device).manual_seed(value)

