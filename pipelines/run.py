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
import hashlib
import json
import sys
import time
import tomllib

import fsspec

from adr import __version__
from adr.errors import ConfigError
from pipelines.checks import ArgumentParser
from pipelines.outputs import join, read_json_or_none, remove, write_json
from pipelines.stage import Stage, execute, is_switch
from pipelines.stages import in_run

DONE, STARTED = "_ADR_DONE.json", "_ADR_STARTED.json"
RUN_KEYS = ("input", "output", "force")  # options of `adr run` itself, not of a stage


def parser() -> argparse.ArgumentParser:
    ap = ArgumentParser(prog="adr run", description=__doc__.splitlines()[0], allow_abbrev=False,
                        epilog="Beam pipeline options (e.g. --runner, --direct_num_workers) go to the Beam stages.")
    ap.add_argument("--input", nargs="+", help="files, globs, directories or URLs")
    ap.add_argument("--output", help="run directory: one sub-directory per stage")
    ap.add_argument("--config", help="TOML file with the same options (the command line wins)")
    ap.add_argument("--force", action="store_true", help="run every stage, even those up to date")
    seen: dict[str, list[str]] = {}
    for stage in in_run():
        for action in stage.offered():
            seen.setdefault(action.option_strings[-1], []).append(stage.name)
    registered = set()
    for stage in sorted(in_run(), key=lambda s: s.runs_when is not None):  # optional stages' options last
        group = ap.add_argument_group(f"{stage.name} options")
        for action in stage.offered():
            flag = action.option_strings[-1]
            if flag in registered:
                continue
            registered.add(flag)
            kwargs = dict(dest=action.dest, default=argparse.SUPPRESS,
                          help=f"{action.help or ''} [{', '.join(seen[flag])}]".strip())
            if is_switch(action):
                kwargs["action"] = "store_true"
            else:
                kwargs.update(nargs=action.nargs, choices=action.choices, metavar=action.metavar)
            group.add_argument(flag, **kwargs)
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
    known = {s.name: {a.dest for a in s.offered()} for s in in_run()}
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
    for action in stage.offered():
        for source in (cli, table, top):
            if action.dest in source:
                values[action.dest] = source[action.dest]
                break
    return values


def to_argv(stage: Stage, values: dict) -> list[str]:
    argv = []
    for action in stage.offered():
        if action.dest not in values:
            continue
        value, flag = values[action.dest], action.option_strings[-1]
        if is_switch(action):
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
    import logging

    from apache_beam.options.pipeline_options import PipelineOptions

    options = PipelineOptions(argv)
    beam_log = logging.getLogger("apache_beam.options.pipeline_options")
    level = beam_log.level
    beam_log.setLevel(logging.ERROR)  # its "Discarding unparseable args" warning: the error below says it
    try:
        known = options.get_all_options()
        every = options.get_all_options(retain_unknown_options=True)
    finally:
        beam_log.setLevel(level)
    unknown = set(every) - set(known)
    return [a for a in argv if a.startswith("--") and a[2:].split("=", 1)[0] in unknown]


def check_stage_flags(stages: list[Stage], values: dict, inputs: list[str], output: str, beam_extra: list[str]):
    """Each stage parses its flags as it will when it runs (a malformed --mix or --tail-share, flags
    that do not go together): a mistake fails now, in one line, not after an hour of statistics."""
    for stage in stages:
        stage.configure(stage_argv(stage, values[stage.name], inputs, output, beam_extra))


def stage_argv(stage: Stage, values: dict, records: list[str], output: str, beam_extra: list[str]) -> list[str]:
    return stage.wiring(records, output) + to_argv(stage, values) + (beam_extra if stage.beam else [])


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
    values = {s.name: stage_values(s, cli, config) for s in in_run()}
    wanted = [s for s in in_run() if s.runs_when is None or values[s.name].get(s.runs_when)]
    check_stage_flags(wanted, values, inputs, output, beam_extra)
    from udfs.model_files import check_model

    for stage in wanted:  # a wrong model path fails now, not after an hour of statistics
        for name in stage.models():
            if values[stage.name].get(name):
                check_model(values[stage.name][name])
    for stage in in_run():
        if stage not in wanted:
            print(f"{stage.name}: not run (give --{stage.runs_when.replace('_', '-')} to run it)", file=sys.stderr)

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
            print(f"{stage.name}: running", file=sys.stderr)
            argv = stage_argv(stage, values[stage.name], records, output, beam_extra)
            stage_config, summary = execute(stage, argv + list(stage.resume_flags if resume else ()), spark)
            print(stage.describe(summary, stage_config))
            failure = stage.failure(summary, stage_config)
            if failure:
                raise ConfigError(f"{stage.name}: {failure}")
            write_json(join(stage_dir, DONE), {"key": key, "argv": own, "seconds": round(time.time() - started, 1),
                                              "version": __version__})
            outcome[stage.name] = "resumed" if resume else "ran"
        if stage.records_out:
            records = [join(stage_dir, stage.records_out)]
    print(f"report: {join(output, 'report', 'index.html')}")
    return outcome
