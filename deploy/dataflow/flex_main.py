"""Dataflow Flex Template entry point (FLEX_TEMPLATE_PYTHON_PY_FILE in the worker image).

The template launcher runs this file with the template's parameters as `--name=value` and a
`--template_location` of its own: Beam then writes the job graph there instead of submitting it,
and Dataflow starts the job once this process exits 0. Two consequences shape this file:

- Parameter names are spelled with underscores, like Beam's and Dataflow's own options (whether
  template metadata accepts hyphens was not verified); the stage's flags use hyphens
  (`--target-size`), so names the stage defines are re-spelled here.
- The stage's run() sees a result with no job when the graph is only staged, and then does not
  read the summary the job writes later (pipelines.outputs.read_summary). synthesize is not
  offered: its driver runs one job per round and reads each round's output, which a launch that
  only stages one graph cannot do.
"""

from __future__ import annotations

import sys

STAGES = ("rebalance", "annotate")
COMMAND = "adr_command"


def split_command(argv: list[str]) -> tuple[str, list[str]]:
    """The template's `adr_command` parameter picks the stage; the rest are its flags."""
    command, rest = None, []
    for arg in argv:
        if arg.startswith(f"--{COMMAND}="):
            command = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    if command not in STAGES:
        raise SystemExit(f"flex_main: --{COMMAND} must be one of {sorted(STAGES)}, got {command!r}")
    return command, rest


def stage_flags(parser, argv: list[str]) -> list[str]:
    """`--target_size=5` -> `--target-size=5` where the stage defines the hyphenated flag; anything
    else (Beam's own options, which use underscores) is left as it is."""
    known = parser.flags
    out = []
    for arg in argv:
        name, eq, value = arg.partition("=")
        hyphenated = "--" + name[2:].replace("_", "-") if name.startswith("--") else name
        out.append(hyphenated + eq + value if name not in known and hyphenated in known else arg)
    return out


def main(argv: list[str] | None = None) -> int:
    from pipelines.stage import command
    from pipelines.stages import stages

    name, rest = split_command(list(sys.argv[1:] if argv is None else argv))
    stage = stages()[name]
    return command(stage, stage_flags(stage.parser(), rest))


if __name__ == "__main__":
    sys.exit(main())
