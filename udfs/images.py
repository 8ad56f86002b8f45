"""Image helpers for synthesis: loading a seed image, squaring, edge maps, content-hash names."""

from __future__ import annotations

import hashlib
import io

import fsspec
from PIL import Image, ImageFilter, ImageOps

from adr.errors import InputError
from adr.records import is_safe_relative_path


def load_image(root: str, relative: str) -> Image.Image:
    """The image at `relative` under its root (any fsspec URL); InputError if missing, not an
    image, or not inside the root: paths come from the data ("../../x" would read any file)."""
    if not is_safe_relative_path(relative):
        raise InputError(f"image {str(relative)[:200]!r}: not a path inside the images root")
    url = f"{root.rstrip('/')}/{relative}"
    try:
        with fsspec.open(url, "rb") as f:
            data = f.read()
    except (FileNotFoundError, OSError) as err:
        raise InputError(f"image {url}: cannot be read ({type(err).__name__})") from None
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except Exception as err:  # PIL raises many kinds for corrupt data
        raise InputError(f"image {url}: not an image ({type(err).__name__})") from None
    return image.convert("RGB")


def square(image: Image.Image, size: int) -> Image.Image:
    """Centre crop to a square and resize: what SD-class models were trained on."""
    return ImageOps.fit(image.convert("RGB"), (size, size), Image.Resampling.BICUBIC)


def edge_map(image: Image.Image, threshold: int = 40) -> Image.Image:
    """A binary edge map (white edges on black), the conditioning ControlNet's canny models expect."""
    edges = image.convert("L").filter(ImageFilter.GaussianBlur(1)).filter(ImageFilter.FIND_EDGES)
    return edges.point(lambda v: 255 if v > threshold else 0).convert("RGB")


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def content_name(data: bytes, suffix: str = ".png") -> str:
    return hashlib.sha256(data).hexdigest()[:32] + suffix
