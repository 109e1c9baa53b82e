"""log_train_step: the same CSV log as plain ``self.log``, with ``self.log`` called only on written steps."""

from __future__ import annotations

import csv

import lightning as L
import torch
from lightning.pytorch.loggers import CSVLogger
from torch import nn

from tasks._base import log_train_step


class Tiny(L.LightningModule):
    def __init__(self, gated: bool) -> None:
        super().__init__()
        self.layer = nn.Linear(3, 1)
        self.gated = gated
        self.calls = 0

    def log(self, *args, **kwargs) -> None:
        self.calls += 1
        super().log(*args, **kwargs)

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch).pow(2).mean()
        if self.gated:
            log_train_step(self, {"train/loss": loss}, batch_size=len(batch))
        else:
            self.log("train/loss", loss, batch_size=len(batch))
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _train(tmp_path, gated: bool) -> tuple[list[dict], int]:
    torch.manual_seed(0)
    module = Tiny(gated)
    data = torch.utils.data.DataLoader(torch.randn(28, 3), batch_size=4)  # 7 steps per epoch
    trainer = L.Trainer(max_epochs=2, logger=CSVLogger(tmp_path / str(gated)), log_every_n_steps=3,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, train_dataloaders=data)
    with open(tmp_path / str(gated) / "lightning_logs" / "version_0" / "metrics.csv") as handle:
        return list(csv.DictReader(handle)), module.calls


def test_gated_logging_writes_the_same_log_with_fewer_calls(tmp_path) -> None:
    plain, plain_calls = _train(tmp_path, gated=False)
    gated, gated_calls = _train(tmp_path, gated=True)
    assert gated == plain and [int(row["step"]) for row in gated] == [2, 5, 8, 11]
    assert plain_calls == 14 and gated_calls == 4


def test_outside_a_fit_every_call_logs() -> None:
    module = Tiny(gated=True)
    logged = []
    module.log = lambda name, value, **kwargs: logged.append(name)
    log_train_step(module, {"a": 1.0, "b": 2.0})
    assert logged == ["a", "b"]
