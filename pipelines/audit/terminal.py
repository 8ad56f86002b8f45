"""The audit's summary in a few lines for a terminal (the page, index.html, has every figure)."""

from __future__ import annotations

from adr.audit import OBJECT_PERSPECTIVES


def _pct(x) -> str:
    return "-" if x is None else f"{x:.1f}%"


def summary_text(s: dict) -> str:
    i = s["items"]
    lines = [f"items {i['valid']}  failed {i['failed']}  accuracy {_pct(100 * i['accuracy'])}  invalid {i['invalid']}"
             + (f" ({', '.join(f'{k} {v}' for k, v in i['invalid_by_reason'].items())})" if i["invalid"] else "")]
    if s["grounding"]:
        g = s["grounding"]
        lines.append(f"grounded {g['grounded']} images ({g['labels']} objects), {g['failed']} images unreadable")
    for d, audit in zip(s["dictionaries"], s["audits"]):
        lines.append(f"against {d['path']} ({d['records']} training records):")
        lines += [f"  {line}" for p, a in audit.items() for line in _perspective_lines(p, a)]
    if s["comparison"]:
        lines.append(f"failed items' entities, {s['dictionaries'][0]['path']} -> {s['dictionaries'][1]['path']} "
                     "(both cut at the first tau):")
        for p, m in s["comparison"].items():
            if m["entities"]:
                moves = ", ".join(f"{k} {v}" for k, v in m["moves"].items())
                lines.append(f"  {p}: {m['entities']} entities: {moves}; tail share of failed occurrences "
                             f"{_pct(m['tail_occurrences_pct_before'])} -> {_pct(m['tail_occurrences_pct_after'])}")
    lines.append(f"audit: {s['page']}")
    return "\n".join(lines)


def _perspective_lines(p: str, a: dict) -> list[str]:
    if not a["items"]:
        return [f"{p}: no item has {p} entities"
                + (" (items carry no objects: give them `objects` or use --detector)" if p in OBJECT_PERSPECTIVES
                   else "")]
    ht, t2 = a["head_tail"], a["table2"]
    buckets = "  ".join(f"{b['bucket']} {_pct(100 * b['accuracy'])} (n={b['items']})"
                        for b in a["accuracy_by_bucket"] if b["items"])
    lines = [f"{p} (tau {a['tau']}): {a['items']} items, {a['failures']} failed; accuracy by rarest entity: {buckets}",
             f"  all-tail: {_pct(ht['failures']['all_tail_pct'])} of failures vs "
             f"{_pct(ht['successes']['all_tail_pct'])} of successes; any-tail: "
             f"{_pct(ht['failures']['any_tail_pct'])} vs {_pct(ht['successes']['any_tail_pct'])}"]
    if t2["threshold"] == 0:
        lines.append(f"  Table 2: {_pct(t2['failed_unseen_pct'])} of the failed cases' entity occurrences "
                     "are unseen in the training data (more than half: threshold 0)")
    elif t2["threshold"] is not None:
        lines.append(f"  Table 2: half of the failed cases' entity occurrences have training count <= "
                     f"{t2['threshold']} ({_pct(t2['failed_unseen_pct'])} unseen); at or below it: "
                     f"{_pct(t2['distinct_entities_pct'])} of distinct training entities, "
                     f"{_pct(t2['occurrences_pct'])} of training occurrences")
    return lines
