"""Checks a stage makes of its command line and of the directories it reads, before any engine
starts: a mistake is an adr.errors.ConfigError, which `adr` prints as one line, exit status 2.

- ArgumentParser: argparse's own errors (a missing flag, a value of the wrong type) as ConfigError,
  instead of the usage block and an error line;
- at_least: an argparse `type` for numbers with a lower bound;
- stats_manifest, rebalance_summary, run_outputs: "this is the output of `adr stats` /
  `adr rebalance` / `adr run`", read from the file that stage writes last.
"""

from __future__ import annotations

import argparse

from adr.errors import ConfigError
from pipelines.outputs import exists, join, read_json


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with its errors raised as ConfigError (one line, like every other user mistake)."""

    def error(self, message):
        raise ConfigError(f"{message} (see {self.prog} --help)")


def at_least(kind, low, *, strict: bool = False):
    """An argparse `type`: `kind(text)`, refused below `low` (or at it, when strict)."""

    def parse(text):
        value = kind(text)
        if value < low or (strict and value == low):
            raise argparse.ArgumentTypeError(f"must be {'more than' if strict else 'at least'} {low}, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse says "invalid int value: 'x'" for a non-number
    return parse


def stats_manifest(url: str, flag: str = "--dictionary") -> dict:
    """The manifest of an `adr stats` output directory (written last: a run cut short has none)."""
    return _finished(url, flag, "manifest.json", "an `adr stats` output directory", "stats")


def rebalance_summary(url: str, flag: str = "--rebalanced") -> dict:
    """The summary of a batch `adr rebalance` output directory (written last)."""
    return _finished(url, flag, "summary.json", "an `adr rebalance` output directory", "rebalance")


def run_outputs(url: str, flag: str = "--run") -> tuple[dict, dict]:
    """(stats manifest, rebalance summary) of an `adr run` output directory whose two stages read
    the same input: counts before and after are only comparable then."""
    manifest, rebalance = (_finished(url, flag, marker, "an `adr run` output directory")
                           for marker in ("stats/manifest.json", "rebalance/summary.json"))
    read, counted = rebalance.get("input_fingerprint"), manifest["input"]["fingerprint"]
    if read and read != counted:
        raise ConfigError(f"{flag} {url}: rebalance read other input (fingerprint {read}) than the statistics "
                          f"counted ({counted}); rerun both on one input (`adr run` does)")
    return manifest, rebalance


def _finished(url: str, flag: str, marker: str, what: str, stage: str | None = None) -> dict:
    try:
        if exists(join(url, marker)):
            return read_json(join(url, marker))
        missing = not exists(url)
        hint = f"; did you mean {join(url, stage)}?" if stage and exists(join(url, stage, marker)) else ""
    except (OSError, ValueError, ImportError) as err:  # an unknown protocol, no access, malformed JSON
        raise ConfigError(f"{flag} {url}: cannot read {marker}: {' '.join(str(err).split())}") from None
    if missing:
        raise ConfigError(f"{flag} {url}: no such directory")
    raise ConfigError(f"{flag} {url}: not {what}, or one cut short (no {marker}){hint}")
