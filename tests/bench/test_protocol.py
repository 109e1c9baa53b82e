"""The protocol the runner applies and records (bench/protocol.py)."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import attention
from bench.protocol import ReferenceCheck, resolve_lr
from tasks._base import TaskModule


class Pool(nn.Module):
    def __init__(self, variant: str, **kwargs) -> None:
        super().__init__()
        self.attn = attention.build(variant, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, D) -> (B, L, D)
        return self.attn(x[:, None], x[:, None], x[:, None]).output[:, 0]


@pytest.mark.parametrize(("length", "equal", "compared"), [(9, True, 2), (40, False, 1)])
def test_a_window_that_covers_every_key_is_measured_equal_to_the_reference(length, equal, compared) -> None:
    model = Pool("local", mode="sliding", window=16).eval()
    check = ReferenceCheck(model)
    with check.watching(), torch.no_grad():
        model(torch.randn(2, length, 8, generator=torch.Generator().manual_seed(0)))
        model(torch.randn(3, length, 8, generator=torch.Generator().manual_seed(1)))
    result = check.result()
    # a mismatch settles it: later calls are not compared (they would double the test pass's cost)
    assert result["calls"] == compared and result["equal"] is equal
    model(torch.randn(1, 5, 8))  # the hooks are gone once the check ends
    assert check.result()["calls"] == compared


def test_exact_variants_are_not_checked() -> None:
    assert ReferenceCheck(Pool("sdpa")).result() is None


def test_learning_rate_per_variant_and_its_source() -> None:
    config = {"optim": {"lr": 0.01, "variant_lr": {"local": 0.003},
                        "lr_provenance": {"study": "s", "trials": 12}}, "trainer": {"max_epochs": 4}}
    _, protocol = resolve_lr({**config, "optim": dict(config["optim"])}, "local", {})
    assert protocol["lr"] == 0.003 and protocol["lr_source"] == "sweep study=s, trials=12"
    _, protocol = resolve_lr({**config, "optim": dict(config["optim"])}, "reference", {})
    assert protocol["lr"] == 0.01 and protocol["lr_source"] == "preset optim.lr"
    cfg = {**config, "optim": {**config["optim"], "lr": 0.5}}
    _, protocol = resolve_lr(cfg, "local", {"optim.lr": 0.5})
    assert protocol["lr"] == 0.5 and protocol["lr_source"].startswith("override")
    with pytest.raises(ValueError, match="optim.variant_lr must map"):
        resolve_lr({"optim": {"lr": 1.0, "variant_lr": [1]}, "trainer": {}}, "local", {})


class _Tiny(TaskModule):
    size_key = "x"

    def __init__(self) -> None:
        super().__init__(lr=0.1, weight_decay=0.0)
        self.layer = nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def evaluate(self, batch, stage) -> None:
        pass


@pytest.mark.parametrize(("schedule", "final"), [("constant", 0.1), ("cosine", 0.0)])
def test_the_schedule_ends_where_it_says(schedule, final, tmp_path) -> None:
    module = _Tiny()
    module.use_schedule(schedule)
    trainer = L.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(module, DataLoader(TensorDataset(torch.randn(12, 2)), batch_size=4))
    assert trainer.global_step == 6
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(final, abs=1e-9)
    with pytest.raises(ValueError, match="optim.schedule must be one of"):
        module.use_schedule("linear")
