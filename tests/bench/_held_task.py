"""The toy task with a gate, so a test can interrupt a suite in the middle of a run by construction.

When ``$ATTNBENCH_TEST_HOLD`` names a folder, every run of seed 1 stops at its first training
step of epoch 1 (after epoch 0's checkpoint was written), writes ``held-<variant>-s1`` there and
waits while ``hold`` exists in that folder. Without the variable the task is the plain toy task.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.bench._toy_task import ToyData, ToyModel, ToyTask

HOLD_ENV = "ATTNBENCH_TEST_HOLD"
HOLD_SEED = 1


class HeldModel(ToyModel):
    def __init__(self, variant: str, lr: float, held: bool) -> None:
        super().__init__(variant, lr)
        self.variant, self.held = variant, held

    def training_step(self, batch, batch_idx):
        folder = os.environ.get(HOLD_ENV)
        if self.held and folder and self.current_epoch >= 1:
            (Path(folder) / f"held-{self.variant}-s{HOLD_SEED}").write_text(str(os.getpid()))
            while (Path(folder) / "hold").exists():
                time.sleep(0.05)
        return super().training_step(batch, batch_idx)


class HeldTask(ToyTask):
    name = "held"

    def build(self, config, variant, data, seed):
        model = HeldModel(variant, held=seed == HOLD_SEED, **config["optim"])
        return ToyData(seed=seed, **config["data"]), model


TASK = HeldTask()
