"""Result records: the one schema that runs write (``bench/``) and reports read (``reports/``).

Two kinds of record, both tidy (one row per measured case or trained run):

- micro-benchmark rows (``MICRO_COLUMNS``), appended to a CSV file;
- training results (``TRAIN_FIELDS``), one JSON object per run (``attnbench train --out``), and
  also appendable as CSV rows with their metrics flattened to ``metric.<name>`` columns.

Every record carries the environment it was measured in (``environment()``, columns prefixed
``env_``). Writes never lose what is already on disk: JSON files are written to a temporary file
and renamed into place (``configs.atomic.atomic_write``); CSV rows are appended under an exclusive lock
and flushed to disk, and a file whose header differs from the schema is refused rather than mixed.

A micro-benchmark row's derived columns are defined here too, so that the runs that fill them
(``bench.micro``) and the reports that read them share one definition without ``bench/`` importing
the reports' analysis: ``flops`` is ``attention_flops``, the dense count 4 * B * H * Lq * Lk * D for
the forward pass (half that when causal) and 3.5 times that with the backward pass (2.5 forwards),
whatever the variant computes (for an approximate variant the FLOP/s is "dense-equivalent"), and
``utilisation`` is FLOP/s over the device's dense peak (``DEVICE_PEAKS``), given only for exact
variants on devices whose peak is known.
"""

from __future__ import annotations

import csv
import fcntl
import functools
import json
import os
import platform
import subprocess
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from configs.atomic import atomic_write

SCHEMA_VERSION = 1

ENV_FIELDS = (
    "env_schema", "env_timestamp", "env_torch", "env_cuda", "env_cudnn", "env_xformers",
    "env_device", "env_cpu", "env_threads", "env_python", "env_platform", "env_git_commit",
)

MICRO_COLUMNS = (
    "run_id", "case", "variant", "variant_kwargs", "device", "dtype", "batch", "heads", "lq", "lk",
    "head_dim", "causal", "mask", "pass", "status", "reason", "max_abs_err", "time_median_s",
    "time_iqr_s", "runs", "peak_mem_bytes", "reserved_mem_bytes", "mem_method", "flops",
    "flops_per_s", "utilisation", *ENV_FIELDS,
)
MICRO_STATUSES = ("ok", "unsupported", "incorrect", "oom", "error")
# Dense peak FLOP/s (no sparsity) by device-name fragment and dtype, from the vendors' data sheets.
DEVICE_PEAKS: dict[str, dict[str, float]] = {
    "H100": {"float16": 989e12, "bfloat16": 989e12, "float32": 67e12},
    "H200": {"float16": 989e12, "bfloat16": 989e12, "float32": 67e12},
    "A100": {"float16": 312e12, "bfloat16": 312e12, "float32": 19.5e12},
}

TRAIN_FIELDS = (
    "run_id", "task", "variant", "seed", "data", "config", "status", "reason", "metrics", "params",
    "train_time_s", "samples_per_s", "peak_mem_bytes", "mem_method", "epochs", "best_checkpoint",
    "monitor", "best_val", "attention_file", "concurrent_runs", "resumed_from_epoch", "discarded_checkpoint",
    "dataset",  # a suite entry's name when it is not the task's (one task on several datasets)
    # the protocol (bench/protocol.py): learning rate and its source, steps, convergence, whether an
    # approximate variant computed exactly the reference, and the test metric item by item
    "protocol", "val_history", "convergence", "equals_reference", "reference_check", "test_items",
    "diagnosis", "learning_baseline",
    # the sequence length the task's model ran at (Task.sequence_length), and what one training pass
    # of the tested model cost at it (bench/step_cost.py), where the suite asked for it
    "seq_len", "step_cost",
    *ENV_FIELDS,
)


class RecordError(ValueError):
    """A record file that cannot be read or appended to as the schema says."""


@functools.lru_cache(maxsize=1)
def _git_commit() -> str:
    """The commit (``+dirty`` with uncommitted changes to tracked files) of the code this process runs:
    read once per process, the first time it is asked (the runner asks when it is imported), so a
    long suite or sweep whose tree is committed to meanwhile still records the code it imported."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=5, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() + ("+dirty" if dirty else "")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass  # not Linux: platform.processor() below is the portable answer
    return platform.processor() or platform.machine()


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment(device: str = "cpu") -> dict[str, object]:
    """What a measurement depends on: library versions, device, CPU, threads, commit, time."""
    import torch  # here, not at module level: readers of records (reports, the gate) need no torch

    cuda = torch.cuda.is_available()
    device_name = torch.cuda.get_device_name() if device.startswith("cuda") and cuda else "cpu"
    return {
        "env_schema": SCHEMA_VERSION,
        "env_timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "env_torch": torch.__version__,
        "env_cuda": torch.version.cuda or "none",
        "env_cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else "none",
        "env_xformers": _package_version("xformers"),
        "env_device": device_name,
        "env_cpu": _cpu_model(),
        "env_threads": torch.get_num_threads(),
        "env_python": platform.python_version(),
        "env_platform": platform.platform(),
        "env_git_commit": _git_commit(),
    }


def new_run_id(prefix: str) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{prefix}-{stamp}-{uuid.uuid4().hex[:8]}"


def attention_flops(batch: int, heads: int, lq: int, lk: int, head_dim: int, *, causal: bool,
                    backward: bool) -> float:
    """A micro row's ``flops``: those of dense attention at its shape (module docstring)."""
    forward = 4.0 * batch * heads * lq * lk * head_dim * (0.5 if causal else 1.0)
    return forward * (3.5 if backward else 1.0)


def device_peak(device_name: str, dtype: str) -> float | None:
    """The dense peak FLOP/s of a device (``env_device``) in ``dtype``; None where unknown."""
    for fragment, peaks in DEVICE_PEAKS.items():
        if fragment in device_name:
            return peaks.get(dtype)
    return None


def utilisation(flops_per_s: float, device_name: str, dtype: str) -> float | None:
    """A micro row's ``utilisation``: the fraction of the device's peak, None where it is unknown."""
    peak = device_peak(device_name, dtype)
    return flops_per_s / peak if peak else None


def write_json_atomic(path: str | os.PathLike, record: Mapping) -> Path:
    """Write ``record`` as JSON to ``path`` via a temporary file and an atomic rename."""
    with atomic_write(path) as handle:
        json.dump(record, handle, indent=2, sort_keys=True, default=str)
        handle.write("\n")
    return Path(path)


def append_csv_rows(path: str | os.PathLike, rows: Iterable[Mapping], columns: Sequence[str]) -> Path:
    """Append ``rows`` to the CSV at ``path`` (created with a header), under an exclusive lock.

    A row with a key outside ``columns`` is refused (the schema is fixed); a missing key is
    written empty. An existing file whose header differs is refused, never rewritten.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = list(rows)
    for row in rows:
        extra = set(row) - set(columns)
        if extra:
            raise RecordError(f"row has columns outside the schema: {sorted(extra)}")
    with open(path, "a+", newline="") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        header = handle.readline().strip()
        if header and header != ",".join(columns):
            raise RecordError(f"{path} has another schema (header {header[:80]!r}...); "
                              "write to a new file instead")
        handle.seek(0, os.SEEK_END)
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="raise")
        if not header:
            writer.writeheader()
        writer.writerows({c: _cell(row.get(c)) for c in columns} for row in rows)
        handle.flush()
        os.fsync(handle.fileno())
    return path


def _cell(value: object) -> object:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    return "" if value is None else value


def read_csv_records(paths: Iterable[str | os.PathLike], columns: Sequence[str]):
    """All rows of the CSV files as one pandas DataFrame; a file with another header is an error."""
    import pandas as pd

    frames = []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise RecordError(f"record file not found: {path}")
        frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
        if tuple(frame.columns) != tuple(columns):
            raise RecordError(f"{path} does not have the expected columns (schema {SCHEMA_VERSION})")
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(columns))
