"""``attnbench run <suite>``: the comparison matrix tasks x variants x seeds, resumable.

A suite is a YAML file (``configs/suites/<name>.yaml``):

    preset: quick                 # task config preset (or a YAML path) used by every run
    threads: 1                    # torch intra-op threads per run (default: torch's choice)
    jobs: 2                       # runs at once, each in its own worker process (default 1)
    measure_step: false           # time one training pass of each tested model (its record's step_cost)
    memory_budget_gib: null       # per run (Linux): an allocation beyond it fails -> an `oom` record
    seeds: [0, 1, 2]
    tasks:
      graph:
        variants: all             # every variant and baseline the task accepts, or a list
        data: null                # real data path for this task (default: embedded data)
        overrides: {trainer.max_epochs: 50}          # applied to every run of the task
        variant_overrides: {gat: {optim.lr: 0.005}}   # per variant (what sweeps export)
      cora:                       # an entry named for its dataset, running the task given
        task: graph
        overrides: {data.name: cora}
        data_hint: a folder with Planetoid's ind.cora.* files   # the entry needs real data

An entry's name keys its runs (``<entry>__<variant>__s<seed>``) and labels its report section, so
one task can run on several datasets. ``data`` is a path or ``package:<module>`` (the ``data/``
folder of an installed Python package, e.g. ``package:easy_vqa``); ``attnbench run --data
ENTRY=PATH`` sets it from the command line. An entry with a ``data_hint`` and no data, a path that
does not exist or a package that is not installed is not trained: each of its runs is recorded
``unsupported`` with what to give or install.

Every run's record is written atomically to ``<out>/records/<task>__<variant>__s<seed>.json``
when it finishes; a record on disk means the run is done, so re-running a suite skips it, unless
the record was made with other settings than the run would use now (an edited preset, suite
overrides or per-variant rates): such a record is moved to ``<out>/records.stale/`` and the run
is trained again, and the suite says so.
An interrupted run keeps its directory ``<out>/runs/<task>__<variant>__s<seed>/`` and resumes
from ``checkpoints/last.ckpt``. Variants a task cannot use are recorded (status
``unsupported``) with the reasons, so every cell of the matrix has a record.

With ``jobs`` > 1 (or ``attnbench run --jobs N``) that many worker processes take runs from the
queue; each imports torch once and trains one run at a time. Workers die with the suite process
(also on SIGKILL), and a lock per run (``<out>/locks/<key>.lock``) keeps two suite processes on
one folder from training the same run twice. Runs that share the machine slow each other down:
every record carries the suite's worker count (``concurrent_runs``: up to that many runs shared
the machine with it), and the report says so next to the speed figures. Use ``jobs: 1`` when the
speed columns are what you are after.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import multiprocessing
import os
import queue
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
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

from .protocol import resolve_lr
from .train import differences, quiet_lightning, train_and_test

SUITE_KEYS = {"preset", "seeds", "tasks", "threads", "jobs", "measure_step", "memory_budget_gib"}
TASK_KEYS = {"task", "variants", "data", "data_hint", "overrides", "variant_overrides"}


@dataclass(frozen=True)
class Run:
    task: str
    variant: str
    seed: int
    data: str | None = None
    overrides: dict = field(default_factory=dict)
    entry: str = ""  # the suite entry (default: the task's name)
    data_hint: str | None = None  # what data the entry needs (None: embedded data will do)

    @property
    def name(self) -> str:
        return self.entry or self.task

    @property
    def key(self) -> str:
        return f"{self.name}__{self.variant}__s{self.seed}"


@dataclass(frozen=True)
class Suite:
    name: str
    preset: str
    runs: list[Run]
    threads: int | None = None
    jobs: int = 1
    measure_step: bool = False  # each record's step_cost (bench/step_cost.py)
    memory_budget_gib: float | None = None  # per run: beyond it an allocation fails -> an `oom` record


def load_suite(name_or_path: str, data: dict[str, str] | None = None) -> Suite:
    """Parse and check a suite; every task, variant and override key is validated up front.
    ``data`` maps entry names to data paths (``attnbench run --data ENTRY=PATH``)."""
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
    data = dict(data or {})
    unknown = sorted(set(data) - set(tasks))
    if unknown:
        raise ValueError(f"--data for {', '.join(unknown)}: the suite has no such entry; its entries: "
                         f"{', '.join(tasks)}")
    for name, given in data.items():
        tasks[name] = {**(tasks[name] or {}), "data": given}
    runs = [run for name, entry in tasks.items()
            for run in _task_runs(path, name, entry or {}, preset, seeds)]
    threads = spec.get("threads")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ValueError(f"{path}: threads must be a positive integer, got {threads!r}")
    jobs = spec.get("jobs", 1)
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(f"{path}: jobs must be a positive integer, got {jobs!r}")
    measure = spec.get("measure_step", False)
    if not isinstance(measure, bool):
        raise ValueError(f"{path}: measure_step must be true or false, got {measure!r}")
    budget = spec.get("memory_budget_gib")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int | float)
                               or budget <= 0):
        raise ValueError(f"{path}: memory_budget_gib must be a positive number of GiB, got {budget!r}")
    if budget is not None and not sys.platform.startswith("linux"):
        raise ValueError(f"{path}: memory_budget_gib needs Linux (address-space limits), not {sys.platform}")
    return Suite(path.stem, preset, runs, threads, jobs, measure, budget)


def _keys(spec: object, valid: set[str], where: str) -> None:
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(spec).__name__}")
    unknown = set(spec) - valid
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}; valid: {sorted(valid)}")


def _task_runs(path: Path, name: str, entry: dict, preset: str, seeds: list[int]) -> list[Run]:
    _keys(entry, TASK_KEYS, f"{path}: entry {name!r}")
    task_name = str(entry.get("task", name))
    where = f"{path}: task {task_name!r}" + (f" (entry {name!r})" if task_name != name else "")
    if task_name not in TASK_MODULES:
        raise ValueError(f"{where}: unknown task; valid tasks: {', '.join(sorted(TASK_MODULES))}")
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
        try:  # an unknown parameter name or constructor arguments a variant rejects: before any training
            task.variant_reasons(variant, apply_overrides(config, overrides, task.optional_keys))
        except ValueError as err:
            raise ValueError(f"{where}, variant {variant!r}: {err}") from err
        runs += [Run(task_name, variant, seed, entry.get("data"), overrides,
                     entry=name if name != task_name else "", data_hint=entry.get("data_hint"))
                 for seed in seeds]
    return runs


def run_suite(suite: Suite, out: str | Path, *, console: Console | None = None, progress: bool = True,
              report: bool = True, jobs: int | None = None) -> list[dict]:
    """Run every run of ``suite`` that has no record under ``out`` yet; return all its records.

    ``jobs`` (default: the suite's) runs that many at once in worker processes. A run that fails
    stops the suite once the runs already under way have finished and been recorded.
    """
    console = console or Console()
    out = Path(out)
    jobs = suite.jobs if jobs is None else jobs
    if jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs}")
    records_dir = out / "records"
    _set_aside_stale(suite, out, console)
    todo = [run for run in suite.runs if not _record_path(out, run).is_file()]
    jobs = max(min(jobs, len(todo)), 1)
    console.print(f"suite {suite.name}: {len(suite.runs)} runs, {len(suite.runs) - len(todo)} already "
                  f"recorded in {records_dir}, {len(todo)} to go"
                  + (f", {jobs} at a time" if jobs > 1 else ""))
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, disable=not progress) as bar:
        task_id = bar.add_task(suite.name, total=len(suite.runs), completed=len(suite.runs) - len(todo))
        if jobs == 1:
            for run in todo:
                bar.update(task_id, description=_describe([run]))
                execute_run(suite, run, out, concurrent_runs=1)
                bar.advance(task_id)
        else:
            _run_parallel(suite, todo, out, jobs, lambda running: bar.update(
                task_id, description=_describe(running) or suite.name), lambda: bar.advance(task_id))
    records = [json.loads(_record_path(out, run).read_text()) for run in suite.runs]
    print_records(records, console)
    if report:
        from reports.report import write_report

        files = write_report([out], out / "report")
        console.print(f"report: {files.markdown} and {files.html}")
    return records


def run_config(suite: Suite, run: Run) -> dict:
    """The resolved config ``run`` trains with now (its record's ``config``)."""
    task = get_task(run.task)
    config = apply_overrides(task.config(suite.preset), run.overrides, task.optional_keys)
    return resolve_lr(config, run.variant, run.overrides)[0]


def stale_reason(suite: Suite, run: Run, record: dict) -> str | None:
    """Why an existing record is not this run's result now (None: it is)."""
    expected = {"config": run_config(suite, run), "data": run.data or "embedded"}
    found = {"config": record.get("config"), "data": record.get("data")}
    changed = sorted(differences(json.loads(json.dumps(found, default=str)),
                                 json.loads(json.dumps(expected, default=str))))
    if not changed:
        return None
    return ", ".join(changed[:4]) + (f" and {len(changed) - 4} more" if len(changed) > 4 else "")


def _set_aside_stale(suite: Suite, out: Path, console: Console) -> None:
    """Move records made with other settings than the suite's runs use now to ``records.stale/``."""
    stale = []
    for run in suite.runs:
        path = _record_path(out, run)
        if not path.is_file():
            continue
        try:
            reason = stale_reason(suite, run, json.loads(path.read_text()))
        except ValueError:
            reason = "the record cannot be read"
        if reason:
            aside = out / "records.stale" / path.name
            aside.parent.mkdir(parents=True, exist_ok=True)
            path.replace(aside)
            stale.append(f"{run.key} ({reason})")
    if stale:
        console.print(f"suite {suite.name}: {len(stale)} records were made with other settings and are "
                      f"trained again (old records in {out / 'records.stale'}): " + "; ".join(stale[:3])
                      + (f"; and {len(stale) - 3} more" if len(stale) > 3 else ""))


def _record_path(out: Path, run: Run) -> Path:
    return out / "records" / f"{run.key}.json"


def _describe(running: list[Run]) -> str:
    return ", ".join(f"{run.name} / {run.variant} / seed {run.seed}" for run in running)


def execute_run(suite: Suite, run: Run, out: Path, concurrent_runs: int) -> None:
    """Train and record one run, unless another process recorded it while this one waited for its lock."""
    with _run_lock(out, run.key), quiet_lightning():
        if _record_path(out, run).is_file():
            return
        started = time.perf_counter()
        record = train_and_test(run.task, run.variant, data=run.data, seed=run.seed, config=suite.preset,
                                overrides=run.overrides, run_dir=out / "runs" / run.key, progress=False,
                                run_id=f"{suite.name}/{run.key}", threads=suite.threads,
                                concurrent_runs=concurrent_runs, dataset=run.entry or None,
                                data_hint=run.data_hint and f"give --data {run.name}=PATH ({run.data_hint})",
                                skip_equivalent=True, measure_step=suite.measure_step,
                                memory_budget=int(suite.memory_budget_gib * 2**30) if suite.memory_budget_gib
                                else None)
        record["suite"] = suite.name
        record["wall_time_s"] = time.perf_counter() - started
        write_json_atomic(_record_path(out, run), record)


@contextmanager
def _run_lock(out: Path, key: str) -> Iterator[None]:
    """An exclusive lock on one run for as long as this process trains it (released if it dies)."""
    path = out / "locks" / f"{key}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run_parallel(suite: Suite, todo: list[Run], out: Path, jobs: int, show, advance) -> None:
    """Hand ``todo`` to ``jobs`` spawned workers; after a failure, runs under way finish, then it raises."""
    context = multiprocessing.get_context("spawn")
    runs, events, stop = context.Queue(), context.Queue(), context.Event()
    for run in [*todo, *[None] * jobs]:  # then one stop sign per worker
        runs.put(run)
    workers = [context.Process(target=_worker, name=f"suite-worker-{i}",
                               args=(runs, events, stop, suite, out, jobs, dict(TASK_MODULES), os.getpid()))
               for i in range(jobs)]
    for worker in workers:
        worker.start()
    running: dict[str, Run] = {}  # worker name -> the run it trains
    failures: list[str] = []
    try:
        while any(w.is_alive() for w in workers) or not events.empty():
            try:
                kind, name, run, detail = events.get(timeout=0.5)
            except queue.Empty:
                continue
            if kind == "start":
                running[name] = run
            elif kind == "done":
                running.pop(name)
                advance()
            else:
                running.pop(name)
                failures.append(f"{run.key} failed:\n{detail}")
                stop.set()  # no new runs; those under way finish and are recorded
            show(list(running.values()))
    except BaseException:
        for worker in workers:  # Ctrl-C or an error here: stop now; interrupted runs resume next time
            worker.kill()
        raise
    finally:
        for worker in workers:
            worker.join()
    for worker in workers:  # killed from outside (say, out of memory): it could not report
        if worker.exitcode != 0:
            where = f" while training {running[worker.name].key}" if worker.name in running else ""
            failures.append(f"worker process {worker.name} died with exit code {worker.exitcode}{where}")
    if failures:
        raise RuntimeError("suite stopped: " + "\n".join(failures))


def _worker(runs, events, stop, suite: Suite, out: Path, jobs: int, task_modules: dict, parent: int) -> None:
    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    TASK_MODULES.update(task_modules)  # tasks registered at run time in the parent
    name = multiprocessing.current_process().name
    while (run := runs.get()) is not None and not stop.is_set():
        events.put(("start", name, run, None))
        try:
            execute_run(suite, run, out, concurrent_runs=jobs)
        except Exception:
            events.put(("error", name, run, traceback.format_exc()))
            return
        events.put(("done", name, run, None))


def _die_with_parent(parent: int) -> None:
    """Have the kernel kill this worker when the suite process dies, even by SIGKILL (Linux)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)


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
