"""luong: dot with scale=1 is the paper's form; general learns W_a (identity = the oracle)."""

from __future__ import annotations

import pytest
import torch

import attention

from ._cases import make_qkv, oracle


def test_dot_is_the_unscaled_product_when_scale_is_one() -> None:
    q, k, v = make_qkv((2, 2, 5, 7, 4, 3), torch.float64)
    out = attention.build("luong", score="dot")(q, k, v, scale=1.0).output
    expected = torch.softmax(q @ k.transpose(-2, -1), -1) @ v
    torch.testing.assert_close(out, expected)


def test_general_uses_its_weight() -> None:
    torch.manual_seed(0)
    q, k, v = make_qkv((2, 2, 5, 7, 4, 3), torch.float64)
    luong = attention.build("luong", score="general", head_dim=4).double()
    out = luong(q, k, v).output
    _, expected, _ = oracle(q @ luong.weight, k, v, None, False)
    torch.testing.assert_close(out, expected.detach())
    assert torch.autograd.grad(luong(q, k, v).output.sum(), luong.weight)[0].abs().sum() > 0


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="score"):
        attention.build("luong", score="bilinear")
    with pytest.raises(ValueError, match="head_dim is required"):
        attention.build("luong", score="general")
    with pytest.raises(ValueError, match="init"):
        attention.build("luong", score="general", head_dim=4, init="zeros")
