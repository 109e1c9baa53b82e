"""``attnbench sweep <sweep.yaml>``: an Optuna study per task, so variants compete at their best.

    task: graph
    preset: quick                  # task config preset or YAML path
    data: null                     # real data path (default: embedded data)
    study: graph-attention         # study name (default: the file name)
    n_trials: 20                   # trials to complete (COMPLETE or PRUNED) across all workers
    seed: 0                        # sampler seed (worker i uses seed + i), and the training seed
    train_seeds: [0, 1]            # train every trial once per seed; its value is their mean (default
                                   # [seed]); several seeds need `pruner: none`
    variants: [gat, gatv2]         # one: fixed; several (or `all` applicable, less those a suite records
                                   # as `equivalent` to reference): a categorical "variant"
    overrides: {trainer.patience: 0}   # fixed config changes for every trial (exported with the best)
    sampler: {type: tpe}           # tpe (default) | random | grid (every combination of categorical
                                   # params and variants once), with the sampler's own arguments
    pruner: {type: median, n_startup_trials: 3, n_warmup_steps: 5}   # `pruner: none` disables
    heartbeat: {interval: 10, grace: 30}   # RDB storage: a trial silent for `grace` s is retried
    export_seeds: [0, 1, 2]        # seeds of the exported best suite (default [0, 1, 2])
    params:                        # config keys (as in --set) and their search space
      optim.lr: {type: float, low: 1.0e-4, high: 1.0e-1, log: true}
      model.hidden: {type: int, low: 8, high: 64, step: 8}
      model.dropout: {type: categorical, choices: [0.0, 0.3, 0.6]}

Besides the overall best, the best trial of *each variant* is exported (``per_variant_<study>.yaml``):
a suite whose ``variant_overrides`` give every variant its own best settings, and, where the
learning rate is searched, the ``optim.variant_lr`` / ``optim.lr_provenance`` entries a preset
carries so that every variant trains with the rate chosen for it on validation (``bench.protocol``).

The objective is the task's monitored validation metric at its best checkpoint (never the
test split), averaged over ``train_seeds`` when a trial trains with several: on small validation
sets one seed's luck can pick the rate (each seed's record is ``trials/<study>__trial<N>_s<seed>.json``
and carries the trial's ``objective``). Pruning reports it every validation through optuna-integration's
``PyTorchLightningPruningCallback``. Pruner types: median, percentile, successive_halving
(asynchronous successive halving) and hyperband, each taking its Optuna class's arguments.
Storage: a journal file under the sweep directory by default
(safe for several local processes; a RUNNING trial whose process on this host has died is
marked failed and re-queued when a worker starts), or an RDB URL (``postgresql://...``, driver
from ``pip install -e ".[postgres]"``) for workers on several machines, with heartbeats and
``RetryHeartbeatStaleTrialCallback``. The storage is opened before any worker starts, so a
missing driver or an unreachable server is one clear error. Every trial writes a result record
(a failed one with its reason); the best parameters are exported as a suite YAML for
``attnbench run``. A worker process that dies, or a study in which no trial completed, is an
error that says so; the trials already finished stay in the storage and a rerun resumes.
"""

from __future__ import annotations

import itertools
import json
import logging
import multiprocessing
import os
import socket
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import sqlalchemy
import yaml
from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from reports.records import write_json_atomic
from tasks import TASK_MODULES, get_task
from tasks._base import apply_overrides

from .train import quiet_lightning, train_and_test

SWEEP_KEYS = {"task", "preset", "data", "study", "n_trials", "seed", "variants", "pruner", "sampler",
              "params", "heartbeat", "overrides", "export_seeds", "train_seeds"}
PRUNERS = {"median": optuna.pruners.MedianPruner, "percentile": optuna.pruners.PercentilePruner,
           "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
           "hyperband": optuna.pruners.HyperbandPruner}
SAMPLERS = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler,
            "grid": optuna.samplers.GridSampler}
DEFAULT_PRUNER = {"type": "median", "n_startup_trials": 3, "n_warmup_steps": 3}
PARAM_TYPES = {"float": {"low", "high", "log", "step"}, "int": {"low", "high", "log", "step"},
               "categorical": {"choices"}}
DONE = (TrialState.COMPLETE, TrialState.PRUNED)
POSTGRES_EXTRA = "pip install -e '.[postgres]'"


class SweepError(RuntimeError):
    """A sweep that cannot go on or finish: storage, workers, or no completed trial (one line)."""


@dataclass(frozen=True)
class Sweep:
    task: str
    preset: str
    data: str | None
    study: str
    n_trials: int
    seed: int
    variants: list[str]
    pruner: dict | None  # {"type": name, **arguments}; None: no pruning
    params: dict
    heartbeat: tuple[int, int] = (10, 30)  # RDB only: seconds between beats, grace before a trial is stale
    sampler: dict = field(default_factory=lambda: {"type": "tpe"})
    overrides: dict = field(default_factory=dict)
    export_seeds: tuple[int, ...] = (0, 1, 2)
    source: str = ""  # the sweep file it was loaded from (for the exported provenance)
    train_seeds: tuple[int, ...] = ()  # each trial trains once per seed (empty: the sampler's seed)

    @property
    def seeds(self) -> tuple[int, ...]:
        """The training seeds of every trial: its value is the mean of their best validation metrics."""
        return self.train_seeds or (self.seed,)

    def make_pruner(self) -> optuna.pruners.BasePruner:
        if self.pruner is None:
            return optuna.pruners.NopPruner()
        kwargs = dict(self.pruner)
        return PRUNERS[kwargs.pop("type")](**kwargs)

    def make_sampler(self, worker: int = 0) -> optuna.samplers.BaseSampler:
        kwargs = dict(self.sampler)
        kind = kwargs.pop("type")
        if kind == "grid":
            kwargs["search_space"] = self.grid()
        return SAMPLERS[kind](seed=self.seed + worker, **kwargs)

    def grid(self) -> dict[str, list]:
        """The grid sampler's search space: every categorical parameter, and the variants."""
        space = {name: list(spec["choices"]) for name, spec in self.params.items()
                 if spec["type"] == "categorical"}
        if len(space) != len(self.params):
            numeric = sorted(set(self.params) - set(space))
            raise ValueError(f"a grid needs categorical parameters only; {numeric} are not")
        return {**({"variant": list(self.variants)} if len(self.variants) > 1 else {}), **space}


def load_sweep(path: str | Path) -> Sweep:
    """Parse and check a sweep file: unknown tasks, variants or parameters fail before any trial."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"sweep file not found: {path}")
    spec = yaml.safe_load(path.read_text()) or {}
    if not isinstance(spec, dict) or set(spec) - SWEEP_KEYS:
        raise ValueError(f"{path}: expected a mapping with keys from {sorted(SWEEP_KEYS)}")
    task_name = spec.get("task")
    if task_name not in TASK_MODULES:
        valid = ", ".join(sorted(TASK_MODULES))
        raise ValueError(f"{path}: unknown task {task_name!r}; valid tasks: {valid}")
    task = get_task(task_name)
    variants = spec.get("variants") or []
    params = spec.get("params") or {}
    if variants == "all":
        variants = None  # every variant applicable with the sweep's preset and overrides (below)
    preset = str(spec.get("preset", "quick"))
    fixed = spec.get("overrides") or {}
    if not isinstance(fixed, dict):
        raise ValueError(f"{path}: overrides must map config keys to values, got {fixed!r}")
    both = sorted(set(fixed) & set(params))
    if both:
        raise ValueError(f"{path}: {both} are both fixed (overrides) and searched (params)")
    config = task.config(preset)
    apply_overrides(config, {name: None for name in params}, task.optional_keys)  # unknown names raise
    config = apply_overrides(config, fixed, task.optional_keys)
    known = task.applicable_variants(config)  # what every trial shares: the preset and the overrides
    if variants is None:  # a suite does not train one that provably computes reference: no rate for it
        variants = [v for v, reasons in known.items()
                    if not reasons and not task.computes_reference(v, config)]
    if not params and len(variants) < 2:
        raise ValueError(f"{path}: the search space is empty (no params and a single variant)")
    bad = [v for v in variants if v not in known or known[v]]
    if not variants or bad:
        raise ValueError(f"{path}: variants {bad or variants!r} are unknown or not applicable to "
                         f"{task_name} with preset {preset!r} and the sweep's overrides; applicable: "
                         f"{[v for v, r in known.items() if not r]}")
    for name, space in params.items():
        _check_space(path, name, space)
    seeds = spec.get("export_seeds", [0, 1, 2])
    if not isinstance(seeds, list) or not seeds or not all(type(x) is int for x in seeds):
        raise ValueError(f"{path}: export_seeds must be a non-empty list of integers, got {seeds!r}")
    train_seeds = spec.get("train_seeds", [int(spec.get("seed", 0))])
    if not isinstance(train_seeds, list) or not train_seeds or not all(type(x) is int for x in train_seeds) \
            or len(set(train_seeds)) != len(train_seeds):
        raise ValueError(f"{path}: train_seeds must be a non-empty list of distinct integers, "
                         f"got {train_seeds!r}")
    pruner = _component(path, "pruner", spec.get("pruner", DEFAULT_PRUNER), PRUNERS, "median")
    if pruner is not None and len(train_seeds) > 1:
        raise ValueError(f"{path}: train_seeds {train_seeds} trains each trial several times, which a pruner "
                         "cannot judge step by step; set `pruner: none`")
    sampler = _component(path, "sampler", spec.get("sampler", {"type": "tpe"}), SAMPLERS, "tpe")
    n_trials = spec.get("n_trials", _grid_size(params, variants) if sampler["type"] == "grid" else 20)
    if not isinstance(n_trials, int) or n_trials < 1:
        raise ValueError(f"{path}: n_trials must be a positive integer, got {n_trials!r}")
    heartbeat = spec.get("heartbeat", {"interval": 10, "grace": 30})
    if not isinstance(heartbeat, dict) or set(heartbeat) != {"interval", "grace"}:
        raise ValueError(f"{path}: heartbeat must be {{interval: s, grace: s}}, got {heartbeat!r}")
    sweep = Sweep(task_name, preset, spec.get("data"), str(spec.get("study", path.stem)), n_trials,
                  int(spec.get("seed", 0)), list(variants), pruner, params,
                  (int(heartbeat["interval"]), int(heartbeat["grace"])), sampler, dict(fixed), tuple(seeds),
                  str(path), tuple(train_seeds))
    for kind, make in (("pruner", sweep.make_pruner), ("sampler", sweep.make_sampler)):
        try:
            make()
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}: {kind} {spec.get(kind)!r} is not valid: {err}") from err
    return sweep


def _grid_size(params: dict, variants: list[str]) -> int:
    size = len(variants)
    for space in params.values():
        size *= len(space.get("choices") or [0]) if isinstance(space, dict) else 1
    return size


def _component(path: Path, kind: str, spec: object, known: dict, default: str) -> dict | None:
    """``{type: name, **arguments}`` (the type defaults to ``default``); ``none`` for no pruner."""
    if kind == "pruner" and spec in ("none", None):
        return None
    if not isinstance(spec, dict):
        raise ValueError(f"{path}: {kind} must be a mapping {{type: ..., arguments}}, got {spec!r}")
    spec = {"type": default, **spec}
    if spec["type"] not in known:
        raise ValueError(f"{path}: unknown {kind} type {spec['type']!r}; valid: {', '.join(known)}")
    return spec


def _check_space(path: Path, name: str, space: object) -> None:
    kind = space.get("type") if isinstance(space, dict) else None
    if kind not in PARAM_TYPES or set(space) - PARAM_TYPES[kind] - {"type"}:
        raise ValueError(f"{path}: parameter {name!r} needs type float|int|categorical and its bounds, "
                         f"got {space!r}")
    if kind == "categorical" and not space.get("choices"):
        raise ValueError(f"{path}: parameter {name!r} has no choices")
    if kind != "categorical" and not space.get("low", 0) < space.get("high", 0):
        raise ValueError(f"{path}: parameter {name!r} needs low < high, got {space!r}")


def make_storage(url: str | None, out: Path, heartbeat: tuple[int, int] = (10, 30)):
    """The journal file under ``out`` (``url`` None) or the RDB at ``url``; SweepError when it cannot
    be opened (no driver, not a URL, server unreachable), with the password hidden."""
    if url is None:
        out.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(out / "journal.log")))
    engine = {"connect_args": {"connect_timeout": 10}} if url.startswith("postgresql") else {}
    try:
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna, and stable in use here
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(url, engine_kwargs=engine, heartbeat_interval=heartbeat[0],
                              grace_period=heartbeat[1],
                              heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=3))
    except ImportError as err:
        missing = err.__cause__ or err
        hint = (f"install the PostgreSQL driver: {POSTGRES_EXTRA}" if url.startswith("postgresql") else
                f"install this database's driver (PostgreSQL: {POSTGRES_EXTRA})")
        raise SweepError(f"--storage {_shown(url)}: no database driver ({missing}); {hint}") from err
    except sqlalchemy.exc.ArgumentError as err:
        raise SweepError(f"--storage {_shown(url)}: not a database URL (expected e.g. "
                         "postgresql://user:password@host:5432/dbname)") from err
    except sqlalchemy.exc.OperationalError as err:
        detail = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
        raise SweepError(f"--storage {_shown(url)}: cannot connect to the database: {detail}") from err


def _shown(url: str) -> str:
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return repr(url)


def _suggest(trial: optuna.Trial, sweep: Sweep) -> tuple[str, dict]:
    variant = sweep.variants[0]
    if len(sweep.variants) > 1:
        variant = trial.suggest_categorical("variant", sweep.variants)
    overrides = {}
    for name, space in sweep.params.items():
        kind, bounds = space["type"], {k: v for k, v in space.items() if k != "type"}
        suggest = {"float": trial.suggest_float, "int": trial.suggest_int,
                   "categorical": trial.suggest_categorical}[kind]
        overrides[name] = suggest(name, **bounds)
    return variant, {**sweep.overrides, **overrides}


class SurplusTrial(RuntimeError):
    """A trial started while the study already had enough finished or running ones (not run)."""

    def __init__(self, number: int, done: int) -> None:
        super().__init__(f"trial {number}: the study already has {done} finished trials")
        self.number = number


class SurplusTrialFilter(logging.Filter):
    """Keeps Optuna's warnings about surplus trials (``SurplusTrial``: started by a parallel worker as
    the study filled, never run) off the console: they are bookkeeping, not failures, and Optuna
    logs each with a traceback and a second line. Every other record passes."""

    def __init__(self) -> None:
        super().__init__()
        self.surplus: set[int] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, SurplusTrial):
            self.surplus.add(error.number)
            return False
        message = record.getMessage()
        return not any(message.startswith(f"Trial {n} failed with value") for n in self.surplus)


def claim_slot(study: optuna.Study, trial: optuna.Trial, n_trials: int, *, rdb: bool) -> None:
    """Run ``trial`` only if it is among the first ``n_trials - finished`` RUNNING trials.

    ``MaxTrialsCallback`` alone lets parallel workers overshoot (each starts a trial while the
    count is one short). A trial waits while earlier running trials may still fill the study,
    proceeds when a slot frees (one of them failed or died), and raises ``SurplusTrial`` (so it
    ends FAILED, never run) once the study is full.
    """
    while True:
        if rdb:
            optuna.storages.fail_stale_trials(study)  # a dead worker's trial frees its slot
        else:
            requeue_dead_trials(study)
        done = len(study.get_trials(deepcopy=False, states=DONE))
        if done >= n_trials:
            raise SurplusTrial(trial.number, done)
        running = sorted(t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
        if trial.number in running[: n_trials - done]:
            return
        time.sleep(0.5)


def objective(trial: optuna.Trial, sweep: Sweep, out: Path, *, rdb: bool = False,
              threads: int | None = None) -> float:
    from optuna_integration import PyTorchLightningPruningCallback

    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    claim_slot(trial.study, trial, sweep.n_trials, rdb=rdb)
    variant, overrides = _suggest(trial, sweep)
    task = get_task(sweep.task)
    key = f"{sweep.study}__trial{trial.number}"
    callbacks = [PyTorchLightningPruningCallback(trial, monitor=task.monitor)] if sweep.pruner else []
    base = {"sweep": sweep.study, "trial": trial.number, "params": trial.params}
    several = len(sweep.seeds) > 1
    records = []
    for seed in sweep.seeds:
        name = f"{key}_s{seed}" if several else key  # one record and run folder per training seed
        records.append((out / "trials" / f"{name}.json",
                        _train_trial(trial, sweep, variant, overrides, seed, out / "runs" / name,
                                     out / "trials" / f"{name}.json", base, callbacks, threads)))
    value = sum(r["best_val"] for _, r in records) / len(records)
    if several:
        trial.set_user_attr("seed_values", {str(r["seed"]): r["best_val"] for _, r in records})
    for path, record in records:  # every seed's record carries the trial's value
        write_json_atomic(path, {**record, "objective": value, "train_seeds": list(sweep.seeds)})
    return value


def _train_trial(trial: optuna.Trial, sweep: Sweep, variant: str, overrides: dict, seed: int, run_dir: Path,
                 record_path: Path, base: dict, callbacks: list, threads: int | None) -> dict:
    """One training seed of a trial: its record (written), or the exception that ends the trial."""
    short = {**base, "task": sweep.task, "variant": variant, "seed": seed}
    try:
        with quiet_lightning():
            record = train_and_test(sweep.task, variant, data=sweep.data, seed=seed,
                                    config=sweep.preset, overrides=overrides, run_dir=run_dir,
                                    progress=False, run_id=f"{sweep.study}/trial{trial.number}"
                                    + (f"/s{seed}" if len(sweep.seeds) > 1 else ""),
                                    callbacks=callbacks, threads=threads)
    except optuna.TrialPruned as pruned:
        reason = f"{sweep.pruner['type']} pruner: {pruned}"
        write_json_atomic(record_path, {**short, "status": "pruned", "reason": reason})
        raise
    except (RuntimeError, ValueError) as err:  # this trial's settings failed; the study goes on
        reason = f"{type(err).__name__}: {err}".strip()
        trial.set_user_attr("failure", reason.splitlines()[0][:300])
        write_json_atomic(record_path, {**short, "status": "failed", "reason": reason})
        raise
    write_json_atomic(record_path, {**record, **base})
    if record["status"] != "ok" or record.get("best_val") is None:
        reason = f"{record['status']}: {record.get('reason') or 'no validation metric'}"
        trial.set_user_attr("failure", reason[:300])
        raise RuntimeError(f"trial {trial.number}" + (f" (seed {seed})" if len(sweep.seeds) > 1 else "")
                           + f": {reason}")
    return {**record, **base}


def requeue_dead_trials(study: optuna.Study) -> int:
    """Journal storage has no heartbeat: RUNNING trials of dead processes on this host are retried."""
    host = socket.gethostname()
    count = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = trial.user_attrs.get("worker", "")
        name, _, pid = owner.partition(":")
        if name == host and pid.isdigit() and not _alive(int(pid)):
            study.tell(trial.number, state=TrialState.FAIL)
            study.enqueue_trial(trial.params, skip_if_exists=False)
            count += 1
    return count


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _study(sweep: Sweep, storage, worker: int) -> optuna.Study:
    task = get_task(sweep.task)
    direction = "maximize" if task.monitor_mode == "max" else "minimize"
    return optuna.create_study(study_name=sweep.study, storage=storage, load_if_exists=True,
                               pruner=sweep.make_pruner(), direction=direction,
                               sampler=sweep.make_sampler(worker))


def work(sweep: Sweep, out: Path, storage_url: str | None, worker: int = 0, gpu: int | None = None,
         threads: int | None = None, on_trial: Callable[[], None] | None = None,
         task_modules: dict | None = None, parent: int | None = None) -> None:
    """One worker: optimise until the study holds ``n_trials`` finished (complete or pruned) trials,
    or as many trials have failed (settings that cannot train stop the study rather than loop).

    ``gpu`` pins the worker to one device (set before CUDA initialises), so N workers on an
    N-GPU machine run one trial per GPU. ``threads``: torch intra-op threads per trial.
    ``on_trial`` is called after every trial (the progress bar of an in-process worker);
    ``task_modules``: tasks registered at run time in the parent process. ``parent``: the pid of the
    sweep process that spawned this worker, which then dies with it (even by SIGKILL), instead of
    training on, unseen, into a storage that may have been moved away.
    """
    if parent is not None:
        from .suite import _die_with_parent

        _die_with_parent(parent)
    TASK_MODULES.update(task_modules or {})
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optimizer_log = logging.getLogger("optuna.study._optimize")  # where Optuna reports failed trials
    if not any(isinstance(f, SurplusTrialFilter) for f in optimizer_log.filters):
        optimizer_log.addFilter(SurplusTrialFilter())
    storage = make_storage(storage_url, out, sweep.heartbeat)
    study = _study(sweep, storage, worker)
    if storage_url is None:
        requeue_dead_trials(study)
    if len(study.get_trials(deepcopy=False, states=DONE)) >= sweep.n_trials:
        return
    callbacks = [MaxTrialsCallback(sweep.n_trials, states=DONE), _stop_after_failures(sweep.n_trials)]
    if on_trial is not None:
        callbacks.append(lambda study, trial: on_trial())
    study.optimize(lambda t: objective(t, sweep, out, rdb=storage_url is not None, threads=threads),
                   catch=(RuntimeError, ValueError), callbacks=callbacks)


def _stop_after_failures(limit: int) -> Callable[[optuna.Study, optuna.trial.FrozenTrial], None]:
    """Stop once ``limit`` trials failed on their own settings (not re-queued or surplus ones)."""
    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        if sum("failure" in t.user_attrs for t in failed) >= limit:
            study.stop()
    return callback


def run_sweep(sweep: Sweep, out: str | Path, *, storage_url: str | None = None, workers: int = 1,
              threads: int | None = None, progress: bool = False, console: Console | None = None) -> dict:
    """Run the study with ``workers`` local processes; export and return the best trial.

    The storage is opened first (SweepError if it cannot be). A worker that dies, or a study with
    no completed trial, raises SweepError once the others have finished.
    """
    out = Path(out)
    storage = make_storage(storage_url, out, sweep.heartbeat)
    if sweep.sampler["type"] == "grid":
        enqueue_grid(_study(sweep, storage, 0), sweep)
    with _trial_bar(sweep, storage, console or Console(), progress) as refresh:
        if workers == 1:
            work(sweep, out, storage_url, threads=threads, on_trial=refresh)
        else:
            _run_workers(sweep, out, storage_url, workers, threads, refresh)
    return export_best(_study(sweep, storage, 0), sweep, out)


def enqueue_grid(study: optuna.Study, sweep: Sweep) -> int:
    """Queue every cell of a grid sweep once, before any worker starts, and return how many were new.

    Workers then take queued trials one at a time from the storage. Left to itself, each worker's
    ``GridSampler`` picks an unvisited cell on its own, and parallel workers pick the same cell
    (measured: 2 local workers ran 13 distinct cells of a 15-cell grid, two of them twice). A cell
    already queued or run (a resumed sweep) is not queued again.
    """
    grid = sweep.grid()
    names = list(grid)
    before = len(study.get_trials(deepcopy=False))
    for values in itertools.product(*grid.values()):
        study.enqueue_trial(dict(zip(names, values, strict=True)), skip_if_exists=True)
    return len(study.get_trials(deepcopy=False)) - before


def _run_workers(sweep: Sweep, out: Path, storage_url: str | None, workers: int, threads: int | None,
                 refresh: Callable[[], None]) -> None:
    import torch

    gpus = torch.cuda.device_count()
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=work, args=(sweep, out, storage_url, i, i % gpus if gpus else None,
                                                threads, None, dict(TASK_MODULES), os.getpid()))
             for i in range(workers)]
    for proc in procs:
        proc.start()
    while any(proc.is_alive() for proc in procs):
        procs[0].join(timeout=1.0)
        refresh()
    for proc in procs:
        proc.join()
    dead = [f"worker {i} exited with code {proc.exitcode}" for i, proc in enumerate(procs) if proc.exitcode]
    if dead:
        raise SweepError(f"sweep {sweep.study}: {'; '.join(dead)} (its traceback is above); the trials "
                         "already finished are kept in the storage, and running the sweep again resumes")


@contextmanager
def _trial_bar(sweep: Sweep, storage, console: Console, enabled: bool) -> Iterator[Callable[[], None]]:
    """A progress bar of finished trials read from the storage (so it counts every worker's)."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, disable=not enabled) as bar:
        task = bar.add_task(f"sweep {sweep.study}", total=sweep.n_trials)

        def refresh() -> None:
            if not enabled:
                return
            study = _study(sweep, storage, 0)
            done = len(study.get_trials(deepcopy=False, states=DONE))
            complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            shown = f" (best {study.best_value:.4f})" if complete else ""
            bar.update(task, completed=min(done, sweep.n_trials), description=f"sweep {sweep.study}{shown}")

        refresh()
        yield refresh


def export_best(study: optuna.Study, sweep: Sweep, out: Path) -> dict:
    """The best trial's settings as a suite that ``attnbench run`` accepts; SweepError without one."""
    trials = study.get_trials(deepcopy=False)
    if not any(t.state == TrialState.COMPLETE for t in trials):
        counts = Counter(t.state.name.lower() for t in trials)
        states = ", ".join(f"{n} {state}" for state, n in counts.items())
        reasons = sorted({t.user_attrs["failure"] for t in trials if "failure" in t.user_attrs})[:3]
        why = f"; reasons: {' | '.join(reasons)}" if reasons else ""
        raise SweepError(f"sweep {sweep.study}: no trial completed ({states or 'no trials'}), nothing to "
                         f"export{why}; every trial's record is in {out / 'trials'}")
    best = study.best_trial
    variant = best.params.get("variant", sweep.variants[0])
    searched = {k: v for k, v in best.params.items() if k != "variant"}
    suite = {"preset": sweep.preset, "seeds": list(sweep.export_seeds),
             "tasks": {sweep.task: {"variants": [variant], "data": sweep.data,
                                    "variant_overrides": {variant: {**sweep.overrides, **searched}}}}}
    path = out / f"best_{sweep.study}.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    per_variant, edges = export_per_variant(study, sweep, out)
    return {"value": best.value, "trial": best.number, "variant": variant, "params": searched,
            "suite": str(path), "per_variant": per_variant, "at_grid_edge": edges}


class _PlainDumper(yaml.SafeDumper):
    """Writes repeated values out in full (no &id anchors), so the file reads as it will be pasted."""

    def ignore_aliases(self, data) -> bool:
        return True


def _trial_commits(out: Path) -> str | None:
    """The commits the finished trials' records name (the code their workers imported), in order of
    first use; None when no trial record names one."""
    commits: dict[str, None] = {}
    for path in sorted((out / "trials").glob("*.json"), key=lambda p: p.stat().st_mtime):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            # Records are written atomically, so this is a file removed while we listed the folder
            # or one damaged by hand: it names no commit to trust, and its trial's own state lives in
            # the study, which this function does not decide. The provenance just lacks its commit.
            continue
        if record.get("status") == "ok" and record.get("env_git_commit"):
            commits[str(record["env_git_commit"])[:12]] = None
    return ", ".join(commits) or None


def export_per_variant(study: optuna.Study, sweep: Sweep, out: Path) -> tuple[str, dict[str, list[str]]]:
    """Each variant's best completed trial: a suite giving every variant its own best settings, the
    learning rates as a preset's ``optim.variant_lr`` with their provenance, and the table of values.
    Returns the file's path and the variants whose best value lies at an edge of the grid."""
    from reports.records import environment

    direction = 1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else -1.0
    best: dict[str, optuna.trial.FrozenTrial] = {}
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    for trial in complete:
        variant = trial.params.get("variant", sweep.variants[0])
        if variant not in best or direction * trial.value > direction * best[variant].value:
            best[variant] = trial
    settings = {v: {**sweep.overrides, **{k: x for k, x in t.params.items() if k != "variant"}}
                for v, t in sorted(best.items())}
    env = environment()
    commit = _trial_commits(out) or env["env_git_commit"][:12]
    provenance = {"study": sweep.study, "trials": len(complete), "metric": get_task(sweep.task).monitor,
                  **({"train_seeds": list(sweep.seeds)} if len(sweep.seeds) > 1 else {}),
                  "date": env["env_timestamp"][:10], "commit": commit,
                  "command": f"attnbench sweep {sweep.source or '<sweep file>'}"}
    document = {
        "suite": {"preset": sweep.preset, "seeds": list(sweep.export_seeds),
                  "tasks": {sweep.task: {"variants": sorted(best), "data": sweep.data,
                                         "variant_overrides": settings}}},
        "best": {v: {"value": t.value, "trial": t.number, "params": settings[v]}
                 for v, t in sorted(best.items())},
        "provenance": provenance,
    }
    lrs = {v: s["optim.lr"] for v, s in settings.items() if "optim.lr" in s}
    if lrs:
        document["preset_optim"] = {"variant_lr": lrs, "lr_provenance": provenance}
    edges = grid_edges(sweep.params, settings)
    if edges:
        document["at_grid_edge"] = edges
    path = out / f"per_variant_{sweep.study}.yaml"
    path.write_text(yaml.dump(document, Dumper=_PlainDumper, sort_keys=False))
    return str(path), edges


def grid_edges(params: dict, settings: dict[str, dict]) -> dict[str, list[str]]:
    """Variant -> the searched numeric choices (of three or more) where its best value is the lowest or
    the highest of the grid: its optimum may lie outside what was searched."""
    edges: dict[str, list[str]] = {}
    for name, space in params.items():
        choices = space.get("choices") or []
        if space.get("type") != "categorical" or len(choices) < 3 or \
                not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in choices):
            continue
        low, high = min(choices), max(choices)
        for variant, chosen in settings.items():
            if name in chosen and chosen[name] in (low, high):
                side = "lowest" if chosen[name] == low else "highest"
                edges.setdefault(variant, []).append(
                    f"{name}={chosen[name]:g} is the {side} of {sorted(choices)}")
    return edges
