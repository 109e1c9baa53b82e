"""Baselines for the regression gate: what records measured, reduced to what the gate compares.

A baseline file is JSON, keyed by device name (``env_device``: ``cpu`` or the GPU's name)::

    {"attnbench_baseline": 1,
     "devices": {"NVIDIA H100 80GB HBM3": {
         "updated": "...", "commits": [...], "reference": "reference", "train_reference": "none",
         "micro": {"<variant>|<dtype>|<pass>|causal=<c>|mask=<m>|B<b>H<h>D<d>": {
             "log_ratios": {"<run_id>": {"q<Lq>k<Lk>": log(time / reference's time in that run)}},
             "memory": {"q<Lq>k<Lk>": [median peak bytes, method]},
             "statuses": {"q<Lq>k<Lk>": [status, reason]}}},
         "runs": {"<task>|<data>|<variant>": {
             "cfg": "...", "metric": "metric:test/acc", "direction": "max",
             "values": {"<seed>": value},
             "log_ratios": {"<seed>": log(reference's median samples/s / samples/s)},
             "memory": [median peak bytes, method], "statuses": {"<seed>": [status, reason]}}}}}}

The same reduction of the current records is what ``reports.check`` compares with it, so a
baseline is never read differently from how it was written. Speed is kept only as ratios to a
reference measured in the same run (micro: the ``reference`` variant at the same shape in the same
``run_id``; training: the task's ``none`` runs among the same records), never as absolute time.
"""

from __future__ import annotations

import json
import math
import os
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from .micro_analysis import numeric
from .records import write_json_atomic
from .runs import headline_metric, metric_direction, runs_frame
from .sources import BASELINE_KEY, Collection

VERSION = 1


class BaselineError(ValueError):
    """A baseline file that is missing, malformed, or inconsistent with the records."""


def case_key(row: pd.Series) -> str:
    return f"q{int(row['lq'])}k{int(row['lk'])}"


def group_key(row: pd.Series) -> str:
    return (f"{row['variant']}|{row['dtype']}|{row['pass']}|causal={row['causal']}|mask={row['mask']}|"
            f"B{int(row['batch'])}H{int(row['heads'])}D{int(row['head_dim'])}")


def _log_ratios(run: pd.DataFrame, reference: str) -> dict[tuple[str, str], float]:
    """(group, case) -> log(time / reference's time at the same shape) within one run."""
    ok = run[(run["status"] == "ok") & (run["time_median_s"] > 0)]
    shape = ["dtype", "pass", "causal", "mask", "batch", "heads", "head_dim", "lq", "lk"]
    ref = ok[ok["variant"] == reference].drop_duplicates(shape, keep="last").set_index(shape)["time_median_s"]
    result = {}
    for _, row in ok.iterrows():
        key = tuple(row[c] for c in shape)
        if key in ref.index:
            result[(group_key(row), case_key(row))] = math.log(row["time_median_s"] / ref.loc[key])
    return result


def micro_entries(micro: pd.DataFrame, reference: str) -> dict[str, dict[str, dict]]:
    """device -> group -> entry (see the module docstring)."""
    devices: dict[str, dict[str, dict]] = {}
    frame = numeric(micro)
    for device, rows in frame.groupby("env_device", sort=True):
        groups: dict[str, dict] = {}
        for run_id, run in rows.groupby("run_id", sort=True):
            for (group, case), value in _log_ratios(run, reference).items():
                _group(groups, group)["log_ratios"].setdefault(str(run_id), {})[case] = value
        for _, row in rows.iterrows():
            _group(groups, group_key(row))["statuses"][case_key(row)] = [row["status"], _text(row["reason"])]
        _add_memory(groups, rows[rows["status"] == "ok"])
        devices[str(device)] = groups
    return devices


def _add_memory(groups: dict[str, dict], ok: pd.DataFrame) -> None:
    """Each case's median peak memory over the runs that measured it."""
    if ok.empty:
        return
    rows = [r for _, r in ok.iterrows()]
    keyed = ok.assign(group=[group_key(r) for r in rows], case=[case_key(r) for r in rows])
    peaks = keyed.groupby(["group", "case"]).agg(peak=("peak_mem_bytes", "median"),
                                                 method=("mem_method", "first"))
    for (group, case), row in peaks.iterrows():
        if math.isfinite(row["peak"]):
            _group(groups, group)["memory"][case] = [float(row["peak"]), str(row["method"])]


def _group(groups: dict[str, dict], key: str) -> dict:
    return groups.setdefault(key, {"log_ratios": {}, "memory": {}, "statuses": {}})


def _text(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def run_entries(runs: list[dict], train_reference: str) -> dict[str, dict[str, dict]]:
    """device -> "<task>|<data>|<variant>" -> entry; raises if a variant has several configurations."""
    frame, _ = runs_frame(runs)
    devices: dict[str, dict[str, dict]] = {}
    if frame.empty:
        return devices
    frame["env_device"] = frame["env_device"].fillna("unknown device")
    for (device, task, data), rows in frame.groupby(["env_device", "task", "data"], sort=True):
        ok = rows[rows["status"] == "ok"]
        metric = headline_metric(ok) if not ok.empty else None
        ref_speed = pd.to_numeric(ok[ok["variant"] == train_reference]["samples_per_s"]).median()
        for variant, mine in rows.groupby("variant", sort=True):
            if mine["cfg"].nunique() > 1:
                raise BaselineError(f"{task}/{variant} on {device}: records of {mine['cfg'].nunique()} "
                                    "configurations; give the records of one suite")
            key = f"{task}|{data}|{variant}"
            devices.setdefault(str(device), {})[key] = _run_entry(mine, metric, ref_speed)
    return devices


def _run_entry(rows: pd.DataFrame, metric: str | None, ref_speed: float) -> dict:
    ok = rows[rows["status"] == "ok"]
    values = {}
    if metric:
        values = {str(s): float(v) for s, v in zip(ok["seed"], ok[metric], strict=True) if pd.notna(v)}
    speeds = pd.to_numeric(ok["samples_per_s"], errors="coerce")
    # time per sample relative to the reference's, so that larger is slower as in the micro ratios
    ratios = {str(s): math.log(ref_speed / v) for s, v in zip(ok["seed"], speeds, strict=True)
              if pd.notna(v) and v > 0 and pd.notna(ref_speed) and ref_speed > 0}
    peaks = pd.to_numeric(ok["peak_mem_bytes"], errors="coerce").dropna()
    methods = sorted(set(ok["mem_method"].dropna()))
    return {"cfg": str(rows["cfg"].iloc[0]), "metric": metric,
            "direction": metric_direction(metric) if metric else None, "values": values, "log_ratios": ratios,
            "memory": [float(peaks.median()), ", ".join(methods)] if len(peaks) else None,
            "statuses": {str(s): [st, _text(r)] for s, st, r in zip(rows["seed"], rows["status"],
                                                                     rows["reason"], strict=True)}}


def summarise(found: Collection, reference: str, train_reference: str) -> dict[str, dict]:
    """The records reduced to baseline form: device -> entry (without the file's bookkeeping)."""
    micro = micro_entries(found.micro, reference) if len(found.micro) else {}
    runs = run_entries(found.runs, train_reference)
    commits = _commits(found)
    return {device: {"reference": reference, "train_reference": train_reference,
                     "commits": commits.get(device, []), "micro": micro.get(device, {}),
                     "runs": runs.get(device, {})}
            for device in sorted(set(micro) | set(runs))}


def _commits(found: Collection) -> dict[str, list[str]]:
    pairs = [(r.get("env_device"), r.get("env_git_commit")) for r in found.runs]
    if len(found.micro):
        pairs += list(zip(found.micro["env_device"], found.micro["env_git_commit"], strict=True))
    result: dict[str, set] = {}
    for device, commit in pairs:
        if device is not None and isinstance(commit, str):
            result.setdefault(str(device), set()).add(commit)
    return {device: sorted(commits) for device, commits in result.items()}


def load(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise BaselineError(f"baseline file not found: {path}")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BaselineError(f"{path}: not valid JSON ({err})") from err
    valid = isinstance(data, dict) and data.get(BASELINE_KEY) == VERSION
    if not valid or not isinstance(data.get("devices"), dict):
        raise BaselineError(f"{path}: not an attnbench baseline (version {VERSION}): expected "
                            f'{{"{BASELINE_KEY}": {VERSION}, "devices": {{...}}}}')
    for device, entry in data["devices"].items():
        missing = {"reference", "train_reference", "micro", "runs"} - set(entry)
        if missing:
            raise BaselineError(f"{path}: device {device!r} lacks {sorted(missing)}")
    return data


def update(existing: dict | None, summary: dict[str, dict]) -> dict:
    """``existing`` with each device's entries from ``summary`` added or replaced (others kept)."""
    data = existing or {BASELINE_KEY: VERSION, "devices": {}}
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    kept = {(d["reference"], d["train_reference"]) for d in data["devices"].values()}
    for device, new in summary.items():
        old = data["devices"].get(device)
        if kept and (new["reference"], new["train_reference"]) not in kept:
            pair = (new["reference"], new["train_reference"])
            raise BaselineError(f"the baseline's references are {sorted(kept)}, not {pair}; "
                                "use the same ones or a new file")
        merged = old or {"reference": new["reference"], "train_reference": new["train_reference"],
                         "micro": {}, "runs": {}, "commits": []}
        merged["micro"].update(new["micro"])
        merged["runs"].update(new["runs"])
        merged["commits"] = sorted(set(merged.get("commits", [])) | set(new["commits"]))
        merged["updated"] = now
        data["devices"][device] = merged
    return data


def save(path: str | os.PathLike, data: dict) -> Path:
    return write_json_atomic(path, data)
