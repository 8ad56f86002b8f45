"""The `adr` command: one subcommand per stage; each stage module owns its flags."""

from __future__ import annotations

import logging
import sys

USAGE = """usage: adr <command> [options]

commands:
  run           the whole pipeline: [annotate ->] stats -> rebalance -> synthesize -> report
  report        DIR/report/index.html: what a run did, before and after
  stats         corpus statistics and the probability dictionary (Apache Spark)
  rebalance     keep tail records, drop part of the head-only ones (Apache Beam)
  synthesize    refill the dropped budget with tail-centred records (Beam RunInference)
  annotate      objects for unannotated records, by a zero-shot detector (Beam RunInference)
  import coco   official COCO caption/instance files -> LLaVA JSON Lines
  audit         which of a model's benchmark failures sit in the tail of its training data

Run `adr <command> --help` for its options."""


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # Local worker processes relay their start-up warnings through the job service ("Discarding
    # unparseable args", "No semi_persistent_directory"): noise on every local parallel run.
    logging.getLogger("apache_beam.runners.portability.local_job_service").setLevel(logging.ERROR)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    from adr.errors import AdrError

    try:
        if command == "run":
            from pipelines import run
            return run.main(rest)
        if command == "report":
            from pipelines.report import job as report
            return report.main(rest)
        if command == "stats":
            from pipelines.stats import job as stats
            manifest = stats.run(rest)
            print(stats.describe(manifest, rest))
            return 0
        if command == "rebalance":
            from pipelines.rebalance import job as rebalance
            return rebalance.main(rest)
        if command == "synthesize":
            from pipelines.synthesize import job as synthesize
            return synthesize.main(rest)
        if command == "annotate":
            from pipelines.annotate import job as annotate
            return annotate.main(rest)
        if command == "audit":
            from pipelines.audit import job as audit
            return audit.main(rest)
        if command == "import" and rest[:1] == ["coco"]:
            from pipelines import coco_import
            return coco_import.run(rest[1:])
    except AdrError as err:
        print(f"adr {command}: error: {err}", file=sys.stderr)
        return 2
    print(f"adr: unknown command {' '.join(argv[:2])!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
