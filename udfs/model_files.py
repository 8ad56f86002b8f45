"""Where a model's files are: a local directory, a URL copied down once per worker, or a hub id;
for a language model also a GGUF file (or a folder that holds one), which transformers reads with
the `gguf` package, tokenizer and chat template included.

Weights are loaded only from safetensors or GGUF (neither runs code when read): a directory that
holds pickled weights (*.bin, *.pt, *.pth, *.ckpt, *.pkl) and neither is refused.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import fsspec

from adr.errors import ConfigError

PICKLED = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
GGUF = ".gguf"
# The `models` extra (pyproject.toml): the default install runs every stage without a model.
MODEL_LIBRARIES = ("torch", "transformers", "diffusers", "tokenizers", "gguf", "safetensors", "accelerate")


def require_model_libraries(spec: str) -> None:
    """A ConfigError, in one line, when a model is named but the model libraries are not installed."""
    missing = [name for name in MODEL_LIBRARIES if not _installed(name)]
    if missing:
        raise ConfigError(f"model {spec!r} needs {', '.join(missing)}, not installed: "
                          f"pip install 'adr-refine[models]'")


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


@dataclass(frozen=True)
class ModelFiles:
    """What `from_pretrained` is given: a folder, and the GGUF file in it when the model is one."""
    folder: str
    gguf_file: str | None = None

    def load_kwargs(self) -> dict:
        return {"gguf_file": self.gguf_file} if self.gguf_file else {"use_safetensors": True}


@functools.lru_cache(maxsize=16)
def language_model_files(spec: str, cache_dir: str | None = None) -> ModelFiles:
    """A language model's files: a `.gguf` file (local or a URL), a folder that holds exactly one
    `.gguf` and no config.json, or a Hugging Face folder (or hub id)."""
    require_model_libraries(spec)
    if spec.endswith(GGUF):
        if "://" in spec and not spec.startswith("file://"):
            return _copy_down_file(spec, cache_dir)
        path = Path(spec.removeprefix("file://")).expanduser()
        if not path.is_file():
            raise ConfigError(f"model {spec!r}: no such file")
        return ModelFiles(str(path.parent), path.name)
    folder = Path(local_model_dir(spec, cache_dir))
    if not folder.is_dir() or (folder / "config.json").exists():
        return ModelFiles(str(folder))
    ggufs = sorted(p.name for p in folder.glob(f"*{GGUF}"))
    if len(ggufs) > 1:
        raise ConfigError(f"model {spec!r} holds {len(ggufs)} GGUF files ({', '.join(ggufs[:3])}): name one")
    return ModelFiles(str(folder), ggufs[0] if ggufs else None)


@functools.lru_cache(maxsize=16)
def local_model_dir(spec: str, cache_dir: str | None = None) -> str:
    """A local directory for `spec`; hub ids (no scheme, not a path) are returned unchanged."""
    require_model_libraries(spec)
    if "://" in spec and not spec.startswith("file://"):
        return _copy_down(spec, cache_dir)
    path = Path(spec.removeprefix("file://")).expanduser()
    if path.is_dir():
        check_safetensors(path)
        return str(path)
    if path.exists() or spec.startswith((".", "/", "~")) or spec.count("/") != 1:
        raise ConfigError(f"model {spec!r}: no such directory")
    return spec  # 'org/name': a hub id, loaded by the library as usual (offline: from its cache only)


def check_model(spec: str) -> None:
    """Fail now, in one line, when a model directory (or GGUF file) is missing (a URL is looked
    at, not copied), or when the model libraries are not installed."""
    require_model_libraries(spec)
    if "://" in spec and not spec.startswith("file://"):
        fs, root = fsspec.core.url_to_fs(spec)
        if not (fs.isfile(root) if spec.endswith(GGUF) else fs.isdir(root)):
            raise ConfigError(f"model {spec!r}: no such {'file' if spec.endswith(GGUF) else 'directory'}")
        return
    if spec.endswith(GGUF):
        language_model_files(spec)
        return
    local_model_dir(spec)


def model_cache() -> Path:
    """This user's own cache of copied models: in a shared temp folder, another user could plant
    a folder under the name a model will be looked for by."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    path = Path(base) / "adr" / "models"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _copy_down(url: str, cache_dir: str | None) -> str:
    fs, root = fsspec.core.url_to_fs(url)
    if not fs.isdir(root):
        raise ConfigError(f"model {url!r}: no such directory")
    key = _cache_key(url, fs, root)
    cache = Path(cache_dir) if cache_dir else model_cache()
    target = cache / key
    if not target.is_dir():
        # Copied to a private temporary folder and renamed: a copy cut short is never taken for
        # the model, and two workers copying at once both end with a whole one.
        cache.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=cache))
        try:
            fs.get(root.rstrip("/") + "/", str(partial), recursive=True)
            os.replace(partial, target)
        except OSError:
            shutil.rmtree(partial, ignore_errors=True)
            if not target.is_dir():  # not another worker's rename that won
                raise
    check_safetensors(target)
    return str(target)


def _cache_key(url: str, fs, root: str) -> str:
    """The cache folder of a model at a URL: a new upload (another checksum) is copied again."""
    return hashlib.sha256(f"{url}\x1f{fs.checksum(root)}".encode()).hexdigest()[:16]


def _copy_down_file(url: str, cache_dir: str | None) -> ModelFiles:
    """A GGUF file at a URL, copied once per worker into the private cache (see _copy_down)."""
    fs, root = fsspec.core.url_to_fs(url)
    if not fs.isfile(root):
        raise ConfigError(f"model {url!r}: no such file")
    folder = (Path(cache_dir) if cache_dir else model_cache()) / _cache_key(url, fs, root)
    target = folder / Path(root).name
    if not target.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(prefix=f".{target.name}-", dir=folder)
        os.close(fd)
        try:
            fs.get(root, partial)
            os.replace(partial, target)
        except OSError:
            Path(partial).unlink(missing_ok=True)
            raise
    return ModelFiles(str(folder), target.name)


def check_safetensors(path: Path) -> None:
    files = [p for p in Path(path).rglob("*") if p.is_file()]
    pickled = [p for p in files if p.suffix in PICKLED]
    if pickled and not any(p.suffix in (".safetensors", GGUF) for p in files):
        raise ConfigError(f"model {path}: weights are pickled ({pickled[0].name}); only safetensors are loaded")
