"""Report sections from training runs: per-task results, accuracy against cost, the capability matrix."""

from __future__ import annotations

import math

import pandas as pd

from . import plots
from .document import Block, Figure, Heading, Table, Text
from .runs import (
    BASELINE_VARIANT,
    LATENCY_FIELD,
    VariantStats,
    baseline_of,
    compare,
    headline_metric,
    metric_direction,
    variant_stats,
)
from .stats import pareto_front

ALPHA = 0.05  # two-sided significance level of the differences from the baseline


def mib(value: float) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value / 2**20:,.0f}"


def number(value: float, digits: int = 1) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:,.{digits}f}"


def task_title(task: str, data: str) -> str:
    return f"{task} ({'embedded data' if data == 'embedded' else 'data ' + data})"


def sections(frame: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame]]:
    """(task, data, its successful runs) for every task section, in name order."""
    if frame.empty:
        return []
    ok = frame[frame["status"] == "ok"]
    return [(task, data, group) for (task, data), group in ok.groupby(["task", "data"], sort=True)]


def _best(stats: list[VariantStats], metric: str) -> str | None:
    scored = [s for s in stats if metric in s.intervals]
    if not scored:
        return None
    sign = 1.0 if metric_direction(metric) == "max" else -1.0
    return max(scored, key=lambda s: sign * s.intervals[metric].mean).label


def _marks(stats: VariantStats, baseline: VariantStats | None, metric: str) -> str:
    if baseline is None or stats is baseline:
        return ""
    result = compare(stats, baseline, metric)
    if result is None or result.p_two_sided >= ALPHA:
        return ""
    better = (result.diff > 0) == (metric_direction(metric) == "max")
    return " ▲" if better else " ▼"


def _versus(stats: VariantStats, baseline: VariantStats | None, metric: str) -> str:
    if baseline is None:
        return "no baseline run"
    if stats is baseline:
        return "(baseline)"
    result = compare(stats, baseline, metric)
    if result is None:
        return f"n/a (n={stats.n} vs {baseline.n}: needs 2 seeds each)"
    verdict = "significant" if result.p_two_sided < ALPHA else "not significant"
    return f"{result.diff:+.3f}, p={result.p_two_sided:.3g} ({verdict})"


def _metric_cell(stats: VariantStats, metric: str, best: bool) -> str:
    if metric not in stats.intervals:
        return ""
    text = stats.intervals[metric].text()
    return f"**{text} ★**" if best else text


def results_table(stats: list[VariantStats], headline: str, show_latency: bool) -> Table:
    metrics = sorted({m for s in stats for m in s.intervals}, key=lambda m: (m != headline, m))
    baseline = baseline_of(stats)
    best = {m: _best(stats, m) for m in metrics}
    columns = ["variant", "seeds", *(m.removeprefix("metric:") for m in metrics),
               f"{headline.removeprefix('metric:')} vs {BASELINE_VARIANT}", "params", "train samples/s",
               "train time s", *(["inference latency ms"] if show_latency else []), "peak memory MiB"]
    rows = []
    for s in stats:
        cells = [_metric_cell(s, m, best[m] == s.label) + _marks(s, baseline, m) for m in metrics]
        latency = [number(s.latency_s * 1e3, 2)] if show_latency else []
        rows.append([s.label, str(s.n), *cells, _versus(s, baseline, headline), number(s.params, 0),
                     number(s.samples_per_s), number(s.train_time_s), *latency,
                     f"{mib(s.peak_mem_bytes)} ({s.mem_method})" if s.mem_method else mib(s.peak_mem_bytes)])
    return Table(columns, rows)


def task_blocks(frame: pd.DataFrame) -> list[Block]:
    blocks: list[Block] = [Heading("Tasks"), Text(
        "Test metrics of each run's best-validation checkpoint: mean ± half-width of the 95% t-interval "
        "over seeds (n=1: a single seed, no interval). ★ best mean; ▲/▼ significantly better/worse "
        f"than the task's baseline `{BASELINE_VARIANT}` (Welch's t-test, two-sided, p < {ALPHA}); "
        "loss-like metrics are lower-is-better. Peak memory is the median over seeds with its method "
        "(`cpu_run_peak_rss`: the process's peak resident set during the run, its interpreter and imports "
        "included; `cpu_process_peak_rss`: the process's lifetime peak, from older records or non-Linux "
        "hosts).")]
    if not sections(frame):
        return [*blocks, Text("No successful training runs in the inputs.")]
    if frame[LATENCY_FIELD].isna().all():
        blocks.append(Text(f"Inference latency: not recorded by these runs (no `{LATENCY_FIELD}` field)."))
    for task, data, ok in sections(frame):
        stats = variant_stats(ok)
        headline = headline_metric(ok)
        title = task_title(task, data)
        blocks.append(Heading(title, 3))
        if headline is None:
            blocks.append(Text("These runs recorded no metrics."))
            continue
        blocks.append(results_table(stats, headline, ok[LATENCY_FIELD].notna().any()))
        shared = pd.to_numeric(ok["concurrent_runs"], errors="coerce").max()
        if shared > 1:
            blocks.append(Text(
                f"Speed: these runs trained with up to {shared:.0f} runs at once on the machine (the suite's "
                "`jobs`), which slows each of them; train samples/s and train time are comparable between "
                "runs of this table only as far as they shared the machine alike. Run with `jobs: 1` "
                "(or `attnbench micro`) for speed figures."))
        blocks.append(_bars(title, stats, headline))
    return blocks


def _bars(title: str, stats: list[VariantStats], headline: str) -> Figure:
    scored = [s for s in stats if headline in s.intervals]
    baseline = baseline_of(scored)
    png = plots.metric_bars(title, headline.removeprefix("metric:"), [s.label for s in scored],
                            [s.intervals[headline].mean for s in scored],
                            [s.intervals[headline].half for s in scored], _best(scored, headline),
                            baseline.intervals[headline].mean if baseline else None)
    return Figure(f"metric-{_slug(title)}", png, f"{title}: {headline.removeprefix('metric:')} "
                  "per variant (95% interval over seeds; outlined: best)")


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")[:60]


def pareto_blocks(frame: pd.DataFrame) -> list[Block]:
    blocks: list[Block] = [Heading("Accuracy against cost"), Text(
        "Each variant's mean headline metric against its mean training time and its median peak "
        "memory. A variant is on the Pareto front (★) when no other variant is at least as good on "
        "the metric and at least as cheap, and strictly better on one of them.")]
    for task, data, ok in sections(frame):
        headline = headline_metric(ok)
        stats = [s for s in variant_stats(ok) if headline in s.intervals]
        if len(stats) < 2:
            continue
        blocks += _pareto_task(task_title(task, data), headline, stats)
    return blocks


def _pareto_task(title: str, headline: str, stats: list[VariantStats]) -> list[Block]:
    maximize = metric_direction(headline) == "max"
    score = [s.intervals[headline].mean for s in stats]
    costs = {"train time (s)": [s.train_time_s for s in stats],
             "peak memory (MiB)": [s.peak_mem_bytes / 2**20 for s in stats]}
    fronts = {}
    for name, cost in costs.items():
        usable = [i for i, c in enumerate(cost) if math.isfinite(c) and c > 0]
        if usable:
            front = pareto_front([cost[i] for i in usable], [score[i] for i in usable], maximize=maximize)
            flags = dict(zip(usable, front, strict=True))
            fronts[name] = (cost, [flags.get(i, False) for i in range(len(stats))])
    if not fronts:
        return []
    rows = [[s.label, f"{score[i]:.3f}", *(f"{fronts[n][0][i]:,.3g}" + (" ★" if fronts[n][1][i] else "")
                                           for n in fronts)] for i, s in enumerate(stats)]
    metric = headline.removeprefix("metric:")
    png = plots.pareto(title, metric, [s.label for s in stats], score, fronts)
    return [Heading(title, 3), Table(["variant", metric, *fronts], rows),
            Figure(f"pareto-{_slug(title)}", png, f"{title}: {metric} against cost, Pareto front starred")]


def capability_blocks(frame: pd.DataFrame, missing: list[dict]) -> list[Block]:
    """Variant x task: what ran (seeds), and a numbered reason for every cell that did not."""
    blocks: list[Block] = [Heading("Capability matrix"), Text(
        "Variant x task over the training records: ✓ with the number of successful seeds, otherwise "
        "the status and a numbered reason (listed below the table); an empty cell has no record.")]
    cells = _cells(frame, missing)
    if not cells:
        return [*blocks, Text("No training records in the inputs.")]
    tasks = sorted({t for t, _ in cells})
    variants = sorted({v for _, v in cells}, key=lambda v: (v != BASELINE_VARIANT, v))
    reasons: dict[str, int] = {}
    rows = []
    for variant in variants:
        row = [variant]
        for task in tasks:
            row.append(_cell_text(cells.get((task, variant)), reasons))
        rows.append(row)
    notes = [f"[{n}] {reason}" for reason, n in reasons.items()]
    return [*blocks, Table(["variant", *tasks], rows), *([Text("Reasons:")] if notes else []),
            *([Table(["#", "reason"], [[str(n), r] for r, n in reasons.items()])] if notes else [])]


def _cells(frame: pd.DataFrame, missing: list[dict]) -> dict[tuple[str, str], list[tuple[str, str]]]:
    cells: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for _, row in frame.iterrows():
        cells.setdefault((row["task"], row["variant"]), []).append((row["status"], row["reason"] or ""))
    for entry in missing:
        if entry["variant"]:
            cells.setdefault((entry["task"], entry["variant"]), []).append(("missing", entry["reason"]))
    return cells


def _cell_text(entries: list[tuple[str, str]] | None, reasons: dict[str, int]) -> str:
    if not entries:
        return ""
    ok = sum(status == "ok" for status, _ in entries)
    others = sorted({(status, reason) for status, reason in entries if status != "ok"})
    parts = [f"✓ {ok}"] if ok else []
    for status, reason in others:
        number_ = reasons.setdefault(reason or f"{status} (no reason recorded)", len(reasons) + 1)
        count = sum(1 for s, r in entries if (s, r) == (status, reason))
        parts.append(f"{status} x{count} [{number_}]" if ok else f"{status} [{number_}]")
    return ", ".join(parts)
