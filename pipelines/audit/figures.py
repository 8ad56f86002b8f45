"""The audit page's PNG figures (matplotlib, headless). Failures are red, successes grey; with two
dictionaries, 'before' is drawn light and 'after' dark."""

from __future__ import annotations

from pipelines.report.figures import _save, plt

FAILED, SUCCEEDED = "#d62728", "#7f7f7f"
SHADES = {1: (1.0,), 2: (0.45, 1.0)}  # alpha per dictionary


def accuracy_by_bucket(path, perspective: str, buckets: list[str], series: dict[str, list[tuple[float | None, int]]],
                       overall: float) -> None:
    """Bars of accuracy per bucket of the rarest entity's training count, one per dictionary, with n."""
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(buckets) * len(series)), 4))
    width = 0.8 / len(series)
    for k, (name, values) in enumerate(series.items()):
        xs = [g + k * width for g in range(len(buckets))]
        bars = ax.bar(xs, [100 * (a or 0.0) for a, _ in values], width, label=name, color="#1f77b4",
                      alpha=SHADES[len(series)][k])
        ax.bar_label(bars, labels=[f"{100 * a:.1f}%\nn={n:,}" if n else "" for a, n in values], fontsize=7)
    ax.axhline(100 * overall, color="black", linestyle="--", linewidth=0.8, label=f"all items: {100 * overall:.1f}%")
    ax.set_xticks([g + width * (len(series) - 1) / 2 for g in range(len(buckets))], buckets, fontsize=8)
    ax.set_xlabel("training count of the item's rarest entity")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 135)  # room for the legend above the bars and their labels
    ax.set_title(f"{perspective}: accuracy by the rarest entity's training count")
    ax.legend(fontsize=7, loc="upper right", ncols=3)
    _save(fig, path)


def error_accumulation(path, perspective: str, curves: dict[str, tuple[list, list]], tau: int,
                       threshold: int | None) -> None:
    """Cumulative share of the failed (and successful) items' entity occurrences by training count."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for (name, (failed, succeeded)), alpha in zip(curves.items(), SHADES[len(curves)]):
        for points, color, style, what in ((failed, FAILED, "-", "failures"), (succeeded, SUCCEEDED, ":", "successes")):
            if points:
                xs, ys = zip(*points)
                label = what if len(curves) == 1 else f"{what}, {name}"
                ax.step([0, *xs], [0, *ys], where="post", linestyle=style, color=color, alpha=alpha, label=label)
    if tau > 0:
        ax.axvline(tau, color="black", linestyle="--", linewidth=0.8, label=f"tau = {tau} (tail at or below)")
    if threshold is not None:
        ax.axhline(0.5, color="#bbbbbb", linewidth=0.8)
        ax.plot([threshold], [0.5], "o", color=FAILED, label=f"half the failed occurrences: count <= {threshold:,}")
    ax.set_xscale("symlog", linthresh=1)  # keeps 0 (unseen) on the axis
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("training count of the entity (0 = unseen)")
    ax.set_ylabel("cumulative share of entity occurrences")
    ax.set_title(f"{perspective}: error accumulation")
    ax.legend(fontsize=7, loc="lower right")
    _save(fig, path)


def head_tail(path, title: str, perspectives: list[str], shares: dict[str, dict[str, dict]]) -> None:
    """Per perspective: % of failures and of successes whose entities are all tail, any tail."""
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(perspectives)), 4))
    width = 0.2
    bars = (("failures", "all_tail_pct", FAILED, 1.0), ("successes", "all_tail_pct", SUCCEEDED, 1.0),
            ("failures", "any_tail_pct", FAILED, 0.45), ("successes", "any_tail_pct", SUCCEEDED, 0.45))
    for k, (who, key, color, alpha) in enumerate(bars):
        xs = [g + k * width for g in range(len(perspectives))]
        made = ax.bar(xs, [shares[p][who][key] or 0.0 for p in perspectives], width, color=color, alpha=alpha,
                      label=f"{who}: {key.removesuffix('_pct').replace('_', ' ')}")
        ax.bar_label(made, fmt="%.1f%%", fontsize=7)
    ax.set_xticks([g + 1.5 * width for g in range(len(perspectives))], perspectives, fontsize=8)
    ax.set_ylabel("% of items")
    ax.set_ylim(0, 135)  # room for the legend above the 100% bars
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper right", ncols=2)
    _save(fig, path)
