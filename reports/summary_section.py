"""The report's first answer to "which attention should I use?": every variant on every task at once.

One table, variant x task, like Long Range Arena's main table: each cell is the variant's headline
metric on that task's section with its rank there (1 = best; ties share the mean of their ranks),
★ for the best, ▲/▼ when it is significantly better/worse than the task's no-attention baseline
and ≈ when it is not significantly worse than the best (``reports.verdicts``: Welch's test over
seeds, or the one-seed test, calibrated where the calibration covers both variants). The last
column is the average rank over the tasks the variant ran, with their count: average ranks compare
fairly only between variants that ran the same tasks.

Below it, one verdict per task, generated from the same tests and never claiming more: the best
variant; the others within noise of it; and, of those, the cheapest by the cost the runs measured
(one training step of the tested model where the suite measured it, else training throughput,
labelled as such).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from .document import Block, Bullets, Heading, Table, Text
from .runs import (
    BASELINE_VARIANT,
    VariantStats,
    baseline_of,
    headline_metric,
    metric_direction,
    variant_stats,
)
from .task_section import fold_equivalents, sections, task_title
from .verdicts import difference, run_noise


@dataclass(frozen=True)
class Column:
    """One task section of the summary."""

    title: str
    metric: str
    ranks: dict[str, float]
    cells: dict[str, str]
    verdict: str


def ranks(values: dict[str, float], maximise: bool) -> dict[str, float]:
    """Rank 1 = best; tied values share the mean of the ranks they span."""
    ordered = sorted(values, key=lambda k: -values[k] if maximise else values[k])
    result: dict[str, float] = {}
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and values[ordered[j + 1]] == values[ordered[i]]:
            j += 1
        for k in ordered[i:j + 1]:
            result[k] = (i + j) / 2 + 1
        i = j + 1
    return result


def readable(value: float) -> str:
    """Three significant digits, thousands separated, never in exponent form: 1,234 / 84.0 / 0.757."""
    if not math.isfinite(value):
        return ""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:#.3g}" if abs(value) >= 1 else f"{value:.3f}"


def _cost(stats: VariantStats, ok: pd.DataFrame) -> tuple[float, str] | None:
    """(cost, what it is) of one variant's runs: the median measured training step where the suite
    measured one, else the inverse of its training throughput."""
    rows = ok[ok["variant"] == stats.variant]
    steps = pd.to_numeric(rows.get("step_time_s"), errors="coerce").dropna() if "step_time_s" in rows else []
    if len(steps):
        return float(steps.median()), "training step time"
    if math.isfinite(stats.samples_per_s) and stats.samples_per_s > 0:
        return 1.0 / stats.samples_per_s, "training time per sample (throughput, machine shared as recorded)"
    return None


def _column(task: str, data: str, ok: pd.DataFrame) -> Column | None:
    headline = headline_metric(ok)
    if headline is None:
        return None
    stats = [s for s in fold_equivalents(variant_stats(ok))[0] if headline in s.intervals]
    if not stats:
        return None
    maximise = metric_direction(headline) == "max"
    means = {s.label: s.intervals[headline].mean for s in stats}
    ranked = ranks(means, maximise)
    best = min(stats, key=lambda s: (ranked[s.label], s.label))
    baseline = baseline_of(stats)
    noise = run_noise(stats, headline)
    floor = noise[0] if noise else 0.0
    cells, close = {}, []
    for s in stats:
        marks = ""
        if s is best:
            marks += " ★"
        else:
            versus_best = difference(s, best, headline, headline, floor)
            if versus_best is not None and not versus_best.significant:
                marks += " ≈"
                close.append(s)
        if baseline is not None and s is not baseline:
            versus = difference(s, baseline, headline, headline, floor)
            if versus is not None and versus.significant:
                marks += " ▲" if (versus.diff > 0) == maximise else " ▼"
        cells[s.label] = f"{readable(means[s.label])} ({ranked[s.label]:g}){marks}"
    name = headline.removeprefix("metric:")
    title = task_title(task, data)
    verdict = f"**{title}**: best `{best.label}` ({name} {readable(means[best.label])})"
    if close:
        verdict += "; within noise of it: " + ", ".join(f"`{s.label}`" for s in close)
        costs = {s.label: _cost(s, ok) for s in [best, *close]}
        priced = {label: c for label, c in costs.items() if c is not None}
        kinds = {c[1] for c in priced.values()}
        if len(priced) >= 2 and len(kinds) == 1:
            cheapest = min(priced, key=lambda label: priced[label][0])
            verdict += f"; the cheapest of these by {kinds.pop()}: `{cheapest}`"
    else:
        verdict += "; every other variant is significantly worse"
    if baseline is not None and any(s is baseline for s in close):
        verdict += f" (the no-attention `{BASELINE_VARIANT}` is among them: attention is not needed here)"
    return Column(title, name, ranked, cells, verdict + ".")


def summary_blocks(frame: pd.DataFrame) -> list[Block]:
    """The variant x task table and the per-task verdicts; [] without successful runs."""
    columns = [c for task, data, ok in sections(frame) if (c := _column(task, data, ok)) is not None]
    if not columns:
        return []
    labels = sorted({label for c in columns for label in c.cells})
    average = {label: [c.ranks[label] for c in columns if label in c.ranks] for label in labels}
    order = sorted(labels, key=lambda label: (-len(average[label]), sum(average[label]) / len(average[label]),
                                              label))
    rows = [[label, *(c.cells.get(label, "") for c in columns),
             f"{sum(average[label]) / len(average[label]):.2f} ({len(average[label])})"] for label in order]
    header = ["variant", *(f"{c.title}: {c.metric}" for c in columns), "average rank (tasks)"]
    return [Heading("Which attention? All tasks at a glance"), Text(
        "Each cell: the variant's headline metric on that task (mean over seeds) and its rank there "
        "(1 = best; ties share their mean rank). ★ best; ≈ not significantly worse than the best; ▲/▼ "
        f"significantly better/worse than the task's `{BASELINE_VARIANT}` (the tests of the task tables "
        "below: Welch's over seeds, or the one-seed test, calibrated where the protocol line says so). "
        "Rows are sorted by the number of tasks run, then by average rank; average ranks compare fairly "
        "only between rows with the same number of tasks."),
        Table(header, rows), Text("Verdicts, from the same tests:"), Bullets([c.verdict for c in columns])]
