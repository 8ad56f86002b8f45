"""The report's static HTML page and its PNG figures (relative links: it opens from disk)."""

from __future__ import annotations

import html

import fsspec

from adr.distribution import rank_frequency, sample_tail, top_head
from adr.synthesis import METHODS
from pipelines.outputs import join, read_json_or_none
from pipelines.report import figures
from pipelines.report.data import RunData, balance, outcome_counts


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


CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}
th{background:#f3f3f3}td.n{text-align:right}
.figs{display:grid;grid-template-columns:1fr 1fr;gap:8px}.figs img{width:100%}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:1em;border-top:1px solid #ddd;padding:1em 0}
.turn{font-size:13px;margin:2px 0}.who{font-weight:600}.missing{color:#888;font-style:italic}
.card img{max-width:320px;display:block}.side{display:flex;gap:2em;align-items:flex-start}"""


def escape(x) -> str:
    return html.escape(str(x))


def html_table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(
        f'<td class="n">{v:,}</td>' if isinstance(v, int) else
        f'<td class="n">{v:.3f}</td>' if isinstance(v, float) else f"<td>{escape(v)}</td>" for v in row) + "</tr>"
        for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def card(title: str, record: dict, image: str | None) -> str:
    turns = "".join(f'<div class="turn"><span class="who">{escape(t.get("from"))}:</span> '
                    f'{escape(t.get("value"))}</div>' for t in record.get("conversations", []))
    if image:
        picture = f'<img src="{escape(image)}" alt="{escape(record.get("image"))}">'
    elif record.get("image"):
        picture = f'<div class="missing">image {escape(record["image"])} not found under --images-root</div>'
    else:
        picture = '<div class="missing">text-only record</div>'
    return f'<div class="card"><h4>{escape(title)}</h4>{picture}{turns}</div>'


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
            + html_table(["perspective", "ceiling", "occurrences synthesised", "to the tail", "tail entities lifted",
                      "of which new", "mean added", "median added", "highest lifted", "its count", "of ceiling",
                      "past ceiling", "catch-alls", "verdict"], rows))


def render(data: RunData, figs: dict[str, str], shown: list[dict], top: int, seed: int, run_dir: str) -> str:
    m, r, s = data.manifest, data.rebalance, data.synthesize
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>ADR report: "
             f"{escape(run_dir)}</title><style>{CSS}</style></head><body><h1>ADR report</h1>"
             f"<p>Run directory: <code>{escape(run_dir)}</code></p>"]
    parts.append("<h2>Records</h2>"
                 + f'<div class="figs"><img src="{figs["records"]}" alt="records by outcome"></div>')
    rows = [["read by statistics", m["elements_read"]], ["valid records", m["records"]],
            ["of which repeat an earlier record's id (same image, another conversation: kept)", m["repeated_ids"]],
            ["of which byte-identical to an earlier record", m["exact_duplicates"]],
            ["invalid (statistics)", m["invalid"]], ["rebalance input", r["input"]], ["kept", r["kept"]],
            ["dropped", r["dropped"]], ["invalid (rebalance)", r["invalid"]], ["budget", r["budget"]]]
    if s:
        rows += [[f"synthesised: {k}", s["made"][k]] for k in METHODS] + [["refined", s["refined"]]]
    parts.append(html_table(["", "records"], rows))
    a = read_json_or_none(join(run_dir, "annotate", "summary.json"))
    if a:
        parts.append(html_table(["annotate (before statistics)", "records"],
                            [[k, a[k]] for k in ("records", "annotated", "passed_through", "failed", "invalid")]))
    if m["invalid_by_reason"]:
        parts.append(html_table(["invalid reason", "records"], [[k, v] for k, v in m["invalid_by_reason"].items()]))
    if s and s.get("skipped"):
        parts.append(html_table(["synthesis method skipped", "why"], [[k, v] for k, v in s["skipped"].items()]))

    parts.append("<h2>Distributions</h2><p>Head and tail are cut at the statistics stage's tau on both sides; "
                 f"after = the refined corpus ({data.records_after:,} records).</p>")
    shape_rows = []
    for p, tau in data.taus.items():
        b, a = data.shapes[p]
        shape_rows.append([p, tau, b.entities, a.entities, f"{b.tail_entities_pct:.1f}%", f"{a.tail_entities_pct:.1f}%",
                           f"{b.tail_occurrences_pct:.1f}%", f"{a.tail_occurrences_pct:.1f}%",
                           b.gini, a.gini, b.entropy, a.entropy])
    parts.append(html_table(["perspective", "tau", "entities before", "after", "tail entities before", "after",
                         "tail occurrences before", "after", "Gini before", "after", "entropy before", "after"],
                        shape_rows))
    parts.append(balance_table(data))
    parts.append('<div class="figs">' + "".join(
        f'<img src="{figs[f"rank_{p}"]}" alt="{escape(p)} rank-frequency">' for p in data.taus)
        + f'<img src="{figs["tail_shares"]}" alt="tail shares"><img src="{figs["balance"]}" alt="Gini and entropy">'
        + "</div>")

    parts.append("<h2>Entities</h2>")
    for p, tau in data.taus.items():
        head = top_head(data.before[p], tau, top)
        tail = sample_tail(data.before[p], tau, top, seed)
        parts.append(f'<h3>{escape(p)} (tau {tau})</h3><div class="side">'
                     + html_table(["top head entity", "before", "after"],
                              [[e, c, data.after[p].get(e, 0)] for e, c in head])
                     + html_table(["sampled tail entity", "before", "after"],
                              [[e, c, data.after[p].get(e, 0)] for e, c in tail]) + "</div>")

    parts.append("<h2>Synthetic records beside their seeds</h2>")
    if not shown:
        parts.append('<p class="missing">no synthetic records in this run</p>')
    for row in shown:
        rec, prov = row["record"], row["record"]["adr"]
        parts.append('<div class="pair">' + card(f"seed {prov['seed_id']} (key {prov['seed_key']})", row["seed"],
                                                  row["seed_image"])
                     + card(f"{prov['method']}: {rec['id']}", rec, row["image"]) + "</div>")
    parts.append("</body></html>")
    return "\n".join(parts)
