"""The toy task whose training kills its process (as the kernel's OOM killer would): a sweep or
suite worker that dies must be reported, never ignored. Only ever run in a worker process."""

from __future__ import annotations

import os

from tests.bench._toy_task import ToyData, ToyModel, ToyTask


class CrashingModel(ToyModel):
    def training_step(self, batch, batch_idx):
        os._exit(3)


class CrashTask(ToyTask):
    name = "crash"

    def build(self, config, variant, data, seed):
        return ToyData(seed=seed, **config["data"]), CrashingModel(variant, **config["optim"])


TASK = CrashTask()
