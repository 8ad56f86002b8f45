"""The page of `adr audit`: DIR/index.html with PNG figures, static, opening from disk like the run report."""

from __future__ import annotations

import fsspec

from adr.audit import OBJECT_PERSPECTIVES
from pipelines.audit import figures
from pipelines.outputs import join
from pipelines.report.page import CSS, escape, html_table, save_figure


def names(summary: dict) -> list[str]:
    """Short names for the dictionaries in figures and headings (the page lists their paths)."""
    return ["before", "after"] if len(summary["dictionaries"]) == 2 else ["training data"]


# ---- figures ---------------------------------------------------------------------------------

def write_figures(summary: dict, out: str) -> dict[str, str]:
    made = {}

    def save(name, draw, *args, **kwargs):
        made[name] = save_figure(out, name, draw, *args, **kwargs)

    labels, audits = names(summary), summary["audits"]
    shown = [p for p, a in audits[0].items() if a["items"]]
    for p in shown:
        longest = max(audits, key=lambda a: len(a[p]["accuracy_by_bucket"]))[p]["accuracy_by_bucket"]
        used = [k for k in range(len(longest)) if any(_bucket(a[p], k)["items"] for a in audits)]
        series = {name: [(_bucket(a[p], k)["accuracy"], _bucket(a[p], k)["items"]) for k in used]
                  for name, a in zip(labels, audits)}
        save(f"accuracy_{p}", figures.accuracy_by_bucket, p, [longest[k]["bucket"] for k in used], series,
             summary["items"]["accuracy"])
        curves = {name: (a[p]["error_accumulation"]["failures"], a[p]["error_accumulation"]["successes"])
                  for name, a in zip(labels, audits)}
        save(f"accumulation_{p}", figures.error_accumulation, p, curves, audits[0][p]["tau"],
             audits[0][p]["table2"]["threshold"])
    if shown:
        for k, (name, audit) in enumerate(zip(labels, audits)):
            save(f"head_tail_{k}", figures.head_tail, f"items whose entities are all / any tail ({name})", shown,
                 {p: audit[p]["head_tail"] for p in shown})
    return made


def _bucket(audit: dict, k: int) -> dict:
    buckets = audit["accuracy_by_bucket"]
    return buckets[k] if k < len(buckets) else {"items": 0, "accuracy": None}


# ---- the page --------------------------------------------------------------------------------

def _pct(x) -> str:
    return "-" if x is None else f"{x:.1f}%"


def render(summary: dict, figs: dict[str, str]) -> str:
    i, labels = summary["items"], names(summary)
    parts = [f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>ADR audit</title>'
             f"<style>{CSS}</style></head><body><h1>ADR audit: where the failures sit in the training data</h1>"
             f"<p>Results: <code>{escape(' '.join(summary['parameters']['results']))}</code> "
             f"({escape(summary['parameters']['format'])}). An item fails when its score is below "
             f"{summary['parameters']['pass_score']}. Entities are extracted from each item's question by the "
             "statistics' own extractors and looked up in the training dictionary; an entity the training data "
             "never holds counts 0 (unseen) and is tail.</p>"]
    rows = [["items read", i["read"]], ["valid", i["valid"]], ["failed", i["failed"]],
            ["accuracy", _pct(100 * i["accuracy"])], ["invalid (see invalid.jsonl)", i["invalid"]]]
    rows += [[f"invalid: {k}", v] for k, v in i["invalid_by_reason"].items()]
    if i["reference_lines_invalid"]:
        rows.append(["invalid question/label lines", i["reference_lines_invalid"]])
    if i["labels_unmatched"]:
        rows.append(["labels with no answer", i["labels_unmatched"]])
    parts.append("<h2>Items</h2>" + html_table(["", "items"], rows))
    parts.append(html_table(["benchmark / category", "items", "accuracy"],
                            [[k, v["items"], _pct(100 * v["accuracy"])] for k, v in i["by_group"].items()]))
    if summary["grounding"]:
        g = summary["grounding"]
        parts.append(html_table(["grounding", ""], [["detector", g["detector"]], ["images grounded", g["grounded"]],
                                                    ["objects found", g["labels"]],
                                                    ["images unreadable", g["failed"]]]))

    perspectives = summary["parameters"]["perspectives"]
    parts.append("<h2>Training data</h2>" + html_table(
        ["", "dictionary", "training records"] + [f"tau {p}" for p in perspectives],
        [[name, d["path"], d["records"]] + [d["perspectives"][p]["tau"] for p in perspectives]
         for name, d in zip(labels, summary["dictionaries"])]))
    parts.append("<h2>Table 2: the failed cases against the training distribution</h2><p>Threshold: the training "
                 "count at or below which half of the failed items' entity occurrences lie. Then the share of the "
                 "training corpus's distinct entities, and of its entity occurrences, at or below it.</p>")
    for name, audit in zip(labels, summary["audits"]):
        t2rows = [[p, a["table2"]["threshold"] if a["table2"]["threshold"] is not None else "-",
                   a["table2"]["failed_occurrences"], _pct(a["table2"]["failed_at_or_below_pct"]),
                   _pct(a["table2"]["failed_unseen_pct"]), _pct(a["table2"]["distinct_entities_pct"]),
                   _pct(a["table2"]["occurrences_pct"])] for p, a in audit.items()]
        parts.append(f"<h3>{escape(name)}</h3>" + html_table(
            ["perspective", "threshold", "failed occurrences", "at or below", "unseen", "distinct training entities",
             "training occurrences"], t2rows))
        htrows = [[p, a["tau"], a["items"], a["failures"], _pct(a["head_tail"]["failures"]["all_tail_pct"]),
                   _pct(a["head_tail"]["successes"]["all_tail_pct"]), _pct(a["head_tail"]["failures"]["any_tail_pct"]),
                   _pct(a["head_tail"]["successes"]["any_tail_pct"]), _pct(a["head_tail"]["failures"]["all_head_pct"]),
                   _pct(a["head_tail"]["successes"]["all_head_pct"])] for p, a in audit.items()]
        parts.append(html_table(["perspective", "tau", "items with entities", "failed", "failures all tail",
                                 "successes all tail", "failures any tail", "successes any tail", "failures all head",
                                 "successes all head"], htrows))
        missing = [p for p, a in audit.items() if not a["items"]]
        if missing:
            parts.append("<p>" + "; ".join(
                f"{escape(p)}: no item has {escape(p)} entities"
                + (" (no item carries objects: give items `objects`, or ground them with --detector)"
                   if p in OBJECT_PERSPECTIVES else "") for p in missing) + "</p>")
    parts.append('<div class="figs">' + "".join(f'<img src="{src}" alt="{escape(name)}">' for name, src in figs.items()
                                                if name.startswith("head_tail")) + "</div>")

    if summary["comparison"]:
        parts.append("<h2>Before and after refinement</h2><p>The failed items' distinct entities, cut at the first "
                     f"dictionary's tau on both sides: {escape(labels[0])} -> {escape(labels[1])}.</p>")
        crow = [[p, m["entities"], ", ".join(f"{k}: {v}" for k, v in m["moves"].items()), m["rose"], m["fell"],
                 m["unchanged"], m["median_count_before"] if m["median_count_before"] is not None else "-",
                 m["median_count_after"] if m["median_count_after"] is not None else "-",
                 _pct(m["tail_occurrences_pct_before"]), _pct(m["tail_occurrences_pct_after"])]
                for p, m in summary["comparison"].items()]
        parts.append(html_table(["perspective", "entities", "moves", "count rose", "fell", "unchanged", "median before",
                             "after", "tail share of failed occurrences before", "after"], crow))

    for p in perspectives:
        first = summary["audits"][0][p]
        if not first["items"]:
            continue
        parts.append(f"<h2>{escape(p)}</h2><div class=\"figs\">"
                     f'<img src="{figs[f"accuracy_{p}"]}" alt="{escape(p)} accuracy by bucket">'
                     f'<img src="{figs[f"accumulation_{p}"]}" alt="{escape(p)} error accumulation"></div>')
        for name, audit in zip(labels, summary["audits"]):
            a = audit[p]
            buckets = html_table(["rarest entity's training count", "items", "failed", "accuracy"],
                             [[b["bucket"], b["items"], b["failures"],
                               "-" if b["accuracy"] is None else _pct(100 * b["accuracy"])]
                              for b in a["accuracy_by_bucket"]])
            rare = html_table(["tail entity in failures", "training count", "failed items", "items", "failure rate"],
                          [[r["entity"], r["count"], r["failed_items"], r["items"], _pct(100 * r["failure_rate"])]
                           for r in a["rare_failed_entities"]])
            parts.append(f"<h3>{escape(name)} (tau {a['tau']})</h3><div class=\"side\">{buckets}{rare}</div>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write(summary: dict, out: str) -> str:
    """Figures and index.html under `out`; returns the page's path."""
    figs = write_figures(summary, out)
    page = join(out, "index.html")
    with fsspec.open(page, "w", encoding="utf-8") as f:
        f.write(render(summary, figs))
    return page
