"""`adr report --run DIR`: what a run did, as DIR/report/index.html with PNG figures.

Before = the statistics stage's counts. After = the kept records' entity counts (written by
rebalance) plus the synthetic records' (written by synthesize, tagged by the same udfs). Head and
tail are cut at the statistics' tau on both sides. The page is static HTML with relative links to
figures/ and images/, so it opens from disk without a server. The balance figures and verdicts
also go to DIR/report/balance.json, for benchmarks to read.
"""

from __future__ import annotations

import json

import fsspec

from pipelines.checks import at_least
from pipelines.outputs import join
from pipelines.report.data import balance, gather
from pipelines.report.examples import examples
from pipelines.report.page import render, write_figures
from pipelines.stage import Engine, Options, Stage, StageParser, frozen

BALANCE = "balance.json"  # beside index.html: the balance figures and verdicts, for benchmarks


def parser() -> StageParser:
    ap = StageParser(prog="adr report", description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="the --output directory of `adr run`")
    ap.option("--images-root", default=".", help="where the records' images are (any URL)")
    ap.option("--examples", type=at_least(int, 0), default=6, help="synthetic records shown beside their seeds")
    ap.option("--top", type=at_least(int, 0), default=15, help="head entities and tail samples listed")
    ap.option("--seed", type=int, default=42, help="for the tail sample")
    return ap


def configure(argv: list[str]) -> tuple[Options, list[str]]:
    return frozen(parser().parse_args(argv)), []


def run(args: Options, engine: Engine = Engine()) -> str:
    """Write the report; returns the path of index.html."""
    out = join(args.run, "report")
    data = gather(args.run)
    figs = write_figures(data, out)
    shown = examples(args.run, args.images_root, args.examples, out)
    page = join(out, "index.html")
    with fsspec.open(page, "w", encoding="utf-8") as f:
        f.write(render(data, figs, shown, args.top, args.seed, args.run))
    with fsspec.open(join(out, BALANCE), "w", encoding="utf-8") as f:
        json.dump(balance(data), f, indent=1)
    return page


def describe(page: str, args: Options | None = None) -> str:
    """For the terminal: where the page is and the verdict lines (from balance.json beside it)."""
    with fsspec.open(join(page.rsplit("/", 1)[0], BALANCE), encoding="utf-8") as f:
        lines = [v["line"] for v in json.load(f).values()]
    return "\n".join([f"report: {page}"] + lines)


def wiring(records: list[str], run_dir: str) -> list[str]:
    return ["--run", run_dir]


STAGE = Stage("report", "DIR/report/index.html: what a run did, before and after", parser, configure, run, describe,
              wiring)
