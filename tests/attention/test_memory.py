"""memory: learned slots attended with the keys; zero slots is the oracle (tested in the contract)."""

from __future__ import annotations

import pytest
import torch

import attention

from ._cases import make_qkv, oracle


def test_slots_act_as_extra_keys_and_values() -> None:
    torch.manual_seed(0)
    q, k, v = make_qkv((2, 2, 5, 7, 4, 3), torch.float64)
    mem = attention.build("memory", head_dim=4, num_heads=2, num_slots=3, value_dim=3).double()
    keep = torch.ones(2, 1, 1, 7, dtype=torch.bool)
    keep[1] = False  # the second sequence is all padding: only the slots remain
    out, weights = mem(q, k, v, keep, need_weights=True)
    mk = mem.memory_keys.expand(2, 2, 3, 4)
    mv = mem.memory_values.expand(2, 2, 3, 3)
    full_keep = torch.cat([torch.ones(2, 1, 1, 3, dtype=torch.bool), keep], -1)
    _, expected, expected_w = oracle(q, torch.cat([mk, k], 2), torch.cat([mv, v], 2), full_keep, False)
    torch.testing.assert_close(out, expected.detach())
    torch.testing.assert_close(weights, expected_w[..., 3:].detach())
    assert torch.isfinite(out[1]).all() and out[1].abs().sum() > 0  # slots answer padded rows
    assert all(g.abs().sum() > 0 for g in torch.autograd.grad(out.sum(), list(mem.parameters())))


def test_head_count_and_value_dim_are_checked() -> None:
    mem = attention.build("memory", head_dim=4, num_heads=2, num_slots=3)
    q = torch.randn(1, 3, 5, 4)
    with pytest.raises(attention.NotSupportedError, match="built for 2"):
        mem(q, q, q)
    q = torch.randn(1, 2, 5, 4)
    with pytest.raises(ValueError, match="value_dim"):
        mem(q, q, torch.randn(1, 2, 5, 6))
    with pytest.raises(ValueError, match="num_slots"):
        attention.build("memory", head_dim=4, num_heads=2, num_slots=-1)
