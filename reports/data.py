"""Results as data: any mix of records in, tidy pandas DataFrames out (the report reads the same).

    from reports.data import load
    results = load(["runs/suites/quick", "runs/sweeps/graph-attention", "results/micro.csv"])
    results.runs      # one row per training run (newest record per task, data, variant, config, seed)
    results.trials    # one row per sweep trial record
    results.micro     # one row per micro-benchmark case
    results.problems  # inputs that could not be read, one line each

``runs`` columns: ``task``, ``data`` (the dataset label), ``variant``, ``seed``, ``status``,
``reason``, ``cfg`` (six hex digits identifying the configuration), one ``metric:<name>`` column
per test metric, ``headline`` (the name of the task's headline metric) and ``headline_value``,
``params``, ``train_time_s``, ``samples_per_s``, ``peak_mem_bytes`` and ``mem_method``, the
protocol (``lr``, ``lr_source``, ``train_steps``, ``converged``), ``seq_len``, the measured step
cost (``step_time_s``, ``step_time_iqr_s``, ``step_mem_bytes``, ``step_shared``), ``seed_sd`` (the
calibrated seed noise of the headline, where there is one: ``reports.calibration``), every
``env_*`` column of the record's environment, and ``source`` (the input it came from). ``trials``
and ``micro`` keep their records' fields (``reports.records``), with ``source``.

``attnbench export INPUTS... -o FOLDER [--format csv|parquet]`` writes ``runs``, ``trials`` and
``micro`` tables there (Parquet needs ``pip install -e ".[parquet]"``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .calibration import Key, SeedNoise
from .records import ENV_FIELDS
from .runs import headline_metric, runs_frame
from .sources import collect

FORMATS = ("csv", "parquet")
INTERNAL = ("items", "seed_noise", "_file", "_source")  # objects for the report, not data


@dataclass
class Results:
    runs: pd.DataFrame
    trials: pd.DataFrame
    micro: pd.DataFrame
    problems: list[str] = field(default_factory=list)
    superseded: int = 0

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"runs": self.runs, "trials": self.trials, "micro": self.micro}


def tidy_runs(records: list[dict], calibration: Mapping[Key, SeedNoise] | None = None
              ) -> tuple[pd.DataFrame, int]:
    """The runs table (module docstring) from training records, and how many older records of the
    same run were superseded."""
    frame, superseded = runs_frame(records, calibration)
    if frame.empty:
        return pd.DataFrame(columns=["task", "data", "variant", "seed", "status", "source"]), superseded
    environment = pd.DataFrame([{k: r.get(k) for k in ENV_FIELDS} | {"_file": r.get("_file"),
                                                                     "_source": r.get("_source")}
                                for r in records])
    frame = frame.assign(source=frame["_source"], seed_sd=[n.sd if isinstance(n, SeedNoise) else None
                                                           for n in frame["seed_noise"]])
    missing = [k for k in ENV_FIELDS if k not in frame]
    if missing and "_file" in environment:
        keyed = environment.drop_duplicates(["_file", "_source"]).set_index(["_file", "_source"])[missing]
        frame = frame.join(keyed, on=["_file", "_source"])
    headline = {}
    for (task, data), group in frame[frame["status"] == "ok"].groupby(["task", "data"]):
        headline[(task, data)] = headline_metric(group)
    names = [headline.get((t, d)) for t, d in zip(frame["task"], frame["data"], strict=True)]
    frame["headline"] = [n.removeprefix("metric:") if n else None for n in names]
    frame["headline_value"] = [row.get(n) if n else None for n, (_, row) in zip(names, frame.iterrows(),
                                                                                strict=True)]
    return frame.drop(columns=[c for c in INTERNAL if c in frame]), superseded


def load(inputs: list[str | os.PathLike], calibration: Mapping[Key, SeedNoise] | None = None) -> Results:
    """Read suite folders, sweep folders, JSON records and micro CSVs (``reports.sources``) into
    tidy tables; what cannot be read is listed in ``problems``, never raised."""
    found = collect(list(inputs))
    runs, superseded = tidy_runs(found.runs, calibration)
    trials = pd.DataFrame([{k: v for k, v in t.items() if not k.startswith("_")}
                           | {"source": t.get("_source")} for t in found.trials])
    micro = found.micro.rename(columns={"_source": "source"}) if len(found.micro) else found.micro
    return Results(runs, trials, micro, list(found.problems), superseded)


def export(results: Results, out: str | os.PathLike, fmt: str = "csv") -> list[Path]:
    """Write each non-empty table as ``<out>/<name>.<fmt>``; the paths written."""
    if fmt not in FORMATS:
        raise ValueError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError as err:
            raise ValueError("--format parquet needs pyarrow: pip install -e \".[parquet]\"") from err
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, table in results.tables().items():
        if table.empty:
            continue
        path = out / f"{name}.{fmt}"
        flat = table.map(lambda v: repr(v) if isinstance(v, (dict, list, tuple)) else v)
        if fmt == "csv":
            flat.to_csv(path, index=False)
        else:
            flat.astype({c: "string" for c in flat.columns if flat[c].dtype == object}).to_parquet(path,
                                                                                                   index=False)
        written.append(path)
    return written
