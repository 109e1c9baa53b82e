"""What one training step of a run's model costs at its real shapes: time and peak memory, measured.

A run's training time says little about the attention when other runs share the machine, and its
peak resident memory is mostly the interpreter and torch. So a suite may ask each run
(``measure_step``) to measure, after testing, one forward and backward pass of its model on a
training batch: the median and IQR of ``torch.utils.benchmark.Timer.blocked_autorange`` and the
peak memory of one pass (``bench.micro.memory.measure_peak``: on CPU the rise of the peak resident
set size during the pass, on CUDA of the allocator's peak). The gradients are dropped before every
pass, so each pass allocates them as a training step does; no optimiser step is taken, so the
tested weights stay as they were. The record says how many runs shared the machine meanwhile
(``concurrent_runs``): the times are the model's own only when it is 1.
"""

from __future__ import annotations

from collections.abc import Callable
from unittest import mock

import lightning as L
import torch
from torch.utils.benchmark import Timer

from .micro.memory import measure_peak

MIN_RUN_TIME = 0.5  # seconds of timed passes (at least one pass, however long)


def _to(batch: object, device: torch.device) -> object:
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {key: _to(value, device) for key, value in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(_to(value, device) for value in batch)
    return batch


def training_pass(module: L.LightningModule, batch: object) -> Callable[[], None]:
    """One forward and backward pass of ``module.training_step`` on ``batch``, gradients fresh (call it
    with the module's ``log`` and ``log_dict`` silenced: there is no loop to log to)."""
    def step() -> None:
        module.zero_grad(set_to_none=True)
        loss = module.training_step(batch, 0)
        loss = loss["loss"] if isinstance(loss, dict) else loss
        loss.backward()
    return step


def step_cost(module: L.LightningModule, datamodule: L.LightningDataModule, *, concurrent_runs: int,
              min_run_time: float = MIN_RUN_TIME) -> dict:
    """The ``step_cost`` entry of a run's record (module docstring)."""
    batch = _to(next(iter(datamodule.train_dataloader())), module.device)
    module.train()
    step = training_pass(module, batch)
    # outside a training loop there is nothing to log to: silenced once, so no timed pass pays for it
    try:
        with mock.patch.object(module, "log"), mock.patch.object(module, "log_dict"):
            step()  # warm-up: lazy initialisation and first-call allocations are not the step's cost
            peak, _, method = measure_peak(step, str(module.device))
            measured = Timer("step()", globals={"step": step}).blocked_autorange(min_run_time=min_run_time)
    finally:
        module.zero_grad(set_to_none=True)
        module.eval()
    return {"what": "forward + backward of one training batch (no optimiser step)",
            "batch": int(module.samples_in(batch)) if hasattr(module, "samples_in") else None,
            "time_median_s": float(measured.median), "time_iqr_s": float(measured.iqr),
            "runs": len(measured.times), "peak_mem_bytes": int(peak), "mem_method": method,
            "concurrent_runs": concurrent_runs, "threads": torch.get_num_threads()}
