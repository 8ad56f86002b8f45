"""What a watch has decided, kept where a restart finds it: OUT/_watch/ unless --watch-ledger.

- commit-<time>-<batch>.jsonl: the files (path, mtime, size) whose records are all in the output,
  named in the order of the commits (the last word on a file wins). A
  restarted, redeployed or new job skips them; one that changed since (its writer paused longer
  than the settle time, or it was replaced) becomes a `changed-after-read` dead letter, never
  read again in part.
- pending-<batch>.json: files being decided and when they arrived. A batch cut short is decided
  again whole, under the same name and window, so its output files are rewritten, not doubled.
Every file here is written whole or not at all (panes.write_atomically).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

import fsspec

from pipelines.outputs import join, remove
from pipelines.rebalance.panes import write_atomically

CHANGED = "changed-after-read"


@dataclass(frozen=True)
class Seen:
    path: str
    mtime: float
    size: int

    def same_as(self, other: Seen) -> bool:
        return (self.mtime, self.size) == (other.mtime, other.size)


class Ledger:
    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def _read(self, prefix: str) -> list[tuple[str, str]]:
        fs, root = fsspec.core.url_to_fs(self.url)
        if not fs.exists(root):
            return []
        out = []
        for path in sorted(fs.ls(root, detail=False)):
            name = path.rsplit("/", 1)[-1]
            if name.startswith(prefix):
                with fs.open(path, "r", encoding="utf-8") as f:
                    out.append((name, f.read()))
        return out

    def committed(self) -> dict[str, Seen]:
        """path -> what was decided of it (the last commit wins: a changed file's refusal)."""
        out = {}
        for _, text in self._read("commit-"):
            for line in text.splitlines():
                if line:
                    seen = Seen(**json.loads(line))
                    out[seen.path] = seen
        return out

    def commit(self, batch: str, files: list[Seen]) -> None:
        write_atomically(join(self.url, f"commit-{time.time_ns() // 1000:017d}-{batch}.jsonl"),
                         "".join(json.dumps(asdict(f), ensure_ascii=False) + "\n" for f in files))
        remove(join(self.url, f"pending-{batch}.json"))

    def intend(self, batch: str, files: list[Seen], changed: list[Seen], arrived: float) -> None:
        write_atomically(join(self.url, f"pending-{batch}.json"), json.dumps(
            {"files": [asdict(f) for f in files], "changed": [asdict(f) for f in changed], "arrived": arrived}))

    def pending(self) -> dict[str, tuple[list[Seen], list[Seen], float]]:
        out = {}
        for name, text in self._read("pending-"):
            doc = json.loads(text)
            out[name[len("pending-"):-len(".json")]] = ([Seen(**f) for f in doc["files"]],
                                                         [Seen(**f) for f in doc["changed"]], doc["arrived"])
        return out
