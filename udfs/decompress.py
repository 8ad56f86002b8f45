"""Reading a compressed input incrementally, so that a damaged one gives up everything before the damage.

A file object from gzip, bz2, lzma or zstandard raises at the damage and drops what its last
read had decompressed (a truncated `.jsonl.gz` read 4 MiB at a time lost every line of its last
4 MiB, and of a small file, all of them). Here the compressed bytes are fed to a decompressor
object a piece at a time and what it gives is returned first; the error comes on the next read.
"""

from __future__ import annotations

import bz2
import io
import lzma
import zlib
from contextlib import contextmanager

import fsspec

PIECE = 1 << 16


def _decompressor(kind: str):
    if kind == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if kind == "bz2":
        return bz2.BZ2Decompressor()
    if kind == "xz":
        return lzma.LZMADecompressor()
    import zstandard

    return zstandard.ZstdDecompressor().decompressobj()


KINDS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd"}


class Decompressing(io.RawIOBase):
    """The decompressed bytes of a binary stream; members one after another (`cat a.gz b.gz`)."""

    def __init__(self, raw, kind: str):
        self.raw, self.kind = raw, kind
        self._restart()

    def _restart(self) -> None:
        self.d, self.buffer, self.done, self.pos = _decompressor(self.kind), b"", False, 0
        self.error: Exception | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self.raw.seekable()

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        """To a decompressed offset (from the start only): back means decompressing again from
        the beginning, as gzip's own file object does."""
        if whence != 0:
            raise OSError("a decompressed stream seeks from its start only")
        if offset < self.pos:
            self.raw.seek(0)
            self._restart()
        while self.pos < offset and self.read(min(1 << 22, offset - self.pos)):
            pass
        return self.pos

    def _fill(self, want: int) -> None:
        while len(self.buffer) < want and not self.done and self.error is None:
            piece = self.raw.read(PIECE)
            try:
                if not piece:
                    if not self._at_end():
                        self.error = EOFError("compressed file ended before the end-of-stream marker was reached")
                    self.done = True
                    return
                out = self.d.decompress(piece)
                while getattr(self.d, "eof", False) and getattr(self.d, "unused_data", b""):
                    rest, self.d = self.d.unused_data, _decompressor(self.kind)  # the next member
                    out += self.d.decompress(rest)
                self.buffer += out
            except Exception as err:  # noqa: BLE001 - each decompressor raises its own kind
                self.error = err

    def _at_end(self) -> bool:
        if self.kind == "zstd":  # zstandard's decompressobj has no eof flag: the frame is whole if it flushes
            return not self.buffer and getattr(self.d, "eof", True)
        return getattr(self.d, "eof", True)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = 1 << 62
        self._fill(size)
        if not self.buffer and self.error is not None:
            raise self.error
        out, self.buffer = self.buffer[:size], self.buffer[size:]
        self.pos += len(out)
        return out

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)


@contextmanager
def open_input(url: str):
    """A binary file object of the input's content, decompressed by its name's suffix."""
    kind = next((k for suffix, k in KINDS.items() if url.endswith(suffix)), None)
    with fsspec.open(url, "rb") as raw:
        yield raw if kind is None else Decompressing(raw, kind)
