"""``attnbench run <suite>``: the comparison matrix tasks x variants x seeds, resumable.

A suite is a YAML file (``configs/suites/<name>.yaml``):

    preset: quick                 # task config preset (or a YAML path) used by every run
    threads: 1                    # torch intra-op threads per run (default: torch's choice)
    seeds: [0, 1, 2]
    tasks:
      graph:
        variants: all             # every variant and baseline the task accepts, or a list
        data: null                # real data path for this task (default: embedded data)
        overrides: {trainer.max_epochs: 50}          # applied to every run of the task
        variant_overrides: {gat: {optim.lr: 0.005}}   # per variant (what sweeps export)

Every run's record is written atomically to ``<out>/records/<task>__<variant>__s<seed>.json``
when it finishes; a record on disk means the run is done, so re-running a suite skips it.
An interrupted run keeps its directory ``<out>/runs/<task>__<variant>__s<seed>/`` and resumes
from ``checkpoints/last.ckpt``. Variants a task cannot use are recorded (status
``unsupported``) with the reasons, so every cell of the matrix has a record.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

import configs
from reports.records import write_json_atomic
from tasks import TASK_MODULES, get_task
from tasks._base import apply_overrides

from .train import train_and_test

SUITE_KEYS = {"preset", "seeds", "tasks", "threads"}
TASK_KEYS = {"variants", "data", "overrides", "variant_overrides"}


@dataclass(frozen=True)
class Run:
    task: str
    variant: str
    seed: int
    data: str | None = None
    overrides: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.task}__{self.variant}__s{self.seed}"


@dataclass(frozen=True)
class Suite:
    name: str
    preset: str
    runs: list[Run]
    threads: int | None = None


def load_suite(name_or_path: str) -> Suite:
    """Parse and check a suite; every task, variant and override key is validated up front."""
    path = Path(name_or_path)
    if not path.suffix:
        path = configs.path("suites", f"{name_or_path}.yaml")
    if not path.is_file():
        shipped = sorted(p.stem for p in configs.path("suites").glob("*.yaml"))
        raise ValueError(f"suite {name_or_path!r} not found: give a YAML file or one of {shipped}")
    spec = yaml.safe_load(path.read_text()) or {}
    _keys(spec, SUITE_KEYS, f"{path}")
    seeds = spec.get("seeds", [0])
    if not seeds or not all(isinstance(s, int) for s in seeds):
        raise ValueError(f"{path}: seeds must be a non-empty list of integers, got {seeds!r}")
    preset = str(spec.get("preset", "quick"))
    tasks = spec.get("tasks") or {}
    if not tasks:
        raise ValueError(f"{path}: the suite names no tasks")
    runs = [run for task, entry in tasks.items()
            for run in _task_runs(path, task, entry or {}, preset, seeds)]
    threads = spec.get("threads")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ValueError(f"{path}: threads must be a positive integer, got {threads!r}")
    return Suite(path.stem, preset, runs, threads)


def _keys(spec: object, valid: set[str], where: str) -> None:
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(spec).__name__}")
    unknown = set(spec) - valid
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}; valid: {sorted(valid)}")


def _task_runs(path: Path, task_name: str, entry: dict, preset: str, seeds: list[int]) -> list[Run]:
    where = f"{path}: task {task_name!r}"
    if task_name not in TASK_MODULES:
        raise ValueError(f"{where}: unknown task; valid tasks: {', '.join(sorted(TASK_MODULES))}")
    _keys(entry, TASK_KEYS, where)
    task = get_task(task_name)
    known = task.applicable_variants()
    variants = entry.get("variants", "all")
    variants = list(known) if variants == "all" else list(variants)
    unknown = [v for v in variants if v not in known]
    if unknown:
        raise ValueError(f"{where}: unknown variants {unknown}; valid: {', '.join(known)}")
    base = dict(entry.get("overrides") or {})
    per_variant = entry.get("variant_overrides") or {}
    config = task.config(preset)
    for variant in per_variant:
        if variant not in variants:
            raise ValueError(f"{where}: variant_overrides for {variant!r}, which the suite does not run")
    runs = []
    for variant in variants:
        overrides = {**base, **(per_variant.get(variant) or {})}
        apply_overrides(config, overrides)  # raises on an unknown parameter name, before any training
        runs += [Run(task_name, variant, seed, entry.get("data"), overrides) for seed in seeds]
    return runs


def run_suite(suite: Suite, out: str | Path, *, console: Console | None = None, progress: bool = True,
              report: bool = True) -> list[dict]:
    """Run every run of ``suite`` that has no record under ``out`` yet; return all its records."""
    console = console or Console()
    out = Path(out)
    records_dir = out / "records"
    todo = [run for run in suite.runs if not (records_dir / f"{run.key}.json").is_file()]
    console.print(f"suite {suite.name}: {len(suite.runs)} runs, {len(suite.runs) - len(todo)} already "
                  f"recorded in {records_dir}, {len(todo)} to go")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, disable=not progress) as bar:
        task_id = bar.add_task(suite.name, total=len(suite.runs), completed=len(suite.runs) - len(todo))
        for run in todo:
            bar.update(task_id, description=f"{run.task} / {run.variant} / seed {run.seed}")
            started = time.perf_counter()
            record = train_and_test(run.task, run.variant, data=run.data, seed=run.seed, config=suite.preset,
                                    overrides=run.overrides, run_dir=out / "runs" / run.key,
                                    progress=False, run_id=f"{suite.name}/{run.key}",
                                    threads=suite.threads)
            record["suite"] = suite.name
            record["wall_time_s"] = time.perf_counter() - started
            write_json_atomic(records_dir / f"{run.key}.json", record)
            bar.advance(task_id)
    records = [json.loads((records_dir / f"{run.key}.json").read_text()) for run in suite.runs]
    print_records(records, console)
    if report:
        from reports.report import write_report

        files = write_report([out], out / "report")
        console.print(f"report: {files.markdown} and {files.html}")
    return records


def print_records(records: list[dict], console: Console) -> None:
    table = Table(title="suite results (test metrics of the best-validation checkpoint)", header_style="bold")
    for column in ("task", "variant", "seed", "status", "metrics", "train s", "note"):
        table.add_column(column)
    for r in records:
        shown = sorted((r.get("metrics") or {}).items())
        metrics = ", ".join(f"{k.removeprefix('test/')}={v:.3f}" for k, v in shown)
        train = f"{r['train_time_s']:.1f}" if r.get("train_time_s") is not None else ""
        table.add_row(r["task"], r["variant"], str(r["seed"]), r["status"], metrics, train,
                      (r.get("reason") or "")[:60])
    console.print(table)
