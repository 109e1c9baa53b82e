"""Train one task with one variant and seed, test its best-validation checkpoint, return the record.

This is the shared runner behind ``attnbench train``, the suites and the sweeps: the
task supplies data and model; the runner seeds, trains with Lightning (CSV logs, best checkpoint
on the task's monitored metric, optional early stopping), tests the best checkpoint, and
measures parameters, training time, training samples/s and peak memory. Peak memory is
``torch.cuda.max_memory_allocated`` on CUDA. On CPU it is the process's peak resident set size
during the run (``cpu_run_peak_rss``: the kernel's high-water mark is reset when the run starts,
so earlier runs in the same process do not count, but the resident interpreter and imports do);
where the mark cannot be reset (not Linux) it is the process's lifetime peak
(``cpu_process_peak_rss``). ``mem_method`` says which.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import resource
import shutil
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

import attention
from reports.records import _git_commit, environment, new_run_id, write_json_atomic
from tasks import get_task
from tasks._base import apply_overrides

from .micro.memory import address_space_limit, out_of_memory
from .protocol import ReferenceCheck, ValidationHistory, convergence, items_entry, resolve_lr
from .step_cost import step_cost

# Lightning's own pytree helper trips a torch deprecation on every fit; nothing a user can act on.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)", category=Warning)
# Full-batch tasks (graph) have one step per epoch; Lightning warns that it is fewer than
# log_every_n_steps, yet it counts steps across epochs and logs every 10th all the same.
warnings.filterwarnings("ignore", message=r".*smaller than the logging interval", category=Warning)


_git_commit()  # the commit of the code as imported, which every record of this process names

# Training-step values reach the CSV log every this many steps (``trainer.log_every_n_steps`` in
# a config overrides it); validation metrics are logged every validation.
LOG_EVERY_N_STEPS = 10


class TrainingMeter(Callback):
    """Seconds spent in training batches and samples seen (``pl_module.samples_in(batch)``), and the
    epoch training started at (above 0 when it resumed from a checkpoint)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.samples = 0
        self.start_epoch = 0
        self._start = 0.0
        self._cuda = False

    def on_train_start(self, trainer, pl_module) -> None:
        self._cuda = pl_module.device.type == "cuda"  # asking torch.cuda every step costs a driver probe
        self.start_epoch = trainer.current_epoch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._cuda:
            torch.cuda.synchronize()
        self.seconds += time.perf_counter() - self._start
        self.samples += int(pl_module.samples_in(batch))


_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def _reset_cpu_peak() -> bool:
    """Reset this process's RSS high-water mark (Linux); False where that is not possible."""
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def _peak_memory(device: str, reset: bool) -> tuple[int, str]:
    if device.startswith("cuda"):
        return int(torch.cuda.max_memory_allocated()), "cuda_max_memory_allocated"
    if reset:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024, "cpu_run_peak_rss"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024), "cpu_process_peak_rss"


def _trainer(config: dict, task, run_dir: Path, meter: TrainingMeter, progress: bool,
             extra: list[Callback]) -> L.Trainer:
    settings = dict(config["trainer"])
    patience = settings.pop("patience", None)
    checkpoint = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best", monitor=task.monitor,
                                 mode=task.monitor_mode, save_top_k=1, save_last=True)
    callbacks = [checkpoint, meter, *extra]
    if patience:
        callbacks.append(EarlyStopping(monitor=task.monitor, mode=task.monitor_mode, patience=int(patience)))
    settings.setdefault("accelerator", "auto")
    settings.setdefault("devices", 1)
    settings.setdefault("log_every_n_steps", LOG_EVERY_N_STEPS)
    return L.Trainer(default_root_dir=run_dir, logger=CSVLogger(run_dir, name="logs"), callbacks=callbacks,
                     enable_progress_bar=progress, enable_model_summary=False, **settings)


def train_and_test(task_name: str, variant: str, *, data: str | None = None, seed: int = 0,
                   config: str = "quick", overrides: dict | None = None, out: str | None = None,
                   run_dir: str | Path | None = None, progress: bool = True,
                   run_id: str | None = None, callbacks: list[Callback] | None = None,
                   threads: int | None = None, concurrent_runs: int = 1, dataset: str | None = None,
                   data_hint: str | None = None, skip_equivalent: bool = False, measure_step: bool = False,
                   memory_budget: int | None = None) -> dict:
    """Run one (task, variant, seed); the returned record follows ``reports.records.TRAIN_FIELDS``.

    A ``run_dir`` that holds ``checkpoints/last.ckpt`` from an interrupted run resumes from it.
    ``threads`` sets torch's intra-op threads (small models on few cores often run fastest on one);
    the record's ``env_threads`` says what was used. ``concurrent_runs`` is recorded as given: how
    many runs shared the machine (the suite's ``jobs``), which bears on the speed figures.
    ``data`` is a path or ``package:<module>`` (see ``locate_data``); data that cannot be found, or
    none where ``data_hint`` says some is needed, is an ``unsupported`` record saying what to give.
    ``dataset`` labels the record (a suite entry's name: one task on several datasets).
    ``skip_equivalent`` (the suites): a variant that provably computes ``reference`` in this task's
    model (``Task.computes_reference``) is recorded with status ``equivalent`` and its reason, untrained.
    ``measure_step``: the record's ``step_cost`` gives the time and peak memory of one training pass of
    the tested model (``bench.step_cost``). ``memory_budget`` (bytes, Linux): the run may map at most
    that much more memory than the process holds when it starts; beyond it an allocation fails and
    the run is recorded with status ``oom`` instead of waking the kernel's out-of-memory killer.
    """
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    task = get_task(task_name)
    overrides = overrides or {}
    cfg, protocol = resolve_lr(apply_overrides(task.config(config), overrides, task.optional_keys), variant,
                               overrides)
    run_id = run_id or new_run_id(f"{task_name}-{variant}-s{seed}")
    record = {"run_id": run_id, "task": task_name, "variant": variant, "seed": seed, "config": cfg,
              "data": data or "embedded", "dataset": dataset, "concurrent_runs": concurrent_runs,
              "seq_len": task.sequence_length(cfg)}
    path, missing = locate_data(data, data_hint)
    reasons = [missing] if missing else task.variant_reasons(variant, cfg)  # may depend on the config
    if reasons:
        record.update(status="unsupported", reason="; ".join(reasons), **environment())
        return _finish(record, out)
    same = task.computes_reference(variant, cfg) if skip_equivalent else None
    if same:
        record.update(status="equivalent", reason=f"not trained: {same}", equals_reference=True,
                      **environment())
        return _finish(record, out)
    L.seed_everything(seed, workers=True, verbose=False)
    reset = _reset_cpu_peak()
    datamodule, module = task.build(cfg, variant, path, seed)
    if hasattr(module, "use_schedule"):
        module.use_schedule(protocol["schedule"])
    elif protocol["schedule"] != "constant":  # never record a schedule the module did not apply
        raise ValueError(f"optim.schedule={protocol['schedule']!r}: {task_name}'s module is not a TaskModule "
                         "and trains at a constant rate only")
    directory = Path(run_dir or Path("runs") / "train" / run_id)
    meter, history = TrainingMeter(), ValidationHistory(task.monitor)
    trainer = _trainer(cfg, task, directory, meter, progress, [history, *(callbacks or [])])
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    last = directory / "checkpoints" / "last.ckpt"
    discarded = _check_resumable(directory, {"task": task_name, "variant": variant, "seed": seed,
                                             "data": data or "embedded", "config": cfg})
    resumed = last.is_file()  # then time and samples count the resumed part only
    try:
        with address_space_limit(memory_budget) if memory_budget else nullcontext():
            trainer.fit(module, datamodule=datamodule, ckpt_path=str(last) if resumed else None)
            best = trainer.checkpoint_callback.best_model_path
            # testing restores callback states from the best checkpoint
            curve, curve_items = list(history.values), list(history.items)
            check = ReferenceCheck(module)
            with check.watching():
                tested = trainer.test(module, datamodule=datamodule, ckpt_path=best or None, verbose=False)
            examples = task.attention_examples(module, datamodule)  # the module holds the tested best weights
            cost = step_cost(module, datamodule, concurrent_runs=concurrent_runs) if measure_step else None
    except attention.NotSupportedError as err:  # a refusal the up-front checks could not foresee
        record.update(status="unsupported", reason=f"refused while running: {'; '.join(err.reasons)}",
                      **environment(str(module.device)))
        return _finish(record, out)
    except Exception as err:
        if not out_of_memory(err):
            raise
        budget = f" (budget {memory_budget / 2**30:.3g} GiB)" if memory_budget else ""
        record.update(status="oom", reason=f"out of memory{budget}: {str(err).splitlines()[0][:300]}",
                      epochs=trainer.current_epoch, **environment(str(module.device)))
        return _finish(record, out)
    peak, method = _peak_memory(str(module.device), reset)
    attention_file = write_json_atomic(directory / "attention.json", examples) if examples else None
    metrics = {k: float(v) for k, v in (tested[0] if tested else {}).items()}
    headline = "test/" + task.monitor.split("/", 1)[-1]
    equivalence = check.result()
    protocol.update(train_steps=trainer.global_step, selection=f"best {task.monitor} checkpoint")
    record.update(
        status="ok", reason="", metrics=metrics, protocol=protocol,
        val_history=curve, convergence=convergence(curve, task.monitor_mode, curve_items),
        equals_reference=None if equivalence is None else equivalence["equal"], reference_check=equivalence,
        diagnosis=None if data else task.diagnoses.get(variant), learning_baseline=task.learning_baseline,
        test_items=items_entry(module.test_items() if hasattr(module, "test_items") else None, headline,
                               metrics),
        params=sum(p.numel() for p in module.parameters()), train_time_s=meter.seconds,
        samples_per_s=meter.samples / meter.seconds if meter.seconds else None,
        peak_mem_bytes=peak, mem_method=method, best_checkpoint=best, monitor=task.monitor,
        best_val=_score(trainer.checkpoint_callback.best_model_score),
        epochs=trainer.current_epoch, resumed_from_epoch=meter.start_epoch if resumed else None,
        discarded_checkpoint=discarded,
        attention_file=str(attention_file) if attention_file else None, step_cost=cost,
        **environment(str(module.device)),
    )
    return _finish(record, out)


# How to install the Python packages that ship datasets (``data: package:<module>``).
DATA_PACKAGES = {"easy_vqa": "pip install -e '.[easy-vqa]' (the easy-vqa package: 5,000 images, "
                             "48,000 questions)"}


def locate_data(data: str | None, hint: str | None = None) -> tuple[str | None, str | None]:
    """(the path to hand the task, None) or (None, why there is none). ``data`` is None (embedded
    data, unless ``hint`` says what real data is needed), a path, or ``package:<module>``: the
    ``data/`` folder of an installed package."""
    if data is None:
        return None, f"no data given: {hint}" if hint else None
    if data.startswith("package:"):
        module = data.removeprefix("package:")
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.origin:
            return None, (f"data {data}: the {module} package is not installed; install it with "
                          f"{DATA_PACKAGES.get(module, f'pip install {module}')}")
        folder = Path(spec.origin).parent / "data"
        if not folder.is_dir():
            return None, f"data {data}: the {module} package has no data/ folder ({folder})"
        return str(folder), None
    if not Path(data).exists():
        return None, f"data path {data} does not exist" + (f" ({hint})" if hint else "")
    return data, None


RUN_SPEC = "run_spec.json"


def _check_resumable(directory: Path, spec: dict) -> str | None:
    """Make ``directory`` safe to resume: write the run's spec (task, variant, seed, data, resolved
    config) beside its checkpoints, and when a ``checkpoints/`` folder left there was written for
    another spec (a preset edited since, other ``--set`` values) or for an unknown one (no spec
    file), set it aside so the run starts afresh. Returns why it was discarded (None: nothing was),
    and says so on stderr: resuming another configuration's weights under this run's name would be a
    silent substitution. The old folder is moved to ``checkpoints.discarded/``."""
    spec = json.loads(json.dumps(spec, sort_keys=True, default=str))  # as it reads back from disk
    spec_file, checkpoints = directory / RUN_SPEC, directory / "checkpoints"
    reason = None
    if checkpoints.is_dir() and any(checkpoints.iterdir()):
        try:
            old = json.loads(spec_file.read_text())
        except (OSError, ValueError):
            old = None
        if old is None:
            reason = f"{checkpoints} has no {RUN_SPEC} saying what it was trained with"
        elif old != spec:
            changed = sorted(differences(old, spec))
            shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
            reason = f"{checkpoints} was trained with other settings ({shown})"
        if reason:  # kept aside, not deleted: they are another run's results
            aside = directory / "checkpoints.discarded"
            shutil.rmtree(aside, ignore_errors=True)
            checkpoints.rename(aside)
            print(f"attnbench: not resuming: {reason}; starting afresh (the old checkpoints are in {aside})",
                  file=sys.stderr)
    write_json_atomic(spec_file, spec)
    return reason


def differences(old, new, prefix: str = "") -> Iterator[str]:
    """Dotted keys whose values differ between two nested dicts (a changed leaf or a key one lacks)."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in old.keys() | new.keys():
            yield from differences(old.get(key), new.get(key), f"{prefix}{key}.")
    elif old != new:
        yield prefix.rstrip(".") or "(value)"


def _score(value) -> float | None:
    return None if value is None else float(value)


def _finish(record: dict, out: str | None) -> dict:
    if out:
        write_json_atomic(out, record)
    return record


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Lightning's per-run info lines (accelerator, tips, checkpoint restores) would bury a suite's or a
    sweep's own output; its warnings and errors still show. Every run's metrics are in its CSV log."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
