"""Training-run records as a table, and their per-variant statistics over seeds.

Runs are grouped by task and data (a report section), then by variant and configuration: runs of
one variant with different configurations (say, two presets) are never averaged together; such
variants get a short configuration tag. Of several records of the same (task, data, variant,
configuration, seed), the newest is used and the others are counted as superseded.

Metric direction: a metric whose name mentions loss, perplexity or error is lower-is-better,
every other metric higher-is-better. A task's headline metric is the test counterpart of the
metric its runs monitored (``val/acc`` -> ``test/acc``).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from .calibration import Key, SeedNoise, shipped
from .paired import Items, PairedResult, paired_bootstrap, same_items
from .stats import Interval, WelchResult, mean_interval, welch_test

BASELINE_VARIANT = "none"
LOWER_IS_BETTER = ("loss", "perplexity", "ppl", "error", "wer", "cer", "mse", "mae")
LATENCY_FIELD = "inference_latency_s"  # read when runs record it (see the report's notes)
RUN_COLUMNS = ("task", "data", "variant", "seed", "status", "reason", "cfg", "params", "train_time_s",
               "samples_per_s", "peak_mem_bytes", "mem_method", "monitor", LATENCY_FIELD, "attention_file",
               "concurrent_runs", "env_device", "env_timestamp", "_source", "_file", "equals_reference",
               "diagnosis", "learning_baseline", "seq_len")
# Read from the record's protocol fields (bench/protocol.py) and its step cost (bench/step_cost.py);
# absent in older records.
PROTOCOL_COLUMNS = ("lr", "lr_source", "train_steps", "converged", "items", "step_time_s", "step_mem_bytes",
                    "step_shared", "step_time_iqr_s", "seed_noise")


def metric_direction(name: str) -> str:
    return "min" if any(word in name.lower() for word in LOWER_IS_BETTER) else "max"


def config_tag(config: object) -> str:
    """Six hex digits identifying a run's configuration (the seed is not part of it)."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:6]


def runs_frame(runs: list[dict], calibration: Mapping[Key, SeedNoise] | None = None
               ) -> tuple[pd.DataFrame, int]:
    """One row per run, metrics as ``metric:<name>`` columns, the newest record per seed; and how many
    older records were superseded. ``seed_noise``: the calibrated seed noise of the run's headline
    metric for its task, data, variant and configuration (``reports.calibration``; default: the
    shipped calibration files), None where there is none."""
    noise = shipped() if calibration is None else calibration
    rows = []
    for record in runs:
        row = {key: record.get(key) for key in RUN_COLUMNS if key != "cfg"}
        row["cfg"] = config_tag(record.get("config"))
        # a suite entry's dataset label (one task on several datasets), else the data it read
        row["data"] = str(record.get("dataset") or record.get("data") or "embedded")
        row.update({f"metric:{k}": float(v) for k, v in (record.get("metrics") or {}).items()})
        protocol = record.get("protocol") or {}
        row.update(lr=protocol.get("lr"), lr_source=protocol.get("lr_source"),
                   train_steps=protocol.get("train_steps"),
                   converged=(record.get("convergence") or {}).get("converged"),
                   items=Items.from_record(record.get("test_items")))
        metric = "test/" + str(record.get("monitor") or "").split("/", 1)[-1]
        key = (str(row["task"]), row["data"], str(row["variant"]), row["cfg"], metric)
        row["seed_noise"] = noise.get(key)
        cost = record.get("step_cost") or {}
        row.update(step_time_s=cost.get("time_median_s"), step_time_iqr_s=cost.get("time_iqr_s"),
                   step_mem_bytes=cost.get("peak_mem_bytes"),
                   step_shared=cost.get("concurrent_runs"))
        rows.append(row)
    frame = pd.DataFrame(rows, columns=[*RUN_COLUMNS, *PROTOCOL_COLUMNS]) if not rows else pd.DataFrame(rows)
    if frame.empty:
        return frame, 0
    frame = frame.sort_values("env_timestamp", na_position="first", kind="stable")
    deduped = frame.drop_duplicates(["task", "data", "variant", "cfg", "seed"], keep="last")
    return deduped.reset_index(drop=True), len(frame) - len(deduped)


def metric_columns(frame: pd.DataFrame) -> list[str]:
    return sorted(c for c in frame.columns if c.startswith("metric:") and frame[c].notna().any())


def headline_metric(frame: pd.DataFrame) -> str | None:
    """The monitored metric's test counterpart, else the first higher-is-better metric."""
    metrics = metric_columns(frame)
    monitors = frame["monitor"].dropna() if "monitor" in frame else pd.Series(dtype=str)
    for monitor in monitors.unique():
        candidate = "metric:test/" + str(monitor).split("/", 1)[-1]
        if candidate in metrics:
            return candidate
    better = [m for m in metrics if metric_direction(m) == "max"]
    return (better or metrics or [None])[0]


def labels(frame: pd.DataFrame) -> pd.Series:
    """The row label of each run: its variant, tagged with its configuration where a variant has several."""
    several = frame.groupby("variant")["cfg"].transform("nunique") > 1
    return frame["variant"].where(~several, frame["variant"] + " [cfg " + frame["cfg"] + "]")


@dataclass
class VariantStats:
    label: str
    variant: str
    n: int
    intervals: dict[str, Interval]
    values: dict[str, list[float]]
    params: float
    samples_per_s: float
    train_time_s: float
    peak_mem_bytes: float
    mem_method: str
    latency_s: float
    items: dict[int, Items] = field(default_factory=dict)  # seed -> test items (headline metric)
    not_converged: list[int] = field(default_factory=list)  # seeds whose validation still improved
    judged: int = 0  # runs with a convergence verdict (older records have none)
    equals_reference: bool = False  # every seed computed exactly the reference (bench/protocol.py)
    lr: list[float] = field(default_factory=list)  # distinct learning rates of its runs
    lr_source: str = ""
    steps: float = math.nan
    diagnosis: str = ""  # the task's measured reason why this variant does not learn (see Task.diagnoses)
    seed_noise: SeedNoise | None = None  # calibrated seed-to-seed sd of the headline (reports.calibration)


def _mean(series: pd.Series) -> float:
    values = pd.to_numeric(series, errors="coerce").dropna()
    return float(values.mean()) if len(values) else math.nan


def variant_stats(ok: pd.DataFrame) -> list[VariantStats]:
    """Per label (variant and configuration) of one task section's successful runs."""
    ok = ok.assign(label=labels(ok))
    result = []
    for label, group in ok.groupby("label", sort=True):
        values = {m: group[m].dropna().tolist() for m in metric_columns(group)}
        methods = sorted(set(group["mem_method"].dropna()))
        result.append(VariantStats(
            label=str(label), variant=str(group["variant"].iloc[0]), n=len(group),
            intervals={m: mean_interval(v) for m, v in values.items() if v}, values=values,
            params=_mean(group["params"]), samples_per_s=_mean(group["samples_per_s"]),
            train_time_s=_mean(group["train_time_s"]),
            peak_mem_bytes=float(pd.to_numeric(group["peak_mem_bytes"], errors="coerce").median()),
            mem_method=", ".join(methods), latency_s=_mean(group[LATENCY_FIELD]),
            **_protocol(group)))
    return result


def _protocol(group: pd.DataFrame) -> dict:
    items = {int(seed): it for seed, it in zip(group["seed"], group.get("items", []), strict=False)
             if isinstance(it, Items)}
    converged = group["converged"] if "converged" in group else pd.Series([None] * len(group))
    equal = group["equals_reference"] if "equals_reference" in group else pd.Series([None] * len(group))
    lrs = sorted({float(v) for v in pd.to_numeric(group.get("lr"), errors="coerce").dropna()}) \
        if "lr" in group else []
    sources = sorted({str(v) for v in group.get("lr_source", pd.Series(dtype=str)).dropna()})
    return {"items": items,
            "not_converged": sorted(int(seed) for seed, c in zip(group["seed"], converged, strict=True)
                                    if c is False),
            "judged": sum(c is True or c is False for c in converged),
            "equals_reference": bool(len(equal)) and all(v is True for v in equal),
            "lr": lrs, "lr_source": "; ".join(sources),
            "steps": _mean(group["train_steps"]) if "train_steps" in group else math.nan,
            "diagnosis": next((str(d) for d in group.get("diagnosis", []) if isinstance(d, str) and d), ""),
            "seed_noise": next((n for n in group.get("seed_noise", []) if isinstance(n, SeedNoise)), None)}


def baseline_of(stats: list[VariantStats]) -> VariantStats | None:
    """The task's no-attention baseline; of several configurations, the one with the most seeds."""
    candidates = [s for s in stats if s.variant == BASELINE_VARIANT]
    return max(candidates, key=lambda s: s.n) if candidates else None


def compare(stats: VariantStats, baseline: VariantStats, metric: str) -> WelchResult | None:
    return welch_test(stats.values.get(metric, []), baseline.values.get(metric, []))


def paired(stats: VariantStats, other: VariantStats) -> tuple[int, PairedResult] | None:
    """Paired bootstrap of the headline metric on the lowest seed both ran on the same test items."""
    for seed in sorted(set(stats.items) & set(other.items)):
        if same_items(stats.items[seed], other.items[seed]):
            return seed, paired_bootstrap(stats.items[seed], other.items[seed])
    return None
