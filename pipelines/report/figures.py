"""The report's PNG figures (matplotlib, no display needed)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: workers and CI have no display

import matplotlib.pyplot as plt  # noqa: E402

BEFORE, AFTER = "#7f7f7f", "#1f77b4"


def _save(fig, path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)


def rank_frequency(path, perspective: str, before: list[int], after: list[int], tau: int) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for counts, label, color in ((before, "before", BEFORE), (after, "after", AFTER)):
        if counts:
            ax.loglog(range(1, len(counts) + 1), counts, label=f"{label} ({len(counts):,} entities)", color=color)
    if tau > 0:
        ax.axhline(tau, color="#d62728", linestyle="--", linewidth=1, label=f"tau = {tau} (tail at or below)")
    ax.set_xlabel("rank")
    ax.set_ylabel("records containing the entity")
    ax.set_title(f"{perspective}: frequency by rank")
    ax.legend(fontsize=8)
    _save(fig, path)


def grouped_bars(path, title: str, groups: list[str], series: dict[str, list[float]], ylabel: str,
                 percent: bool = False) -> None:
    """One group of bars per perspective (or measure), one bar per series (before/after...)."""
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(groups) * len(series) / 2), 4))
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        xs = [g + i * width for g in range(len(groups))]
        bars = ax.bar(xs, values, width, label=name)
        ax.bar_label(bars, fmt="%.1f%%" if percent else "%.3f", fontsize=7)
    ax.set_xticks([g + width * (len(series) - 1) / 2 for g in range(len(groups))], groups, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    _save(fig, path)


def record_counts(path, counts: dict[str, int]) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    bars = ax.bar(list(counts), list(counts.values()), color=[_color(k) for k in counts])
    ax.bar_label(bars, labels=[f"{v:,}" for v in counts.values()], fontsize=8)
    ax.set_ylabel("records")
    ax.set_title("records by outcome")
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right", fontsize=8)
    _save(fig, path)


def _color(name: str) -> str:
    if name.startswith("synthesised"):
        return "#2ca02c"
    return {"dropped": "#ff7f0e", "invalid": "#d62728", "kept": AFTER, "refined": "#9467bd"}.get(name, BEFORE)
