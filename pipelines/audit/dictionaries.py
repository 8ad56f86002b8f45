"""The training dictionaries an audit looks items up in: `adr stats` outputs, read once."""

from __future__ import annotations

from dataclasses import dataclass

from adr.entities.registry import resolve
from adr.errors import ConfigError
from pipelines.checks import stats_manifest
from pipelines.outputs import exists, join, read_json
from udfs.entity_counts import Counts, dictionary_counts


@dataclass
class Dictionary:
    path: str
    stats_dir: str
    manifest: dict
    counts: Counts

    @property
    def taus(self) -> dict[str, int]:
        return {p: self.manifest["perspectives"][p]["tau"] for p in self.counts}

    @property
    def nlp(self) -> str | None:
        """The spaCy pipeline it was tagged with; None for the shipped one."""
        name = self.manifest["parameters"].get("nlp", "default")
        return None if name == "default" else name

    def summary(self, perspectives: tuple[str, ...]) -> dict:
        return {"path": self.path, "stats": self.stats_dir, "records": self.manifest.get("records"),
                "perspectives": {p: {"tau": self.taus[p], "entities": len(self.counts[p]),
                                     "occurrences": sum(self.counts[p].values())} for p in perspectives}}


def stats_dir_of(path: str) -> str:
    """An `adr stats` output, or the stats/ of an `adr run` output."""
    if not exists(join(path, "manifest.json")) and exists(join(path, "stats", "manifest.json")):
        return join(path, "stats")
    stats_manifest(path)  # one line saying what is wrong with it
    return path


def load_dictionaries(paths: list[str], perspectives: str | None) -> tuple[list[Dictionary], tuple[str, ...]]:
    """The dictionaries and the perspectives audited (by default the first dictionary's); each must
    hold them all, and token counts compare only when one tagger made them."""
    stats = [stats_dir_of(p) for p in paths]
    manifests = [read_json(join(s, "manifest.json")) for s in stats]
    chosen = resolve(perspectives or manifests[0]["parameters"]["perspectives"])
    for path, manifest in zip(paths, manifests):
        missing = [p for p in chosen if p not in manifest["perspectives"]]
        if missing:
            raise ConfigError(f"the dictionary in {path} has no {', '.join(missing)} entities")
    taggers = {m["parameters"].get("nlp", "default") for m in manifests}
    if "token" in chosen and len(taggers) > 1:
        raise ConfigError(f"the dictionaries were tagged by different spaCy pipelines ({', '.join(sorted(taggers))}): "
                          "their token counts do not compare")
    return [Dictionary(p, s, m, dictionary_counts(s, chosen)) for p, s, m in zip(paths, stats, manifests)], chosen
