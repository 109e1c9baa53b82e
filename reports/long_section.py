"""Report section for the long-context track: accuracy and the cost of a training step against length.

It reads the runs that recorded a sequence length (``seq_len``: the long-context tasks) and shows,
for each task run at two lengths or more (``configs/suites/long.yaml``): the headline metric per
variant and length; the time and peak memory of one training pass measured on the tested model
(``step_cost``); those costs against length with their log-log slopes; the metric against the step
time at each length, marker area = memory (Long Range Arena's figure 3); and for each efficient
variant the first length from which it is cheaper than ``sdpa`` at every longer length, and the
accuracy it gives up there. A length that did not fit is an ``oom`` cell, never a gap.
"""

from __future__ import annotations

import math

import pandas as pd

from . import plots
from .document import Block, Figure, Heading, Table, Text
from .micro_analysis import fit_slope
from .runs import BASELINE_VARIANT, headline_metric

PEER = "sdpa"  # the fused softmax kernel every efficient variant must beat on cost
UNFOCUSED = ("uniform", BASELINE_VARIANT)  # the control and the no-attention baseline
NOT_EFFICIENT = ("sdpa", "reference", *UNFOCUSED)


def long_blocks(frame: pd.DataFrame) -> list[Block]:
    """The section, or [] when no task ran at two sequence lengths or more."""
    if frame.empty or "seq_len" not in frame:
        return []
    frame = frame.assign(seq_len=pd.to_numeric(frame["seq_len"], errors="coerce"))
    blocks: list[Block] = []
    for task, group in frame[frame["seq_len"].notna()].groupby("task", sort=True):
        lengths = sorted({int(x) for x in group.loc[group["status"].isin(["ok", "oom"]), "seq_len"]})
        if len(lengths) >= 2:
            blocks += _task_blocks(str(task), group, lengths)
    if not blocks:
        return []
    return [Heading("Long context"), Text(
        "Accuracy and cost against sequence length. Cost is one forward and backward pass of the tested "
        "model on a training batch, measured after training (median over repeated passes; memory: the "
        "rise of the peak resident set size on CPU, of the allocator's peak on CUDA), so it is the model's "
        "cost at that length, attention included, not the process's."), *blocks]


def _task_blocks(task: str, group: pd.DataFrame, lengths: list[int]) -> list[Block]:
    ok = group[group["status"] == "ok"]
    headline = headline_metric(ok) if not ok.empty else None
    variants = sorted(set(group["variant"]), key=lambda v: (v != BASELINE_VARIANT, v))
    cells = {(v, L): _cell(group, v, L, headline) for v in variants for L in lengths}
    blocks: list[Block] = [Heading(f"{task}: accuracy and cost against length", 3)]
    if headline is None:
        return [*blocks, Text("No successful runs with metrics.")]
    name = headline.removeprefix("metric:")
    best = {L: max((c["metric"] for (v, x), c in cells.items() if x == L and v not in UNFOCUSED
                    and math.isfinite(c["metric"])), default=math.nan) for L in lengths}
    rows = [[v, *(_metric_text(cells[v, L], math.nan if v in UNFOCUSED else best[L]) for L in lengths)]
            for v in variants]
    blocks += [Text(f"{name} (mean over seeds; bold: the best attention variant at that length):"),
               Table(["variant", *(f"L={L}" for L in lengths)], rows)]
    costs = [[v, *(_cost_text(cells[v, L]) for L in lengths)] for v in variants]
    blocks += [Text("Training step: median time ms (its interquartile range over the repeated passes) / "
                    "peak memory MiB:"),
               Table(["variant", *(f"L={L}" for L in lengths)], costs)]
    shared = pd.to_numeric(ok["step_shared"], errors="coerce").max()
    if shared > 1:
        blocks.append(Text(f"**Step costs measured while up to {shared:.0f} runs shared the machine**: "
                           "times are inflated and not comparable; run the suite with `jobs: 1`."))
    blocks += [Text(f"Where efficient attention earns its keep: for each variant, the first length from "
                    f"which one training step costs less than {PEER}'s at every longer length (in time: "
                    f"median + IQR/2 below {PEER}'s median - IQR/2, so the two are apart beyond the timer's "
                    "noise; a length "
                    f"where {PEER} ran out of memory and it did not counts as cheaper; running out itself "
                    f"ends the run of lengths), how much lower its {name} is there than {PEER}'s (positive: "
                    "it gives that up), and the log-log slopes of its cost against length (2: quadratic, "
                    "1: linear)."),
               _crossover_table(cells, variants, lengths, name)]
    blocks += _figures(task, cells, variants, lengths, name)
    return blocks


def _cell(group: pd.DataFrame, variant: str, length: int, headline: str | None) -> dict:
    rows = group[(group["variant"] == variant) & (group["seq_len"] == length)]
    ok = rows[rows["status"] == "ok"]
    statuses = sorted(set(rows["status"]) - {"ok"})

    def median(column: str) -> float:
        values = pd.to_numeric(ok[column], errors="coerce").dropna() if column in ok else pd.Series()
        return float(values.median()) if len(values) else math.nan

    metric = pd.to_numeric(ok[headline], errors="coerce").dropna() if headline in ok else pd.Series()
    return {"n": len(metric), "metric": float(metric.mean()) if len(metric) else math.nan,
            "time": median("step_time_s"), "iqr": median("step_time_iqr_s"),
            "memory": median("step_mem_bytes"),
            "status": "ok" if len(ok) else (statuses[0] if statuses else "")}


def _metric_text(cell: dict, best: float) -> str:
    if not math.isfinite(cell["metric"]):
        return {"equivalent": "= reference", "": ""}.get(cell["status"], cell["status"])
    text = f"{cell['metric']:.3g}" + (f" (n={cell['n']})" if cell["n"] > 1 else "")
    return f"**{text}**" if cell["metric"] == best else text


def _cost_text(cell: dict) -> str:
    if cell["status"] != "ok":
        return cell["status"]
    if not math.isfinite(cell["time"]):
        return "not measured"
    spread = f" (IQR {cell['iqr'] * 1e3:,.2g})" if math.isfinite(cell["iqr"]) else ""
    return f"{cell['time'] * 1e3:,.3g}{spread} / {cell['memory'] / 2**20:,.3g}"


def _below(mine: dict, peer: dict, key: str) -> bool:
    """Whether ``mine`` costs less than ``peer``: for time, with the middle halves of their repeated
    passes apart (median + IQR/2 below the peer's median - IQR/2), so timer noise is not a win."""
    if key != "time":
        return mine[key] < peer[key]
    half = [c["iqr"] / 2 if math.isfinite(c["iqr"]) else 0.0 for c in (mine, peer)]
    return mine["time"] + half[0] < peer["time"] - half[1]


def _cheaper_from(cells: dict, variant: str, lengths: list[int], key: str) -> int | None:
    """The first length from which ``variant`` costs less than the peer at every longer length where
    it ran (a length where only the peer ran out of memory counts as cheaper)."""
    found = None
    for length in lengths:
        mine, peer = cells[variant, length], cells[PEER, length]
        if mine["status"] != "ok" or not math.isfinite(mine[key]):
            found = None if mine["status"] == "oom" else found
            continue
        cheaper = peer["status"] == "oom" or (math.isfinite(peer[key]) and _below(mine, peer, key))
        found = (found or length) if cheaper else None
    return found


def _crossover_table(cells: dict, variants: list[str], lengths: list[int], name: str) -> Block:
    rows = []
    for variant in (v for v in variants if v not in NOT_EFFICIENT):
        row = [variant]
        for key in ("time", "memory"):
            length = _cheaper_from(cells, variant, lengths, key)
            if length is None:
                row += [f"not up to L={lengths[-1]}", ""]
                continue
            mine, peer = cells[variant, length]["metric"], cells[PEER, length]["metric"]
            gap = (f"{peer - mine:+.3g}" if math.isfinite(peer) and math.isfinite(mine)
                   else f"{PEER} {cells[PEER, length]['status'] or 'absent'}")
            row += [f"L={length}", gap]
        row += [_slope(cells, variant, lengths, key) for key in ("time", "memory")]
        rows.append(row)
    return Table(["variant", f"cheaper than {PEER} in time from", f"{name} given up there",
                  "in memory from", f"{name} given up there", "time slope", "memory slope"], rows)


def _slope(cells: dict, variant: str, lengths: list[int], key: str) -> str:
    points = [(L, cells[variant, L][key]) for L in lengths
              if math.isfinite(cells[variant, L][key]) and cells[variant, L][key] > 0]
    return f"{fit_slope(*zip(*points, strict=True)):.2f}" if len(points) >= 2 else ""


def _series(cells: dict, variants: list[str], lengths: list[int], key: str
            ) -> dict[str, tuple[list[float], list[float]]]:
    series = {}
    for variant in variants:
        points = [(L, cells[variant, L][key]) for L in lengths if math.isfinite(cells[variant, L][key])]
        if points:
            series[variant] = ([p[0] for p in points], [p[1] for p in points])
    return series


def _figures(task: str, cells: dict, variants: list[str], lengths: list[int], name: str) -> list[Block]:
    figures: list[Block] = [Figure(f"long-{task}-metric", plots.by_length(
        f"{task}: {name} against length", name, _series(cells, variants, lengths, "metric")),
        f"{task}: {name} per variant against sequence length")]
    time, memory = (_series(cells, variants, lengths, key) for key in ("time", "memory"))
    if time:
        memory = {v: (x, [m / 2**20 for m in y]) for v, (x, y) in memory.items()}
        figures.append(Figure(f"long-{task}-cost", plots.scaling(
            f"{task}: training step cost", {"time": time, "memory": memory},
            [("time", "step time s"), ("memory", "peak memory MiB")]),
            f"{task}: time and peak memory of one training pass against length (log-log)"))
        panels = {L: [(v, cells[v, L]["time"], cells[v, L]["metric"], cells[v, L]["memory"]) for v in variants
                      if math.isfinite(cells[v, L]["time"]) and math.isfinite(cells[v, L]["metric"])]
                  for L in lengths}
        panels = {L: points for L, points in panels.items() if points}
        tradeoff = plots.accuracy_cost(f"{task}: {name} against step time", name, panels)
        figures.append(Figure(f"long-{task}-tradeoff", tradeoff,
                              f"{task}: {name} against step time at each length, marker area = memory"))
    return figures
