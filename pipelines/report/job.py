"""`adr report --run DIR`: what a run did, as DIR/report/index.html with PNG figures.

Before = the statistics stage's counts. After = the kept records' entity counts (written by
rebalance) plus the synthetic records' (written by synthesize, tagged by the same udfs). Head and
tail are cut at the statistics' tau on both sides. The page is static HTML with relative links to
figures/ and images/, so it opens from disk without a server. The balance figures and verdicts
also go to DIR/report/balance.json, for benchmarks to read.
"""

from __future__ import annotations

import functools
import hashlib
import html
import io
import json
from dataclasses import dataclass, field

import fsspec

from adr.distribution import Lift, Verdict, rank_frequency, sample_tail, shape, synthesis_lift, top_head, verdict
from adr.entities.registry import CATCH_ALLS
from adr.synthesis import METHODS
from pipelines.checks import at_least, run_outputs
from pipelines.outputs import exists, iter_jsonl, join, read_json_or_none
from pipelines.report import figures
from pipelines.stage import Engine, Options, Stage, StageParser, frozen
from udfs.artifacts import Counts, read_counts
from udfs.entity_counts import dictionary_counts

SYNTHETIC_IMAGES = "adr-synthetic/"
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


@dataclass
class RunData:
    manifest: dict
    rebalance: dict
    synthesize: dict | None
    taus: dict[str, int]
    before: Counts
    after: Counts
    records_after: int
    added: Counts = field(default_factory=dict)  # the synthetic records' own counts

    @functools.cached_property
    def shapes(self) -> dict:
        """perspective -> (Shape before, Shape after), both cut at the statistics' tau."""
        return {p: (shape(self.before[p], tau), shape(self.after[p], tau)) for p, tau in self.taus.items()}

    @functools.cached_property
    def lifts(self) -> dict[str, Lift]:
        """perspective -> what synthesis added, against the ceilings and catch-alls it planned with
        (runs older than them: tau and the core's catch-alls)."""
        s = self.synthesize or {}
        ceilings = s.get("ceilings") or {}
        catch_alls = s.get("catch_alls", CATCH_ALLS)
        return {p: synthesis_lift(self.before[p], self.added.get(p, {}), tau, ceilings.get(p, tau),
                                  catch_alls.get(p, ())) for p, tau in self.taus.items()}

    @functools.cached_property
    def verdicts(self) -> dict[str, Verdict]:
        return {p: verdict(*self.shapes[p], self.lifts[p]) for p in self.taus}


def gather(run_dir: str) -> RunData:
    """Counts before (the dictionary) and after (the kept records' entity_counts/ from rebalance,
    plus the synthetic records' from synthesize): aggregates the stages wrote, sized by the
    distinct entities, never the records."""
    stats_dir = join(run_dir, "stats")
    manifest, rebalance = run_outputs(run_dir)
    synthesize = read_json_or_none(join(run_dir, "synthesize", "summary.json"))
    perspectives = tuple(manifest["parameters"]["perspectives"])
    taus = {p: manifest["perspectives"][p]["tau"] for p in perspectives}
    before = dictionary_counts(stats_dir, perspectives)
    after = read_counts(join(run_dir, "rebalance", "entity_counts"), perspectives)
    n_added, added = 0, {}
    if synthesize:
        added = read_counts(join(run_dir, "synthesize", "entity_counts"), perspectives)
        for p in perspectives:
            after[p].update(added[p])
        n_added = synthesize["synthetic"]
    return RunData(manifest, rebalance, synthesize, taus, before, after, rebalance["kept"] + n_added, added)


def save_figure(out: str, name: str, draw, *args, **kwargs) -> str:
    """Draw one PNG into OUT/figures/; its path relative to the page."""
    with fsspec.open(join(out, "figures", f"{name}.png"), "wb", auto_mkdir=True) as f:
        draw(f, *args, **kwargs)
    return f"figures/{name}.png"


def write_figures(data: RunData, out: str) -> dict[str, str]:
    """name -> relative path of each PNG."""
    made = {}

    def save(name, draw, *args, **kwargs):
        made[name] = save_figure(out, name, draw, *args, **kwargs)

    perspectives = list(data.taus)
    shapes = data.shapes
    for p in perspectives:
        save(f"rank_{p}", figures.rank_frequency, p, rank_frequency(data.before[p]), rank_frequency(data.after[p]),
             data.taus[p])
    save("tail_shares", figures.grouped_bars, "tail share (at tau) before and after", perspectives,
         {"tail entities, before": [shapes[p][0].tail_entities_pct for p in perspectives],
          "tail entities, after": [shapes[p][1].tail_entities_pct for p in perspectives],
          "tail occurrences, before": [shapes[p][0].tail_occurrences_pct for p in perspectives],
          "tail occurrences, after": [shapes[p][1].tail_occurrences_pct for p in perspectives]},
         "% of the perspective", percent=True)
    save("balance", figures.grouped_bars, "Gini (lower is more even) and normalised entropy (higher is more even)",
         [f"{p}\n{m}" for p in perspectives for m in ("Gini", "entropy")],
         {"before": [v for p in perspectives for v in (shapes[p][0].gini, shapes[p][0].entropy)],
          "after": [v for p in perspectives for v in (shapes[p][1].gini, shapes[p][1].entropy)]}, "value")
    save("records", figures.record_counts, outcome_counts(data))
    return made


def outcome_counts(data: RunData) -> dict[str, int]:
    r = data.rebalance
    counts = {"input": r["input"], "kept": r["kept"], "dropped": r["dropped"], "invalid": r["invalid"]}
    if data.synthesize:
        counts.update({f"synthesised: {m}": data.synthesize["made"][m] for m in METHODS})
        counts["refined"] = data.synthesize["refined"]
    return counts


# ---- examples: synthetic records beside their seeds ----------------------------------------

def _image_url(synthetic_root: str, images_root: str, image: str | None) -> str | None:
    if not image:
        return None
    if image.startswith(SYNTHETIC_IMAGES):
        return join(synthetic_root, image)
    return join(images_root, image)


def thumbnail(url: str | None, out: str) -> str | None:
    """A JPEG copy beside the page (relative path), or None when the image is missing or unreadable."""
    if not url:
        return None
    from PIL import Image

    try:
        with fsspec.open(url, "rb") as f:
            image = Image.open(io.BytesIO(f.read()))
            image.load()
    except Exception:  # missing or not an image: the page says so instead of a broken <img>
        return None
    image = image.convert("RGB")
    image.thumbnail((320, 320))
    name = f"images/{hashlib.sha1(url.encode()).hexdigest()[:16]}.jpg"
    with fsspec.open(join(out, name), "wb", auto_mkdir=True) as f:
        image.save(f, format="JPEG", quality=85)
    return name


def examples(run_dir: str, images_root: str, k: int, out: str) -> list[dict]:
    """Up to k synthetic records, spread over methods, those whose images can be shown first;
    one pass over synthetic/, holding at most 2k records per method."""
    if k <= 0:
        return []
    summary = read_json_or_none(join(run_dir, "synthesize", "summary.json")) or {}
    synthetic_root = summary.get("synthetic_images") or join(run_dir, "synthesize", "images")
    shown: dict[str, list] = {m: [] for m in METHODS}
    rest: dict[str, list] = {m: [] for m in METHODS}
    for record in iter_jsonl(join(run_dir, "synthesize", "synthetic", "*.jsonl")):
        m = record["adr"]["method"]
        if len(shown[m]) >= k:
            continue
        url = _image_url(synthetic_root, images_root, record.get("image"))
        if url is not None and exists(url):
            shown[m].append(record)
        elif len(rest[m]) < k:
            rest[m].append(record)
    by_method = {m: (shown[m] + rest[m])[:k] for m in METHODS if shown[m] or rest[m]}
    quota = dict.fromkeys(by_method, 0)  # round robin over the methods, as far as their records go
    while sum(quota.values()) < k and any(quota[m] < len(by_method[m]) for m in quota):
        for m in quota:
            if quota[m] < len(by_method[m]) and sum(quota.values()) < k:
                quota[m] += 1
    chosen = [r for m in quota for r in by_method[m][:quota[m]]]
    wanted = {r["adr"]["seed_key"] for r in chosen}
    seeds = {s["key"]: s["record"] for s in iter_jsonl(join(run_dir, "rebalance", "seeds", "*.jsonl"))
             if s["key"] in wanted}
    rows = []
    for record in chosen:
        seed = seeds.get(record["adr"]["seed_key"], {})
        rows.append({"record": record, "seed": seed,
                     "image": thumbnail(_image_url(synthetic_root, images_root, record.get("image")), out),
                     "seed_image": thumbnail(_image_url(synthetic_root, images_root, seed.get("image")), out)})
    return rows


# ---- the page ------------------------------------------------------------------------------

CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}
th{background:#f3f3f3}td.n{text-align:right}
.figs{display:grid;grid-template-columns:1fr 1fr;gap:8px}.figs img{width:100%}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:1em;border-top:1px solid #ddd;padding:1em 0}
.turn{font-size:13px;margin:2px 0}.who{font-weight:600}.missing{color:#888;font-style:italic}
.card img{max-width:320px;display:block}.side{display:flex;gap:2em;align-items:flex-start}"""


def _e(x) -> str:
    return html.escape(str(x))


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(
        f'<td class="n">{v:,}</td>' if isinstance(v, int) else
        f'<td class="n">{v:.3f}</td>' if isinstance(v, float) else f"<td>{_e(v)}</td>" for v in row) + "</tr>"
        for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _card(title: str, record: dict, image: str | None) -> str:
    turns = "".join(f'<div class="turn"><span class="who">{_e(t.get("from"))}:</span> {_e(t.get("value"))}</div>'
                    for t in record.get("conversations", []))
    if image:
        picture = f'<img src="{_e(image)}" alt="{_e(record.get("image"))}">'
    elif record.get("image"):
        picture = f'<div class="missing">image {_e(record["image"])} not found under --images-root</div>'
    else:
        picture = '<div class="missing">text-only record</div>'
    return f'<div class="card"><h4>{_e(title)}</h4>{picture}{turns}</div>'


def balance_verdicts(data: RunData) -> list[str]:
    """One plain sentence per perspective: whether refinement balanced it (see adr.distribution.verdict),
    with the figures that say so."""
    figures = balance(data)
    return [figures[p]["line"] for p in data.taus]


def _lift_phrase(lift: Lift) -> str:
    if not lift.added:
        return "synthesis added nothing"
    words = (f"synthesis lifted {lift.lifted:,} tail entities (mean +{lift.lift_mean:.1f}, median "
             f"+{lift.lift_median:g})" if lift.lifted else "synthesis lifted no tail entity")
    if lift.highest is not None and not lift.past_ceiling:  # past it: the verdict already names it
        words += f", highest {lift.highest!r} at {lift.highest_count:,} of ceiling {lift.ceiling:,}"
    return words + f"; {lift.tail_added_pct:.1f}% of its {lift.added:,} occurrences went to the tail"


def balance(data: RunData) -> dict:
    """perspective -> the figures, the verdict and its line: what balance.json holds."""
    out = {}
    for p, tau in data.taus.items():
        (b, a), lift, v = data.shapes[p], data.lifts[p], data.verdicts[p]
        if not b.entities:
            v = Verdict(False, f"nothing to balance: no {p} entities in this corpus")
            line = f"{p}: {v.text}" + (" (no record carries objects: `adr run --detector` grounds them)"
                                        if p in ("object", "cooccurrence") else "")
        else:
            line = (f"{p}: {v.text} (Gini {b.gini:.3f} -> {a.gini:.3f}, normalised entropy {b.entropy:.3f} -> "
                    f"{a.entropy:.3f}, tail share of occurrences {b.tail_occurrences_pct:.1f}% -> "
                    f"{a.tail_occurrences_pct:.1f}%; {_lift_phrase(lift)})")
        out[p] = {"tau": tau, "before": b.to_dict(), "after": a.to_dict(), "synthesis": lift.to_dict(),
                  "balanced": v.balanced, "verdict": v.text, "line": line}
    return out


def balance_table(data: RunData) -> str:
    """Per perspective: what synthesis gave the tail, against the ceiling, and the verdict (the three
    measures before and after are in the distribution table above)."""
    rows = []
    for p, f in balance(data).items():
        lift = data.lifts[p]
        reached = ([lift.highest, lift.highest_count, f"{lift.highest_ratio:.2f}x"] if lift.highest is not None
                   else ["", "", ""])
        rows.append([p, lift.ceiling, lift.added, f"{lift.tail_added_pct:.1f}%", lift.lifted, lift.new,
                     f"{lift.lift_mean:.1f}", f"{lift.lift_median:g}", *reached, lift.past_ceiling,
                     ", ".join(f"{e} +{n:,}" for e, n in lift.catch_alls.items()), f["verdict"]])
    return ("<h3>Balance</h3><p>Tail = count at or below tau in the statistics dictionary. Synthesis may lift a "
            "tail entity up to its perspective's ceiling; catch-all entities are never targets and are "
            "listed apart. <em>More balanced</em> means Gini down, entropy up, the tail's share of "
            "occurrences up and no entity pushed past its ceiling.</p>"
            + _table(["perspective", "ceiling", "occurrences synthesised", "to the tail", "tail entities lifted",
                      "of which new", "mean added", "median added", "highest lifted", "its count", "of ceiling",
                      "past ceiling", "catch-alls", "verdict"], rows))


def render(data: RunData, figs: dict[str, str], shown: list[dict], top: int, seed: int, run_dir: str) -> str:
    m, r, s = data.manifest, data.rebalance, data.synthesize
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>ADR report: {_e(run_dir)}</title>"
             f"<style>{CSS}</style></head><body><h1>ADR report</h1><p>Run directory: <code>{_e(run_dir)}</code></p>"]
    parts.append("<h2>Records</h2>" + f'<div class="figs"><img src="{figs["records"]}" alt="records by outcome"></div>')
    rows = [["read by statistics", m["elements_read"]], ["valid records", m["records"]],
            ["of which repeat an earlier record's id (same image, another conversation: kept)", m["repeated_ids"]],
            ["of which byte-identical to an earlier record", m["exact_duplicates"]],
            ["invalid (statistics)", m["invalid"]], ["rebalance input", r["input"]], ["kept", r["kept"]],
            ["dropped", r["dropped"]], ["invalid (rebalance)", r["invalid"]], ["budget", r["budget"]]]
    if s:
        rows += [[f"synthesised: {k}", s["made"][k]] for k in METHODS] + [["refined", s["refined"]]]
    parts.append(_table(["", "records"], rows))
    a = read_json_or_none(join(run_dir, "annotate", "summary.json"))
    if a:
        parts.append(_table(["annotate (before statistics)", "records"],
                            [[k, a[k]] for k in ("records", "annotated", "passed_through", "failed", "invalid")]))
    if m["invalid_by_reason"]:
        parts.append(_table(["invalid reason", "records"], [[k, v] for k, v in m["invalid_by_reason"].items()]))
    if s and s.get("skipped"):
        parts.append(_table(["synthesis method skipped", "why"], [[k, v] for k, v in s["skipped"].items()]))

    parts.append("<h2>Distributions</h2><p>Head and tail are cut at the statistics stage's tau on both sides; "
                 f"after = the refined corpus ({data.records_after:,} records).</p>")
    shape_rows = []
    for p, tau in data.taus.items():
        b, a = data.shapes[p]
        shape_rows.append([p, tau, b.entities, a.entities, f"{b.tail_entities_pct:.1f}%", f"{a.tail_entities_pct:.1f}%",
                           f"{b.tail_occurrences_pct:.1f}%", f"{a.tail_occurrences_pct:.1f}%",
                           b.gini, a.gini, b.entropy, a.entropy])
    parts.append(_table(["perspective", "tau", "entities before", "after", "tail entities before", "after",
                         "tail occurrences before", "after", "Gini before", "after", "entropy before", "after"],
                        shape_rows))
    parts.append(balance_table(data))
    parts.append('<div class="figs">' + "".join(
        f'<img src="{figs[f"rank_{p}"]}" alt="{_e(p)} rank-frequency">' for p in data.taus)
        + f'<img src="{figs["tail_shares"]}" alt="tail shares"><img src="{figs["balance"]}" alt="Gini and entropy">'
        + "</div>")

    parts.append("<h2>Entities</h2>")
    for p, tau in data.taus.items():
        head = top_head(data.before[p], tau, top)
        tail = sample_tail(data.before[p], tau, top, seed)
        parts.append(f'<h3>{_e(p)} (tau {tau})</h3><div class="side">'
                     + _table(["top head entity", "before", "after"],
                              [[e, c, data.after[p].get(e, 0)] for e, c in head])
                     + _table(["sampled tail entity", "before", "after"],
                              [[e, c, data.after[p].get(e, 0)] for e, c in tail]) + "</div>")

    parts.append("<h2>Synthetic records beside their seeds</h2>")
    if not shown:
        parts.append('<p class="missing">no synthetic records in this run</p>')
    for row in shown:
        rec, prov = row["record"], row["record"]["adr"]
        parts.append('<div class="pair">' + _card(f"seed {prov['seed_id']} (key {prov['seed_key']})", row["seed"],
                                                  row["seed_image"])
                     + _card(f"{prov['method']}: {rec['id']}", rec, row["image"]) + "</div>")
    parts.append("</body></html>")
    return "\n".join(parts)


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
