"""Lightning's cost per training step against a plain PyTorch loop doing the same work.

    python -m bench.overhead graph --steps 200 [--variant gat] [--config quick] [--threads 1]

Both loops run the task's own ``training_step`` on the same batches, served by the same kind of
``DataLoader``, with the optimiser from ``configure_optimizers``, after a warm-up. The plain loop
calls ``zero_grad``, ``backward`` and ``step`` itself and skips ``self.log`` (logging is part of
what Lightning adds). Lightning runs as the runner (``bench/train.py``) trains, step for step:
``max_steps``, a CSV logger written every ``LOG_EVERY_N_STEPS`` steps, no progress bar;
validation and checkpointing, which the runner adds once per epoch, are left out. The two are
measured alternately, ``--repeats`` times each, and the medians compared.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time

import lightning as L
import torch
from lightning.pytorch.loggers import CSVLogger

from tasks import get_task

from .train import LOG_EVERY_N_STEPS


def _batches(datamodule: L.LightningDataModule, steps: int) -> list:
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    return list(itertools.islice(itertools.cycle(loader), steps))


def _loader(batches: list) -> torch.utils.data.DataLoader:
    """The prepared batches, served alike to both loops (as a task's loader would serve them)."""
    return torch.utils.data.DataLoader(batches, batch_size=None, shuffle=False)


def plain_loop(module: L.LightningModule, batches: list) -> float:
    optimizer = module.configure_optimizers()
    optimizer = optimizer[0] if isinstance(optimizer, (list, tuple)) else optimizer
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    module.train()
    module.log = lambda *args, **kwargs: None  # metric logging is part of what Lightning adds
    try:
        start = time.perf_counter()
        for index, batch in enumerate(_loader(batches)):
            optimizer.zero_grad(set_to_none=True)
            loss = module.training_step(batch, index)
            loss = loss["loss"] if isinstance(loss, dict) else loss
            loss.backward()
            optimizer.step()
        return (time.perf_counter() - start) / len(batches)
    finally:
        del module.log


class _StepClock(L.Callback):
    """From the first training batch's start to the last one's end (the Trainer's set-up excluded)."""

    def __init__(self) -> None:
        self.first: float | None = None
        self.last = 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.first = time.perf_counter() if self.first is None else self.first

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.last = time.perf_counter()


def lightning_loop(module: L.LightningModule, batches: list) -> float:
    clock = _StepClock()
    with tempfile.TemporaryDirectory() as logs:
        trainer = L.Trainer(max_steps=len(batches), limit_val_batches=0, logger=CSVLogger(logs),
                            log_every_n_steps=LOG_EVERY_N_STEPS, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
                            devices=1, num_sanity_val_steps=0, callbacks=[clock])
        trainer.fit(module, train_dataloaders=_loader(batches))
    # The clock spans steps 1..N from the first step's start: N steps.
    return (clock.last - clock.first) / len(batches)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task")
    parser.add_argument("--variant", default="none")
    parser.add_argument("--config", default="quick")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    task = get_task(args.task)
    config = task.config(args.config)
    datamodule, module = task.build(config, args.variant, None, 0)
    batches = _batches(datamodule, args.steps)
    plain_loop(module, batches[: max(args.steps // 5, 1)])  # warm-up
    plain, light = [], []
    for _ in range(args.repeats):
        plain.append(plain_loop(module, batches))
        light.append(lightning_loop(module, batches))
    p, l_ = statistics.median(plain), statistics.median(light)
    print(f"{args.task}/{args.variant}: plain loop {p * 1e3:.2f} ms/step, Lightning {l_ * 1e3:.2f} ms/step, "
          f"overhead {100 * (l_ / p - 1):+.1f}% (medians of {args.repeats} x {args.steps} steps, "
          f"{args.threads} thread(s))")


if __name__ == "__main__":
    main()
