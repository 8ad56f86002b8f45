"""The stage contract: what every `adr` stage declares, and the one way a stage is run.

A stage is a name, one parser, a step from its command line to a frozen config, the run that takes
that config (with the engines' options) and returns its summary, and the summary's words for a
terminal. The registry (pipelines/stages.py) holds them all and serves `adr <stage>`, `adr run`
(its flags, --config tables and --help) and spark-submit alike.
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from adr.errors import AdrError
from pipelines.checks import ArgumentParser


class StageParser(ArgumentParser):
    """A stage's one parser. `option()` adds a flag that `adr run` offers too; `add_argument()` one
    the stage takes only when run alone: what `adr run` wires itself (inputs, outputs), streaming,
    resuming."""

    def __init__(self, *args, **kwargs):
        self.offered: list[argparse.Action] = []
        self.models: list[str] = []  # dests naming a model: `adr run` checks them before any stage starts
        self.arguments: list[argparse.Action] = []  # every one, offered or not (--help too)
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def add_argument(self, *args, **kwargs) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        self.arguments.append(action)
        return action

    def add_argument_group(self, *args, **kwargs):
        group = super().add_argument_group(*args, **kwargs)
        add = group.add_argument

        def add_recorded(*a, **k) -> argparse.Action:
            action = add(*a, **k)
            self.arguments.append(action)
            return action

        group.add_argument = add_recorded  # type: ignore[method-assign]
        return group

    @property
    def flags(self) -> set[str]:
        return {flag for action in self.arguments for flag in action.option_strings}

    def option(self, *flags: str, model: bool = False, **kwargs) -> argparse.Action:
        action = self.add_argument(*flags, **kwargs)
        self.offered.append(action)
        if model:
            self.models.append(action.dest)
        return action


def is_switch(action: argparse.Action) -> bool:
    """A flag that takes no value (store_true)."""
    return action.nargs == 0


class Options(SimpleNamespace):
    """A stage's parsed command line, read-only: what the user asked for is never changed downstream."""

    def __init__(self, **values):
        self.__dict__.update(values)

    def __setattr__(self, name, value):
        raise AttributeError(f"options are read-only ({name})")

    def __delattr__(self, name):
        raise AttributeError(f"options are read-only ({name})")


def frozen(namespace: argparse.Namespace, **settled) -> Options:
    """The parsed namespace as Options, with `settled` values (defaults that depend on other flags)."""
    return Options(**{**vars(namespace), **settled})


@dataclass(frozen=True)
class Engine:
    """What a stage's run gets beside its config: Beam pipeline options, a Spark session to reuse."""

    beam_args: tuple[str, ...] = ()
    spark: Any = None


@dataclass(frozen=True)
class Stage:
    name: str
    about: str                                            # its line in `adr --help`
    parser: Callable[[], StageParser]
    configure: Callable[[list[str]], tuple[Options, list[str]]]  # argv -> (config, engine argv); mistakes raise
    run: Callable[[Options, Engine], Any]                 # -> its summary
    describe: Callable[[Any, Options], str]  # (summary, config) -> lines for a terminal
    # What `adr run` needs to know; a stage without wiring is not part of it.
    wiring: Callable[[list[str], str], list[str]] | None = None  # (records, run dir) -> the flags it sets
    beam: bool = False          # takes Beam pipeline options
    resumable: bool = False     # `adr run` keeps its partial output when interrupted
    resume_flags: tuple[str, ...] = ()  # what `adr run` adds to resume it
    runs_when: str | None = None  # `adr run` runs it only when this option is given
    records_out: str | None = None  # the later stages of `adr run` read these records of its output
    # (summary, config) -> why the run failed though it finished (no valid record read), or None
    failure: Callable[[Any, Options], str | None] = field(default=lambda summary, config: None)

    @functools.cached_property
    def _options(self) -> StageParser:
        return self.parser()  # read for what it declares, never to parse: built once per stage

    def offered(self) -> tuple[argparse.Action, ...]:
        return tuple(self._options.offered)

    def models(self) -> tuple[str, ...]:
        """The dests naming a model: `adr run` checks them before any stage starts."""
        return tuple(self._options.models)


def execute(stage: Stage, argv: list[str], spark=None) -> tuple[Options, Any]:
    """Configure and run a stage; returns its config and summary. What its parser leaves of the command line
    are Beam pipeline options (a stage that takes none has refused them already)."""
    config, beam_args = stage.configure(list(argv))
    return config, stage.run(config, Engine(tuple(beam_args), spark))


def command(stage: Stage, argv: list[str]) -> int:
    """`adr <stage>`: run it and print its summary; a user's mistake is one line and exit status 2."""
    try:
        config, summary = execute(stage, argv)
    except AdrError as err:
        print(f"adr {stage.name}: error: {err}", file=sys.stderr)
        return 2
    print(stage.describe(summary, config))
    failure = stage.failure(summary, config)
    if failure:
        print(f"adr {stage.name}: error: {failure}", file=sys.stderr)
        return 1
    return 0


def spark_submit(stage: Stage) -> int:
    """`spark-submit pipelines/<stage>/job.py ...`: the same command, logging INFO."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    return command(stage, sys.argv[1:])
