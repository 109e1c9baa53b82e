"""A tiny task for testing the runner: find the sign of one marked position in a sequence."""

from __future__ import annotations

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import attention
from tasks._base import Task


class ToyData(L.LightningDataModule):
    def __init__(self, n: int, length: int, batch_size: int, seed: int) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(n, length, 4, generator=gen)
        where = torch.randint(0, length, (n,), generator=gen)
        x[torch.arange(n), where, 3] = 5.0  # the marker
        y = (x[torch.arange(n), where, 0] > 0).long()
        self.splits = torch.utils.data.random_split(TensorDataset(x, y), [0.6, 0.2, 0.2], generator=gen)
        self.batch_size = batch_size

    def train_dataloader(self):
        return DataLoader(self.splits[0], batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.splits[1], batch_size=self.batch_size)

    def test_dataloader(self):
        return DataLoader(self.splits[2], batch_size=self.batch_size)


class ToyModel(L.LightningModule):
    def __init__(self, variant: str, lr: float) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.zeros(1, 1, 1, 4))
        self.attn = None if variant == "none" else attention.build(variant)
        self.head = nn.Linear(4, 2)
        self.lr = lr

    def forward(self, x):
        if self.attn is None:
            return self.head(x.mean(1))
        q = (self.query + x[:, None, :1, :] * 0).expand(x.shape[0], 1, 1, 4)
        pooled = self.attn(q, x[:, None], x[:, None]).output[:, 0, 0]
        return self.head(pooled)

    def samples_in(self, batch) -> int:
        return len(batch[1])

    def _step(self, batch, stage):
        logits = self(batch[0])
        loss = nn.functional.cross_entropy(logits, batch[1])
        self.log(f"{stage}/acc", (logits.argmax(-1) == batch[1]).float().mean(), prog_bar=True)
        self.log(f"{stage}/loss", loss)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


class ToyTask(Task):
    name = "toy"
    monitor = "val/acc"

    def variant_reasons(self, variant: str, config: dict | None = None) -> list[str]:
        if variant in self.baselines:
            return []
        if variant not in attention.REGISTRY:
            return [f"unknown variant {variant!r}"]
        if variant not in ("reference", "sdpa", "uniform"):
            return [f"the toy task only tests reference, sdpa and uniform, not {variant!r}"]
        return []

    def build(self, config, variant, data, seed):
        return ToyData(seed=seed, **config["data"]), ToyModel(variant, **config["optim"])


TASK = ToyTask()
