"""Finding and reading records for the report and the gate: files and folders in, a Collection out.

An input is a micro-benchmark CSV (``MICRO_COLUMNS``), a JSON record (a training run of
``attnbench train`` / ``attnbench run``, or a sweep trial), or a folder:

- a suite folder (it has ``records/``): its records, and every ``runs/<key>/`` left without a
  record is listed as missing (an interrupted run, or one still running);
- a sweep folder (``trials/`` or ``journal.log``): its trial records and its Optuna journal;
- any other folder: searched recursively for ``*.json`` and ``*.csv`` (suite and sweep folders
  met on the way are read as such).

Inside folders, files that are known not to be records are counted as ignored: attention-example
files (read through the records that name them), Lightning's CSV logs, baseline files. Anything
else that cannot be read as a record is a problem naming the file; problems never stop the others
from being read.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .records import MICRO_COLUMNS, SCHEMA_VERSION, TRAIN_FIELDS, RecordError, read_csv_records

REQUIRED = ("task", "variant", "seed", "status")
# Fields added to schema 1 after its first records: absent means "none recorded".
OPTIONAL = ("attention_file", "concurrent_runs", "resumed_from_epoch", "discarded_checkpoint", "dataset",
            "protocol", "val_history", "convergence", "equals_reference", "reference_check", "test_items",
            "diagnosis", "learning_baseline", "seq_len", "step_cost")
BASELINE_KEY = "attnbench_baseline"


@dataclass
class Collection:
    """Everything read from the inputs; ``problems`` lists what could not be read, by file."""

    micro: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=[*MICRO_COLUMNS, "source"]))
    runs: list[dict] = field(default_factory=list)
    trials: list[dict] = field(default_factory=list)
    journals: list[Path] = field(default_factory=list)
    missing: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    ignored: Counter = field(default_factory=Counter)
    inputs: list[str] = field(default_factory=list)
    micro_parts: list[pd.DataFrame] = field(default_factory=list, repr=False)  # concatenated into micro

    @property
    def empty(self) -> bool:
        return self.micro.empty and not self.runs and not self.trials and not self.missing


def collect(paths: list[str | Path]) -> Collection:
    """Read every input; unreadable ones become ``problems`` (the rest is still read)."""
    found = Collection(inputs=[str(p) for p in paths])
    for path in map(Path, paths):
        if path.is_dir():
            _read_folder(found, path, source=str(path))
        elif path.is_file():
            _read_file(found, path, source=str(path), explicit=True)
        else:
            found.problems.append(f"{path}: not found")
    if found.micro_parts:
        rows = pd.concat(found.micro_parts, ignore_index=True)
        found.micro = rows.drop_duplicates(subset=list(MICRO_COLUMNS), ignore_index=True)
        if len(found.micro) < len(rows):  # the same file reached twice (a file and its folder)
            found.ignored["repeated micro-benchmark row"] += len(rows) - len(found.micro)
    return found


def _read_folder(found: Collection, folder: Path, source: str) -> None:
    if (folder / "records").is_dir():
        _read_suite(found, folder, source)
    elif (folder / "trials").is_dir() or (folder / "journal.log").is_file():
        _read_sweep(found, folder, source)
    else:
        for child in sorted(folder.iterdir()):
            if child.is_dir():
                _read_folder(found, child, source)
            elif child.suffix in (".json", ".csv"):
                _read_file(found, child, source, explicit=False)


def _read_suite(found: Collection, folder: Path, source: str) -> None:
    records = sorted((folder / "records").glob("*.json"))
    for path in records:
        _read_file(found, path, source, explicit=True)
    done = {path.stem for path in records}
    for run_dir in sorted((folder / "runs").glob("*")) if (folder / "runs").is_dir() else []:
        if run_dir.is_dir() and run_dir.name not in done:
            found.missing.append(_missing(run_dir, source))


def _read_sweep(found: Collection, folder: Path, source: str) -> None:
    trials = sorted((folder / "trials").glob("*.json")) if (folder / "trials").is_dir() else []
    for path in trials:
        _read_file(found, path, source, explicit=True)
    if (folder / "journal.log").is_file():
        found.journals.append(folder / "journal.log")
    done = {path.stem for path in trials}
    for run_dir in sorted((folder / "runs").glob("*")) if (folder / "runs").is_dir() else []:
        if run_dir.is_dir() and run_dir.name not in done:
            found.missing.append(_missing(run_dir, source))


def _missing(run_dir: Path, source: str) -> dict:
    """A run directory without a record: ``<task>__<variant>__s<seed>`` or ``<study>__trial<N>``."""
    parts = run_dir.name.split("__")
    last = (run_dir / "checkpoints" / "last.ckpt").is_file()
    reason = ("no record: interrupted or still running"
              + (" (a checkpoint to resume from exists)" if last else " (no checkpoint yet)"))
    entry = {"key": run_dir.name, "source": source, "status": "missing", "reason": reason,
             "task": "", "variant": "", "seed": ""}
    if len(parts) == 3 and parts[2].startswith("s") and parts[2][1:].isdigit():
        entry.update(task=parts[0], variant=parts[1], seed=parts[2][1:])
    return entry


def _read_file(found: Collection, path: Path, source: str, *, explicit: bool) -> None:
    if path.suffix == ".csv":
        _read_csv(found, path, source, explicit)
    elif path.suffix == ".json":
        _read_json(found, path, source, explicit)
    else:
        found.problems.append(f"{path}: not a record file (expected a .csv or .json record)")


def _read_csv(found: Collection, path: Path, source: str, explicit: bool) -> None:
    try:
        header = path.open().readline().strip().split(",")
    except (OSError, UnicodeDecodeError) as err:
        found.problems.append(f"{path}: cannot be read ({err})")
        return
    if not explicit and {"epoch", "step"} <= set(header):
        found.ignored["Lightning CSV log"] += 1
        return
    try:
        frame = read_csv_records([path], MICRO_COLUMNS)
    except (RecordError, ValueError, pd.errors.ParserError) as err:
        found.problems.append(f"{path}: not a micro-benchmark record file: {err}")
        return
    bad = sorted(set(frame["env_schema"].dropna().astype(int)) - {SCHEMA_VERSION})
    if bad:
        found.problems.append(f"{path}: schema mismatch: env_schema {bad}, this reader knows "
                              f"{SCHEMA_VERSION}")
        return
    found.micro_parts.append(frame.assign(source=source))


def _read_json(found: Collection, path: Path, source: str, explicit: bool) -> None:
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        found.problems.append(f"{path}: not valid JSON ({err})")
        return
    kind = _json_kind(record)
    if kind in ("attention examples", "baseline") and not explicit:
        found.ignored[f"{kind} file"] += 1
        return
    error = _schema_error(record) if kind in ("run", "trial") else f"not an attnbench record ({kind})"
    if error:
        found.problems.append(f"{path}: {error}")
        return
    record = {**record, "_source": source, "_file": str(path)}
    (found.trials if kind == "trial" else found.runs).append(record)


def _json_kind(record: object) -> str:
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, expected an object"
    if {"kind", "examples"} <= set(record):
        return "attention examples"
    if BASELINE_KEY in record:
        return "baseline"
    if {"sweep", "trial"} <= set(record):
        return "trial"
    if {"task", "variant"} <= set(record):
        return "run"
    return f"keys {sorted(record)[:8]}"


def _schema_error(record: dict) -> str | None:
    required = [f for f in TRAIN_FIELDS if f not in OPTIONAL] if record.get("status") == "ok" else REQUIRED
    missing = [key for key in required if key not in record]
    if missing:
        return f"schema mismatch: missing {missing}"
    if "env_schema" in record and record["env_schema"] != SCHEMA_VERSION:
        return f"schema mismatch: env_schema {record['env_schema']}, this reader knows {SCHEMA_VERSION}"
    metrics = record.get("metrics") if record["status"] == "ok" else {}
    if not isinstance(metrics, dict) or not all(isinstance(v, (int, float)) for v in metrics.values()):
        return "schema mismatch: metrics must map names to numbers"
    return None
