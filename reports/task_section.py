"""Report sections from training runs: per-task results, accuracy against cost, the capability matrix."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import pandas as pd

from . import plots
from .document import Block, Bullets, Figure, Heading, Table, Text
from .paired import bootstrap_interval
from .robustness import robustness_blocks
from .runs import (
    BASELINE_VARIANT,
    LATENCY_FIELD,
    VariantStats,
    baseline_of,
    headline_metric,
    metric_direction,
    variant_stats,
)
from .stats import pareto_front
from .verdicts import ALPHA, REPLICATES, Difference, difference, run_noise  # noqa: F401 (re-exported)

BUDGET_SPREAD = 0.10  # the protocol's parameter budget: within +-10% of the median attention variant


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


def equivalent_runs(frame: pd.DataFrame, task: str, data: str) -> dict[str, str]:
    """Variant -> reason for the section's runs a suite did not train because the variant provably
    computes the reference at the task's lengths (status ``equivalent``, ``Task.computes_reference``)."""
    rows = frame[(frame["status"] == "equivalent") & (frame["task"] == task) & (frame["data"] == data)]
    return {str(v): str(r or "") for v, r in zip(rows["variant"], rows["reason"], strict=True)}


def _best(stats: list[VariantStats], metric: str) -> str | None:
    scored = [s for s in stats if metric in s.intervals]
    if not scored:
        return None
    sign = 1.0 if metric_direction(metric) == "max" else -1.0
    return max(scored, key=lambda s: sign * s.intervals[metric].mean).label


def _marks(stats: VariantStats, baseline: VariantStats | None, metric: str, headline: str,
           floor: float) -> str:
    if baseline is None or stats is baseline:
        return ""
    result = difference(stats, baseline, metric, headline, floor)
    if result is None or not result.significant:
        return ""
    better = (result.diff > 0) == (metric_direction(metric) == "max")
    return " ▲" if better else " ▼"


def _versus(stats: VariantStats, other: VariantStats | None, headline: str, role: str, floor: float) -> str:
    if other is None:
        return f"no {role} run"
    if stats is other:
        return f"({role})"
    result = difference(stats, other, headline, headline, floor)
    if result is None:
        return f"n/a (n={stats.n} vs {other.n}, no shared test items: needs 2 seeds each)"
    return result.text()


def _metric_cell(stats: VariantStats, metric: str, best: bool, headline: str) -> str:
    if metric not in stats.intervals:
        return ""
    interval = stats.intervals[metric]
    if interval.n == 1 and metric == headline and len(stats.items) == 1:
        text = bootstrap_interval(next(iter(stats.items.values()))).text()  # over test items
    else:
        text = interval.text()
    return f"**{text} ★**" if best else text


def _converged(stats: VariantStats) -> str:
    if stats.not_converged:
        return "**no** (seed " + ", ".join(map(str, stats.not_converged)) + ")"
    return "yes" if stats.judged else "n/a"


def _lr(stats: VariantStats) -> str:
    return _lr_text(stats.lr)


def fold_equivalents(stats: list[VariantStats], skipped: Mapping[str, str] | None = None
                     ) -> tuple[list[VariantStats], dict[str, list[str]]]:
    """Variants that computed exactly the reference at these lengths are shown once, as part of the
    reference row (when there is one): the rows to show, and reference label -> folded variants.
    ``skipped`` (variant -> reason) are the variants a suite did not train because they provably
    compute the reference here (status ``equivalent``); they fold into that row too."""
    reference = next((s for s in stats if s.variant == "reference"), None)
    folded = [s for s in stats if s.equals_reference and s is not reference]
    names = sorted({*(s.label for s in folded), *(skipped or {})})
    if reference is None or not names:
        return stats, {}
    return [s for s in stats if s not in folded], {reference.label: names}


def results_table(stats: list[VariantStats], headline: str, show_latency: bool,
                  skipped: Mapping[str, str] | None = None) -> Table:
    metrics = sorted({m for s in stats for m in s.intervals}, key=lambda m: (m != headline, m))
    baseline = baseline_of(stats)
    best = {m: _best(stats, m) for m in metrics}
    best_stats = next((s for s in stats if s.label == best.get(headline)), None)
    shown, folded = fold_equivalents(stats, skipped)
    noise = run_noise(stats, headline)
    floor = noise[0] if noise else 0.0
    name = headline.removeprefix("metric:")
    columns = ["variant", "seeds", "lr", *(m.removeprefix("metric:") for m in metrics),
               f"{name} vs {BASELINE_VARIANT}", f"{name} vs best", "converged", "params", "train samples/s",
               "train time s", *(["inference latency ms"] if show_latency else []), "peak memory MiB"]
    rows = []
    for s in shown:
        cells = [_metric_cell(s, m, best[m] == s.label, headline) + _marks(s, baseline, m, headline, floor)
                 for m in metrics]
        latency = [number(s.latency_s * 1e3, 2)] if show_latency else []
        label = s.label + (f" (= {', '.join(folded[s.label])})" if s.label in folded else "")
        if s.equals_reference and s.label not in folded:
            label += " (= reference at these lengths)"
        rows.append([label, str(s.n), _lr(s), *cells, _versus(s, baseline, headline, "baseline", floor),
                     _versus(s, best_stats, headline, "best", floor), _converged(s), number(s.params, 0),
                     number(s.samples_per_s), number(s.train_time_s), *latency,
                     f"{mib(s.peak_mem_bytes)} ({s.mem_method})" if s.mem_method else mib(s.peak_mem_bytes)])
    return Table(columns, rows)


CONTROLS = ("uniform",)  # attention controls that are expected not to beat the baseline


COLLAPSE_SHARE = 0.5  # a variant scoring under this share of the best one has collapsed


def findings(stats: list[VariantStats], headline: str, learning_baseline: str) -> list[Block]:
    """Every attention variant that does not beat the task's attention-free ``learning_baseline``
    significantly, and (on a higher-is-better metric) every one that beats it but scores under
    ``COLLAPSE_SHARE`` of the best variant, each with the task's measured diagnosis or, without one,
    as undiagnosed."""
    baseline = next((s for s in stats if s.variant == learning_baseline), None)
    if baseline is None:
        return []
    better_is = metric_direction(headline)
    best = next((s for s in stats if s.label == _best(stats, headline)), None)
    noise = run_noise(stats, headline)
    lines = []
    for s in fold_equivalents(stats)[0]:
        if s.variant in (*CONTROLS, BASELINE_VARIANT, learning_baseline):
            continue
        why = f"diagnosed: {s.diagnosis}" if s.diagnosis else "**undiagnosed**: no measured reason recorded"
        result = difference(s, baseline, headline, headline, noise[0] if noise else 0.0)
        if result is not None and not (result.significant and (result.diff > 0) == (better_is == "max")):
            lines.append(f"`{s.label}` does not beat `{learning_baseline}` ({result.text()}); {why}")
        elif _collapsed(s, best, headline, better_is):
            lines.append(f"`{s.label}` beats `{learning_baseline}` but collapsed: "
                         f"{s.intervals[headline].mean:.3g}, under {COLLAPSE_SHARE:.0%} of the best "
                         f"(`{best.label}`, {best.intervals[headline].mean:.3g}); {why}")
    if not lines:
        return [Text(f"Every attention variant beats the attention-free `{learning_baseline}` significantly "
                     f"and scores at least {COLLAPSE_SHARE:.0%} of the best (the `uniform` control aside).")]
    return [Text(f"Attention variants that do not beat the attention-free `{learning_baseline}`, or that "
                 f"score under {COLLAPSE_SHARE:.0%} of the best variant:"),
            Bullets(lines)]


SATURATION = 0.97  # a score at or above this share of the metric's maximum leaves no room to differ


def saturation(stats: list[VariantStats], headline: str) -> list[Block]:
    """A line naming the variants at or above ``SATURATION`` of the headline's maximum, where the
    maximum is known: per-item scores in [0, 1] averaged (accuracy-like items), times their scale."""
    tops = []
    for s in fold_equivalents(stats)[0]:
        items = next(iter(s.items.values()), None)
        if items is None or items.kind != "mean" or headline not in s.intervals:
            continue
        if items.values.min() < 0 or items.values.max() > 1:
            continue
        if s.intervals[headline].mean >= SATURATION * items.scale:
            tops.append(f"`{s.label}` ({s.intervals[headline].mean:.4g} of {items.scale:g})")
    if not tops:
        return []
    return [Text(f"**Saturated**: {', '.join(tops)} score at least {SATURATION:.0%} of the metric's maximum, "
                 "so this task cannot rank them: their differences say little about the attention.")]


def _collapsed(stats: VariantStats, best: VariantStats | None, headline: str, better_is: str) -> bool:
    if better_is != "max" or best is None or best is stats or headline not in stats.intervals:
        return False
    top = best.intervals[headline].mean
    return top > 0 and stats.intervals[headline].mean < COLLAPSE_SHARE * top


def _replicate_rates(stats: list[VariantStats]) -> str:
    """A warning when reference and sdpa trained at different rates: their gap then includes that."""
    rates = {s.variant: s.lr for s in stats if s.variant in REPLICATES}
    if len(rates) < 2 or len({tuple(r) for r in rates.values()}) == 1:
        return ""
    shown = " and ".join(f"`{v}` at {_lr_text(r)}" for v, r in sorted(rates.items()))
    return (f"; but they trained at different rates ({shown}, each chosen on validation), so that gap "
            "includes the rate choice and overstates the noise of training alone")


def _lr_text(rates: list[float]) -> str:
    return ", ".join(f"{lr:.3g}" for lr in rates)


def protocol_text(stats: list[VariantStats], headline: str = "", baselines: tuple[str, ...] = (),
                  skipped: Mapping[str, str] | None = None) -> Text:
    """The task's protocol as the runs applied it: budget, learning rates, parameter spread, folds, and
    the run noise that one-seed tests must clear."""
    attending = [s for s in stats if s.variant not in (BASELINE_VARIANT, *baselines, *CONTROLS)
                 and math.isfinite(s.params)]
    parts = []
    steps = sorted({round(s.steps) for s in stats if math.isfinite(s.steps)})
    if steps:
        parts.append("training steps per run: " + ", ".join(f"{n:,}" for n in steps))
    sources = sorted({s.lr_source for s in stats if s.lr_source})
    if sources:
        parts.append("learning rate from " + "; ".join(sources))
    if attending:
        median = sorted(s.params for s in attending)[len(attending) // 2]
        outside = [f"{s.label} ({s.params / median - 1:+.0%})" for s in attending
                   if abs(s.params / median - 1) > BUDGET_SPREAD]
        parts.append(f"parameters of the attention variants {min(s.params for s in attending):,.0f} to "
                     f"{max(s.params for s in attending):,.0f} (median {median:,.0f}); "
                     + (f"outside the ±{BUDGET_SPREAD:.0%} budget: {', '.join(outside)}" if outside
                        else f"all within ±{BUDGET_SPREAD:.0%} of the median"))
    unconverged = [s.label for s in stats if s.not_converged]
    if unconverged:
        parts.append("not converged (validation still improving significantly over the last 20% of epochs): "
                     + ", ".join(unconverged))
    calibrated = [s for s in stats if s.seed_noise is not None]
    if calibrated:
        sources = sorted({s.seed_noise.source for s in calibrated})
        sds = ", ".join(f"{s.label} {s.seed_noise.sd:.3g}" for s in calibrated)
        parts.append(f"seed noise calibrated for {len(calibrated)} of {len(stats)} variants "
                     f"({'; '.join(sources)}): "
                     "a one-seed difference is tested against the test items' bootstrap error and both "
                     f"variants' seed-to-seed sd (t-test, Welch-Satterthwaite df); sd: {sds}")
    noise = run_noise(stats, headline) if headline else None
    if noise and len(calibrated) < len(stats):
        parts.append(f"run-to-run noise{' for the uncalibrated variants' if calibrated else ''}: "
                     f"`reference` and `sdpa` compute the same function and differ here "
                     f"by {noise[0]:.3f} (seed {noise[1]}), so a one-seed difference must exceed that to "
                     "count as significant (the paired bootstrap over test items does not see training "
                     "noise; two or more seeds per variant give Welch's test instead)"
                     + _replicate_rates(stats))
    _, folded = fold_equivalents(stats, skipped)
    for reference, names in folded.items():
        trained = [n for n in names if n not in (skipped or {})]
        if trained:
            parts.append(f"{', '.join(trained)} computed exactly `{reference}` on every test call (a "
                         "window or pattern covering every key at these lengths), so they are shown once, in "
                         "its row")
        for name in (n for n in names if n in (skipped or {})):
            parts.append(f"{name}: {skipped[name]}; it is shown in `{reference}`'s row")
    return Text("Protocol: " + "; ".join(parts) + "." if parts else "Protocol: not recorded by these runs.")


def task_blocks(frame: pd.DataFrame) -> list[Block]:
    blocks: list[Block] = [Heading("Tasks"), Text(
        "Test metrics of each run's best-validation checkpoint: mean ± half-width of the 95% t-interval "
        "over seeds; with one seed, the headline metric's 95% bootstrap interval over the test items "
        "[low, high] (other metrics: n=1, no interval). ★ best mean; ▲/▼ significantly better/worse "
        f"than the task's baseline `{BASELINE_VARIANT}` (two-sided, p < {ALPHA}): Welch's t-test over "
        "seeds when both have two or more; with one seed, a paired bootstrap over the same test items "
        "(Koehn 2004; 1,000 resamples; the difference with its 95% interval), its error combined with "
        "both variants' calibrated seed-to-seed noise where the protocol line lists it (`attnbench "
        "calibrate`), else required to exceed the |reference - sdpa| gap. `vs best` compares with the best "
        "variant the same way: not significant means within noise of the best. `lr` is the learning "
        "rate each variant trained with; `converged` no: its validation metric still improved over "
        "the last 20% of epochs by more than 1%, and significantly on the validation items (paired "
        "bootstrap, p < 0.05). Loss-like metrics are lower-is-better. Peak memory is the median over "
        "seeds with its method "
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
        learning = ok["learning_baseline"].dropna() if "learning_baseline" in ok else []
        learning_baseline = str(learning.iloc[0]) if len(learning) else BASELINE_VARIANT
        skipped = equivalent_runs(frame, task, data)
        blocks.append(protocol_text(stats, headline, (learning_baseline,), skipped))
        blocks.append(results_table(stats, headline, ok[LATENCY_FIELD].notna().any(), skipped))
        blocks += findings(stats, headline, learning_baseline)
        blocks += saturation(stats, headline)
        blocks += robustness_blocks(fold_equivalents(stats)[0])
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
    scored = [s for s in fold_equivalents(stats)[0] if headline in s.intervals]
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
    """Variant x task: what ran (seeds), and a numbered reason for every cell that did not; a reason
    shared by several cells (up to the variant's own name) is listed once, with the cells it covers."""
    blocks: list[Block] = [Heading("Capability matrix"), Text(
        "Variant x task over the training records: ✓ with the number of successful seeds, otherwise "
        "the status and a numbered reason (listed below the table with the cells it covers); an empty "
        "cell has no record.")]
    cells = _cells(frame, missing)
    if not cells:
        return [*blocks, Text("No training records in the inputs.")]
    tasks = sorted({t for t, _ in cells})
    variants = sorted({v for _, v in cells}, key=lambda v: (v != BASELINE_VARIANT, v))
    reasons: dict[str, int] = {}
    covers: dict[int, dict[str, list[str]]] = {}
    rows = []
    for variant in variants:
        row = [variant]
        for task in tasks:
            row.append(_cell_text(cells.get((task, variant)), reasons, variant, task, covers))
        rows.append(row)
    if not reasons:
        return [*blocks, Table(["variant", *tasks], rows)]
    listed = [[str(n), reason, "; ".join(f"{task}: {', '.join(names)}" for task, names in covers[n].items())]
              for reason, n in reasons.items()]
    return [*blocks, Table(["variant", *tasks], rows), Text("Reasons:"),
            Table(["#", "reason", "cells"], listed)]


def shared_reason(reason: str, variant: str) -> str:
    """The reason with the variant's own leading name (``'sdpa' is ...``, ``gat is ...``) as "this
    variant", so that cells refused for the same reason share one entry."""
    return re.sub(rf"^'?{re.escape(variant)}'?(?=\s)", "this variant", reason)


def _cells(frame: pd.DataFrame, missing: list[dict]) -> dict[tuple[str, str], list[tuple[str, str]]]:
    cells: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for _, row in frame.iterrows():
        cells.setdefault((row["task"], row["variant"]), []).append((row["status"], row["reason"] or ""))
    for entry in missing:
        if entry["variant"]:
            cells.setdefault((entry["task"], entry["variant"]), []).append(("missing", entry["reason"]))
    return cells


def _cell_text(entries: list[tuple[str, str]] | None, reasons: dict[str, int], variant: str = "",
               task: str = "", covers: dict[int, dict[str, list[str]]] | None = None) -> str:
    if not entries:
        return ""
    ok = sum(status == "ok" for status, _ in entries)
    others = sorted({(status, reason) for status, reason in entries if status != "ok"})
    parts = [f"✓ {ok}"] if ok else []
    for status, reason in others:
        text = shared_reason(reason, variant) if reason else f"{status} (no reason recorded)"
        number_ = reasons.setdefault(text, len(reasons) + 1)
        if covers is not None:
            names = covers.setdefault(number_, {}).setdefault(task, [])
            if variant not in names:
                names.append(variant)
        count = sum(1 for s, r in entries if (s, r) == (status, reason))
        parts.append(f"{status} x{count} [{number_}]" if ok else f"{status} [{number_}]")
    return ", ".join(parts)
