"""Report section from micro-benchmark rows: cost against sequence length, slopes, FLOP/s, gaps."""

from __future__ import annotations

import math

import pandas as pd

from . import plots
from .document import Block, Figure, Heading, Table, Text
from .micro_analysis import GROUP_KEYS, growth_slopes, numeric, ratios_to_reference, score_matrix_check

CONFIG_KEYS = ("env_device", "dtype", "pass", "causal", "mask", "batch", "heads", "head_dim")
MEASURES = ("time_median_s", "peak_mem_bytes", "flops_per_s", "utilisation")


def aggregate(ok: pd.DataFrame) -> pd.DataFrame:
    """Successful rows reduced to one per case: the median over the runs that measured it."""
    keys = [*GROUP_KEYS, "env_device", "lq", "lk"]
    ok = numeric(ok)
    medians = ok.groupby(keys, dropna=False, sort=False)[list(MEASURES)].median().reset_index()
    counts = ok.groupby(keys, dropna=False, sort=False).size().reset_index(name="runs_combined")
    return medians.merge(counts, on=keys).assign(status="ok")


def _config_title(key: tuple) -> str:
    values = dict(zip(CONFIG_KEYS, key, strict=True))
    return (f"{values['env_device']} {values['dtype']} {values['pass']}, B={values['batch']} "
            f"H={values['heads']} D={values['head_dim']}, causal={values['causal']}, mask={values['mask']}")


def micro_blocks(micro: pd.DataFrame) -> list[Block]:
    blocks: list[Block] = [Heading("Micro-benchmarks"), Text(
        "Median time and peak memory per case (the median over runs where several measured it) "
        "against sequence length, log-log. Slopes are least-squares fits over each variant's four "
        "largest lengths (2: quadratic, 1: linear). Speed and memory are relative to `reference` at "
        "the longest length both ran. FLOP/s are dense-equivalent (4·B·H·Lq·Lk·D forward, half if "
        "causal, 3.5x with backward); utilisation is given for exact variants on devices with a known "
        "peak. Memory points of 0 bytes (below the method's resolution) are not drawn.")]
    if micro.empty:
        return [*blocks, Text("No micro-benchmark records in the inputs.")]
    ok = micro[micro["status"] == "ok"]
    if not ok.empty:
        cases = aggregate(ok)
        for key, group in cases.groupby(list(CONFIG_KEYS), sort=True, dropna=False):
            blocks += _config_blocks(_config_title(key), group)
    return [*blocks, *_gap_blocks(micro)]


def _config_blocks(title: str, cases: pd.DataFrame) -> list[Block]:
    slopes = growth_slopes(cases)
    ratios = ratios_to_reference(cases)
    rows = []
    for _, s in slopes.iterrows():
        mine = cases[cases["variant"] == s["variant"]]
        rows.append([s["variant"], s["lengths"], _fmt(s["time_slope"], 2), _fmt(s["memory_slope"], 2),
                     *_relative(ratios, s["variant"]), _fmt(mine["flops_per_s"].max() / 1e9, 1),
                     _percent(mine["utilisation"].max())])
    table = Table(["variant", "lengths", "time slope", "memory slope", "speed vs reference",
                   "memory vs reference", "best GFLOP/s", "utilisation"], rows)
    blocks: list[Block] = [Heading(title, 3), table, _figure(title, cases)]
    for _, check in score_matrix_check(cases).iterrows():
        verdict = "ok" if check["covers_scores"] else "FAILED"
        blocks.append(Text(f"Memory validation L={int(check['lq'])}: reference peak "
                           f"{check['peak_mem_bytes'] / 2**20:,.0f} MiB >= its score matrix "
                           f"{check['score_bytes'] / 2**20:,.0f} MiB: {verdict}"))
    return blocks


def _relative(ratios: pd.DataFrame, variant: str) -> list[str]:
    mine = ratios[ratios["variant"] == variant]
    if mine.empty:
        return ["no reference", "no reference"]
    longest = mine.loc[mine["lq"].idxmax()]
    return [f"{longest['speedup']:.2f}x at L={int(longest['lq'])}",
            _fmt(longest["memory_fraction"], 3) + "x" if math.isfinite(longest["memory_fraction"]) else ""]


def _fmt(value: float, digits: int) -> str:
    return f"{value:.{digits}f}" if value is not None and math.isfinite(value) else ""


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%" if value is not None and math.isfinite(value) else ""


def _figure(title: str, cases: pd.DataFrame) -> Figure:
    panels = [("time", "median time (ms)"), ("memory", "peak memory (MiB)")]
    scale = {"time": ("time_median_s", 1e3), "memory": ("peak_mem_bytes", 2.0**-20),
             "flops": ("flops_per_s", 1e-12)}
    if cases["utilisation"].notna().any() or not str(cases["env_device"].iloc[0]).startswith("cpu"):
        panels.append(("flops", "achieved TFLOP/s (dense-equivalent)"))
    series: dict[str, dict] = {}
    for key, _ in panels:
        column, factor = scale[key]
        for variant, group in cases.groupby("variant"):
            group = group[group[column] > 0].sort_values("lq")
            if len(group):
                series.setdefault(key, {})[variant] = (list(group["lq"]), list(group[column] * factor))
    name = "micro-" + "".join(c if c.isalnum() else "-" for c in title.lower())[:70]
    return Figure(name, plots.scaling(title, series, panels), f"{title}: cost against sequence length")


def _gap_blocks(micro: pd.DataFrame) -> list[Block]:
    bad = micro[micro["status"] != "ok"]
    if bad.empty:
        return [Text("Every micro-benchmark case ran.")]
    rows = []
    keys = ["variant", "env_device", "dtype", "pass", "status", "reason"]
    for key, group in bad.groupby(keys, sort=True, dropna=False):
        lengths = ", ".join(str(int(v)) for v in sorted(set(pd.to_numeric(group["lq"]))))
        rows.append([*(str(k) for k in key), lengths])
    return [Text("Cases that did not run, with their reasons:"),
            Table(["variant", "device", "dtype", "pass", "status", "reason", "lengths"], rows)]
