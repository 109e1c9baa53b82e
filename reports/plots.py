"""The report's charts (matplotlib, Agg backend), each returned as PNG bytes."""

from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")  # files only: never open a window, work without a display

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

DPI = 90


def png(fig: Figure, *, tight: bool = True) -> bytes:
    """Render and close ``fig``; ``tight`` crops to the drawn extent (costly with many axes)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight" if tight else None)
    plt.close(fig)
    return buffer.getvalue()


def colours(names: list[str]) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab20")
    return {name: cmap(i % 20) for i, name in enumerate(sorted(set(names)))}


def metric_bars(title: str, metric: str, labels: list[str], means: list[float], halves: list[float | None],
                best: str | None, baseline: float | None) -> bytes:
    """Mean per variant with its 95% interval; the best bar outlined, the baseline as a line."""
    fig, ax = plt.subplots(figsize=(max(5.0, 0.55 * len(labels) + 2), 3.4))
    errors = [h if h is not None else 0.0 for h in halves]
    bars = ax.bar(range(len(labels)), means, yerr=errors, capsize=3, color="#8fb8de", edgecolor="#34618f")
    for bar, label in zip(bars, labels, strict=True):
        if label == best:
            bar.set_edgecolor("black")
            bar.set_linewidth(2.0)
    if baseline is not None:
        ax.axhline(baseline, color="#c0392b", linestyle="--", linewidth=1, label="baseline none")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(metric)
    ax.set_title(title, fontsize=10)
    return png(fig)


def pareto(title: str, metric: str, labels: list[str], score: list[float],
           costs: dict[str, tuple[list[float], list[bool]]]) -> bytes:
    """The metric against each cost (one panel per cost), the Pareto-optimal points joined."""
    fig, axes = plt.subplots(1, len(costs), figsize=(5.2 * len(costs), 3.8), squeeze=False)
    palette = colours(labels)
    for ax, (cost_name, (cost, front)) in zip(axes[0], costs.items(), strict=True):
        for label, x, y, on in zip(labels, cost, score, front, strict=True):
            if math.isfinite(x) and math.isfinite(y):
                ax.scatter(x, y, color=palette[label], marker="*" if on else "o", s=140 if on else 40,
                           edgecolor="black" if on else "none", zorder=3)
                ax.annotate(label, (x, y), fontsize=7, xytext=(4, 3), textcoords="offset points")
        points = sorted((x, y) for x, y, on in zip(cost, score, front, strict=True) if on)
        if points:
            ax.step(*zip(*points, strict=True), where="post", color="#555", linewidth=1, zorder=2)
        finite = [x for x in cost if math.isfinite(x) and x > 0]
        if finite and max(finite) > 10 * min(finite):  # log only where costs span decades
            ax.set_xscale("log")
        ax.set_xlabel(cost_name)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{title}: Pareto front (stars)", fontsize=10)
    return png(fig)


def scaling(title: str, series: dict[str, dict[str, tuple[list[float], list[float]]]],
            panels: list[tuple[str, str]]) -> bytes:
    """Log-log curves against sequence length; ``series[panel][variant] = (lengths, values)``."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.4 * len(panels), 4.0), squeeze=False)
    names = sorted({v for panel in series.values() for v in panel})
    palette = colours(names)
    for ax, (key, label) in zip(axes[0], panels, strict=True):
        for variant, (lengths, values) in sorted(series.get(key, {}).items()):
            ax.plot(lengths, values, marker="o", markersize=3, color=palette[variant], label=variant)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length L")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
    handles, texts = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, texts, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7)
    fig.suptitle(title, fontsize=10)
    return png(fig)


def by_length(title: str, ylabel: str, series: dict[str, tuple[list[float], list[float]]]) -> bytes:
    """A metric against sequence length (log2 axis), one line per variant."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    palette = colours(list(series))
    for variant, (lengths, values) in sorted(series.items()):
        ax.plot(lengths, values, marker="o", markersize=3, color=palette[variant], label=variant)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("sequence length L")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7)
    ax.set_title(title, fontsize=10)
    return png(fig)


def accuracy_cost(title: str, ylabel: str, panels: dict[int, list[tuple[str, float, float, float]]]) -> bytes:
    """Per length, the metric against step time with marker area proportional to memory (LRA's figure
    3); ``panels[L] = [(variant, seconds, metric, bytes), ...]``."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), squeeze=False)
    names = sorted({point[0] for points in panels.values() for point in points})
    palette = colours(names)
    # one area scale for every panel, so memory reads across lengths too
    largest = max((m for points in panels.values() for *_, m in points if math.isfinite(m)),
                  default=1.0) or 1.0
    for ax, (length, points) in zip(axes[0], sorted(panels.items()), strict=True):
        for variant, seconds, metric, memory in points:
            size = 30 + 400 * (memory / largest if math.isfinite(memory) else 0.0)
            ax.scatter(seconds, metric, s=size, color=palette[variant], alpha=0.7, edgecolor="black",
                       linewidth=0.5, label=variant, zorder=3)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels of a short log range collide
        ax.set_xlabel("training step time s (log)")
        ax.set_title(f"L = {length}", fontsize=9)
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel(ylabel)
    handles = {text: handle for ax in axes[0] for handle, text in zip(*ax.get_legend_handles_labels(),
                                                                       strict=True)}
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="center left", bbox_to_anchor=(1.0, 0.5),
                   fontsize=7, markerscale=0.5)
    fig.suptitle(title + " (marker area: peak memory of the step)", fontsize=10)
    return png(fig)


def history(title: str, trials: list[tuple[int, float, str]], pruned: list[int], maximize: bool) -> bytes:
    """Objective per trial by variant, the running best, pruned trials as a rug on the axis."""
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    palette = colours([v for _, _, v in trials])
    for variant in sorted(palette):
        xs = [n for n, _, v in trials if v == variant]
        ax.scatter(xs, [y for _, y, v in trials if v == variant], color=palette[variant], label=variant, s=25)
    ordered = sorted(trials)
    best, running = [], None
    for _, value, _ in ordered:
        running = value if running is None else (max if maximize else min)(running, value)
        best.append(running)
    if ordered:
        ax.step([n for n, _, _ in ordered], best, where="post", color="black", linewidth=1,
                label="best so far")
    if pruned:
        ax.plot(pruned, [0] * len(pruned), "|", color="grey", markersize=12,
                transform=ax.get_xaxis_transform(), label="pruned")
    ax.set_xlabel("trial")
    ax.set_ylabel("objective (validation)")
    ax.legend(fontsize=7, loc="best")
    ax.set_title(title, fontsize=10)
    return png(fig)


def importances(title: str, names: list[str], values: list[float]) -> bytes:
    fig, ax = plt.subplots(figsize=(5.5, 0.4 * len(names) + 1.2))
    ax.barh(range(len(names)), values, color="#8fb8de")
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("importance (fANOVA)")
    ax.set_title(title, fontsize=10)
    return png(fig)
