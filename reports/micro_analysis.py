"""Analysis of micro-benchmark records: numeric columns, cost-growth slopes, ratios to a reference.

Reads records only (``reports.records.MICRO_COLUMNS``). The report's micro-benchmark section
(``reports.micro_section``), the baseline and the grid's console summary (``bench.micro.run``)
use these functions. The FLOP count and the device peaks behind a row's ``flops`` and
``utilisation`` columns are part of the record schema (``reports.records``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

NUMERIC = ("batch", "heads", "lq", "lk", "head_dim", "max_abs_err", "time_median_s", "time_iqr_s", "runs",
           "peak_mem_bytes", "reserved_mem_bytes", "flops", "flops_per_s", "utilisation")
GROUP_KEYS = ("variant", "variant_kwargs", "device", "dtype", "batch", "heads", "head_dim", "causal",
              "mask", "pass")


def numeric(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with the numeric record columns as numbers (CSV cells may be empty strings)."""
    frame = frame.copy()
    for column in NUMERIC:
        if column in frame:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def fit_slope(lengths: list[float], values: list[float]) -> float:
    """Least-squares slope of log(value) against log(length)."""
    x, y = np.log(np.asarray(lengths, dtype=float)), np.log(np.asarray(values, dtype=float))
    return float(np.polyfit(x, y, 1)[0])


def growth_slopes(frame: pd.DataFrame, points: int = 4) -> pd.DataFrame:
    """Per variant configuration: log-log slopes of time and memory over its ``points`` largest lengths."""
    ok = numeric(frame[frame["status"] == "ok"])
    rows = []
    for key, group in ok.groupby(list(GROUP_KEYS), dropna=False, sort=False):
        group = group.sort_values("lq").drop_duplicates("lq", keep="last").tail(points)
        row = dict(zip(GROUP_KEYS, key, strict=True))
        row["lengths"] = f"{int(group['lq'].min())}..{int(group['lq'].max())}" if len(group) else ""
        row["time_slope"] = _slope_or_nan(group, "time_median_s", points)
        row["memory_slope"] = _slope_or_nan(group, "peak_mem_bytes", points)
        rows.append(row)
    return pd.DataFrame(rows)


def _slope_or_nan(group: pd.DataFrame, column: str, points: int) -> float:
    values = pd.to_numeric(group[column], errors="coerce")
    usable = group[values > 0]
    if len(usable) < min(points, 2):
        return math.nan
    return fit_slope(list(usable["lq"]), list(pd.to_numeric(usable[column])))


def _ok_at(frame: pd.DataFrame, variant: str, **where: object) -> pd.DataFrame:
    rows = frame[(frame["variant"] == variant) & (frame["status"] == "ok")]
    for key, value in where.items():
        rows = rows[rows[key] == value]
    return rows


def ratios_to_reference(frame: pd.DataFrame, reference: str = "reference") -> pd.DataFrame:
    """Each configuration's time and peak memory as a fraction of ``reference`` at the same shape."""
    keys = ["device", "dtype", "batch", "heads", "head_dim", "lq", "lk", "causal", "mask", "pass"]
    ok = numeric(frame[frame["status"] == "ok"])
    ref = ok[ok["variant"] == reference][[*keys, "time_median_s", "peak_mem_bytes"]]
    merged = ok.merge(ref, on=keys, suffixes=("", "_ref"))
    merged["speedup"] = merged["time_median_s_ref"] / merged["time_median_s"]
    merged["memory_fraction"] = merged["peak_mem_bytes"] / merged["peak_mem_bytes_ref"]
    return merged[["variant", *keys, "speedup", "memory_fraction"]]


VALIDATION_MIN_BYTES = 16 * 2**20  # below this, page and allocator granularity dominate


def score_matrix_check(frame: pd.DataFrame, reference: str = "reference") -> pd.DataFrame:
    """The memory validation: ``reference`` must show at least its B*H*Lq*Lk score matrix
    (checked where that matrix is at least ``VALIDATION_MIN_BYTES``)."""
    itemsize = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}
    rows = numeric(_ok_at(frame, reference, **{"pass": "forward"}))
    if rows.empty:
        return pd.DataFrame(columns=["lq", "dtype", "peak_mem_bytes", "score_bytes", "covers_scores"])
    elements = rows["batch"] * rows["heads"] * rows["lq"] * rows["lk"]
    rows["score_bytes"] = elements * rows["dtype"].map(itemsize)
    rows = rows[rows["score_bytes"] >= VALIDATION_MIN_BYTES]
    rows["covers_scores"] = rows["peak_mem_bytes"] >= rows["score_bytes"]
    return rows[["lq", "dtype", "peak_mem_bytes", "score_bytes", "covers_scores"]]
