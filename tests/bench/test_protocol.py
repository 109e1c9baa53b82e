"""The protocol the runner applies and records (bench/protocol.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import attention
from bench.protocol import ReferenceCheck, resolve_lr


class Pool(nn.Module):
    def __init__(self, variant: str, **kwargs) -> None:
        super().__init__()
        self.attn = attention.build(variant, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, D) -> (B, L, D)
        return self.attn(x[:, None], x[:, None], x[:, None]).output[:, 0]


@pytest.mark.parametrize(("length", "equal"), [(9, True), (40, False)])
def test_a_window_that_covers_every_key_is_measured_equal_to_the_reference(length, equal) -> None:
    model = Pool("local", mode="sliding", window=16).eval()
    check = ReferenceCheck(model)
    with check.watching(), torch.no_grad():
        model(torch.randn(2, length, 8, generator=torch.Generator().manual_seed(0)))
        model(torch.randn(3, length, 8, generator=torch.Generator().manual_seed(1)))
    result = check.result()
    assert result["calls"] == 2 and result["equal"] is equal
    model(torch.randn(1, 5, 8))  # the hooks are gone once the check ends
    assert check.result()["calls"] == 2


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
