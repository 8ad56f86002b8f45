"""The `adr` command: `adr run`, and one subcommand per stage of the registry (pipelines/stages.py)."""

from __future__ import annotations

import logging
import sys


def usage() -> str:
    from pipelines.stages import stages

    lines = ["usage: adr <command> [options]", "", "commands:",
             f"  {'run':<14}the whole pipeline: [annotate ->] stats -> rebalance -> synthesize -> report"]
    lines += [f"  {s.name:<14}{s.about}" for s in stages().values()]
    return "\n".join(lines + ["", "Run `adr <command> --help` for its options."])


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # Local worker processes relay their start-up warnings through the job service ("Discarding
    # unparseable args", "No semi_persistent_directory"): noise on every local parallel run.
    logging.getLogger("apache_beam.runners.portability.local_job_service").setLevel(logging.ERROR)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    from adr.errors import AdrError
    from pipelines.stage import command
    from pipelines.stages import stage as named

    if argv[0] == "run":
        from pipelines import run

        try:
            run.run(argv[1:])
        except AdrError as err:
            print(f"adr run: error: {err}", file=sys.stderr)
            return 2
        return 0
    for words in (2, 1):  # "import coco", then one-word stages
        stage = named(" ".join(argv[:words]))
        if stage is not None:
            return command(stage, argv[words:])
    print(f"adr: unknown command {' '.join(argv[:2])!r}\n\n{usage()}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
