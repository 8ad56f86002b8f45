"""`adr run`: [annotate ->] stats -> rebalance -> synthesize -> report, in one job.

    adr run --input FILES... --output DIR [--config adr.toml] [any stage's option] [Beam options]

Embedded defaults: local Spark, Beam's DirectRunner, CPU. Every stage writes DIR/<stage>/ and,
when it finishes, DIR/<stage>/_ADR_DONE.json with a key: a digest of the stage's options, the
input's fingerprint and the keys of the stages it reads. A rerun skips a stage whose key is
unchanged and reruns it (so every stage after it) otherwise. A stage that started with the same
key and did not finish resumes: stats reuses its extracted entities, synthesize its finished
rounds; rebalance, annotate and report start over (their Beam file sinks are transactional, so
an interrupted run leaves no partial output behind).

Options: every stage's own flags are accepted and go to each stage that has them; `--detector`
adds annotate (zero-shot grounding) before stats. A TOML file gives the same options: top-level
keys go to every stage that has them, a [stats], [rebalance], [synthesize], [annotate] or
[report] table to that stage only, and [beam] holds Beam pipeline options. The command line wins.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import sys
import time
import tomllib
from dataclasses import dataclass

import fsspec

from adr import __version__
from adr.errors import ConfigError
from pipelines.checks import ArgumentParser
from pipelines.outputs import join, read_json_or_none, remove, write_json

DONE, STARTED = "_ADR_DONE.json", "_ADR_STARTED.json"
MODEL_OPTIONS = ("detector", "image_model", "caption_model", "llm")
RUN_KEYS = ("input", "output", "force")  # options of `adr run` itself, not of a stage


@dataclass(frozen=True)
class Stage:
    name: str
    not_offered: tuple  # set by `adr run` from the stage order, or streaming-only (`adr run` is batch)
    beam: bool        # takes Beam pipeline options
    resumable: bool   # keeps its partial output when interrupted


STAGES = (
    Stage("annotate", ("input", "output"), True, False),
    Stage("stats", ("input", "output", "resume"), False, True),
    Stage("rebalance", ("input", "dictionary", "output", "pubsub_subscription", "kafka_topic",
                                          "kafka_bootstrap", "kafka_group", "pubsub_id_label", "window_secs",
                                          "watch_interval_secs", "watch_ledger",
                                          "watch_for_secs", "dictionary_refresh_secs"), True, False),
    Stage("synthesize", ("rebalanced", "dictionary", "output"), True, True),
    Stage("report", ("run",), False, False),
)
BY_NAME = {s.name: s for s in STAGES}


@functools.cache
def stage_options(stage: Stage) -> tuple[argparse.Action, ...]:
    """The stage's own flags that a user may set through `adr run` (its parser, built once)."""
    import importlib

    module = importlib.import_module(f"pipelines.{stage.name}.job")
    return tuple(a for a in module.parser()._actions
                 if a.option_strings and a.dest != "help" and a.dest not in stage.not_offered)


def parser() -> argparse.ArgumentParser:
    ap = ArgumentParser(prog="adr run", description=__doc__.splitlines()[0], allow_abbrev=False,
                                 epilog="Beam pipeline options (e.g. --runner, --direct_num_workers) go to "
                                        "the Beam stages.")
    ap.add_argument("--input", nargs="+", help="files, globs, directories or URLs")
    ap.add_argument("--output", help="run directory: one sub-directory per stage")
    ap.add_argument("--config", help="TOML file with the same options (the command line wins)")
    ap.add_argument("--force", action="store_true", help="run every stage, even those up to date")
    seen: dict[str, list[str]] = {}
    in_help_order = sorted(STAGES, key=lambda s: s.name == "annotate")
    for stage in STAGES:
        for action in stage_options(stage):
            seen.setdefault(action.option_strings[-1], []).append(stage.name)
    groups = {s.name: ap.add_argument_group(f"{s.name} options") for s in in_help_order}
    registered = set()
    for stage in in_help_order:
        for action in stage_options(stage):
            flag = action.option_strings[-1]
            if flag in registered:
                continue
            registered.add(flag)
            kwargs = dict(dest=action.dest, default=argparse.SUPPRESS,
                          help=f"{action.help or ''} [{', '.join(seen[flag])}]".strip())
            if isinstance(action, argparse._StoreTrueAction):
                kwargs["action"] = "store_true"
            else:
                kwargs.update(nargs=action.nargs, choices=action.choices, metavar=action.metavar)
            groups[stage.name].add_argument(flag, **kwargs)
    return ap


def load_config(path: str | None) -> dict:
    if not path:
        return {}
    try:
        with fsspec.open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config file {path}: {err}") from None


def _dest(key: str) -> str:
    return key.replace("-", "_")


def check_config(config: dict, path: str) -> None:
    """Unknown keys are typos: say so rather than run with a silently ignored option."""
    known = {s.name: {a.dest for a in stage_options(s)} for s in STAGES}
    for key, value in config.items():
        if key in known:
            if not isinstance(value, dict):
                raise ConfigError(f"{path}: [{key}] must be a table")
            for k in value:
                if _dest(k) not in known[key]:
                    raise ConfigError(f"{path}: [{key}] has no option {k!r}")
        elif key == "beam":
            if not isinstance(value, dict):
                raise ConfigError(f"{path}: [beam] must be a table")
        elif _dest(key) not in set().union(*known.values()) | set(RUN_KEYS):
            raise ConfigError(f"{path}: unknown option {key!r}")


def stage_values(stage: Stage, cli: dict, config: dict) -> dict:
    """dest -> value for the stage: command line, then its table, then top-level keys."""
    table = {_dest(k): v for k, v in config.get(stage.name, {}).items()}
    top = {_dest(k): v for k, v in config.items() if not isinstance(v, dict)}
    values = {}
    for action in stage_options(stage):
        for source in (cli, table, top):
            if action.dest in source:
                values[action.dest] = source[action.dest]
                break
    return values


def to_argv(stage: Stage, values: dict) -> list[str]:
    argv = []
    for action in stage_options(stage):
        if action.dest not in values:
            continue
        value, flag = values[action.dest], action.option_strings[-1]
        if isinstance(action, argparse._StoreTrueAction):
            argv += [flag] if value else []
        elif action.nargs in ("+", "*"):
            argv += [flag, *map(str, value if isinstance(value, list) else [value])]
        else:
            argv += [flag, str(value)]
    return argv


def beam_argv(extra: list[str], config: dict) -> list[str]:
    """Beam pipeline options from the [beam] table (true = a bare flag) and the command line."""
    from_config = []
    for key, value in config.get("beam", {}).items():
        if value is True:
            from_config.append(f"--{key}")
        elif value is not False:
            from_config.append(f"--{key}={value}")
    argv = from_config + extra
    if any(a == "--streaming" or a.startswith("--streaming=") for a in argv):
        raise ConfigError("adr run is a batch job; for streaming run `adr rebalance --streaming` (see its --help)")
    unknown = unknown_beam_options(argv)
    if unknown:
        raise ConfigError(f"unknown option(s) {' '.join(unknown)}: not an option of a stage, nor a Beam "
                          "pipeline option (see adr run --help)")
    return argv


def unknown_beam_options(argv: list[str]) -> list[str]:
    """What Beam itself would discard with only a warning: a typo should stop the run instead."""
    from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

    parser = _BeamArgumentParser(allow_abbrev=False)
    for options in {c.__name__: c for c in PipelineOptions.__subclasses__()}.values():
        options._add_argparse_args(parser)
    return [a for a in parser.parse_known_args(argv)[1] if a.startswith("-")]


def wiring(stage: Stage, records: list[str], output: str) -> list[str]:
    """The flags `adr run` gives a stage itself: what it reads and where it writes."""
    stage_dir = join(output, stage.name)
    return {"annotate": ["--input", *records, "--output", stage_dir],
            "stats": ["--input", *records, "--output", stage_dir],
            "rebalance": ["--input", *records, "--dictionary", join(output, "stats"), "--output", stage_dir],
            "synthesize": ["--rebalanced", join(output, "rebalance"), "--dictionary", join(output, "stats"),
                           "--output", stage_dir],
            "report": ["--run", output]}[stage.name]


def check_stage_flags(stages: list[Stage], values: dict, inputs: list[str], output: str, beam_extra: list[str]):
    """Each stage parses its flags as it will when it runs (a malformed --mix or --tail-share, flags
    that do not go together): a mistake fails now, in one line, not after an hour of statistics."""
    import importlib

    for stage in stages:
        module = importlib.import_module(f"pipelines.{stage.name}.job")
        module.parse_args(wiring(stage, inputs, output) + to_argv(stage, values[stage.name])
                          + (beam_extra if stage.beam else []))


def stage_key(stage: Stage, argv: list[str], upstream: list[str], input_fingerprint: str | None) -> str:
    payload = [__version__, stage.name, argv, upstream, input_fingerprint]
    return hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:32]


def state(stage_dir: str, key: str) -> str:
    """done (same key finished), interrupted (same key started) or new."""
    for marker, status in ((DONE, "done"), (STARTED, "interrupted")):
        found = read_json_or_none(join(stage_dir, marker))
        if found and found["key"] == key:
            return status
    return "new"


def run(argv=None, spark=None) -> dict:
    """Run the stages that are not up to date; returns {stage: 'ran' | 'resumed' | 'skipped'}."""
    argv = list(sys.argv[1:] if argv is None else argv)
    cli_ns, extra = parser().parse_known_args(argv)
    cli = vars(cli_ns)
    config = load_config(cli.pop("config", None))
    check_config(config, "--config")
    inputs = cli.get("input") or config.get("input")
    output = cli.get("output") or config.get("output")
    if not inputs or not output:
        raise ConfigError("adr run needs --input and --output (on the command line or in --config)")
    inputs = [inputs] if isinstance(inputs, str) else list(inputs)
    force = cli.get("force") or config.get("force", False)
    from udfs.sources import expand_inputs, fingerprint

    input_fingerprint = fingerprint(expand_inputs(inputs))
    beam_extra = beam_argv(extra, config)
    values = {s.name: stage_values(s, cli, config) for s in STAGES}
    wanted = [s for s in STAGES if s.name != "annotate" or values["annotate"].get("detector")]
    check_stage_flags(wanted, values, inputs, output, beam_extra)
    from udfs.model_files import check_model

    for stage in wanted:  # a wrong model path fails now, not after an hour of statistics
        for name in MODEL_OPTIONS:
            if values[stage.name].get(name):
                check_model(values[stage.name][name])
    if wanted[0].name != "annotate":
        print("annotate: not run (give --detector to ground objects in records without them)", file=sys.stderr)

    records = inputs
    keys: list[str] = []
    outcome: dict[str, str] = {}
    for stage in wanted:
        stage_dir = join(output, stage.name)
        own = to_argv(stage, values[stage.name])
        key = stage_key(stage, own, keys, input_fingerprint)
        keys.append(key)
        status = "new" if force else state(stage_dir, key)
        if status == "done":
            print(f"{stage.name}: up to date, skipped ({stage_dir})", file=sys.stderr)
            outcome[stage.name] = "skipped"
        else:
            resume = status == "interrupted" and stage.resumable
            if resume:
                print(f"{stage.name}: resuming the interrupted run in {stage_dir}", file=sys.stderr)
            else:
                remove(stage_dir)
            write_json(join(stage_dir, STARTED), {"key": key, "argv": own})
            started = time.time()
            extra_argv = (["--resume"] if resume and stage.name == "stats" else []) + (beam_extra if stage.beam else [])
            print(_run_stage(stage, wiring(stage, records, output) + own + extra_argv, spark))
            write_json(join(stage_dir, DONE), {"key": key, "argv": own, "seconds": round(time.time() - started, 1),
                                              "version": __version__})
            outcome[stage.name] = "resumed" if resume else "ran"
        if stage.name == "annotate":
            records = [join(stage_dir, "records")]
    print(f"report: {join(output, 'report', 'index.html')}")
    return outcome


def _run_stage(stage: Stage, argv: list[str], spark) -> str:
    """Run one stage in this process; returns its summary for the terminal."""
    print(f"{stage.name}: running", file=sys.stderr)
    if stage.name == "stats":
        from pipelines.stats import job as stats

        manifest = stats.run(argv, spark=spark)
        if spark is None:
            # The JVM is not needed by later stages; its memory is.
            from pyspark.sql import SparkSession

            active = SparkSession.getActiveSession()
            if active is not None:
                active.stop()
        return stats.describe(manifest, argv)
    if stage.name == "rebalance":
        from pipelines.rebalance import job as rebalance

        _, summary = rebalance.run(argv)
        if summary["input"] and summary["invalid"] == summary["input"]:
            raise ConfigError(f"no valid records in the input ({summary['invalid']} invalid)")
        return rebalance.describe(summary)
    if stage.name == "synthesize":
        from pipelines.synthesize import job as synthesize

        return synthesize.describe(synthesize.run(argv))
    if stage.name == "annotate":
        from pipelines.annotate import job as annotate

        return annotate.describe(annotate.run(argv))
    from pipelines.report import job as report

    report.run(argv)
    return "report: written"


def main(argv=None) -> int:
    run(argv)
    return 0
