"""uniform: equal weights over allowed keys, i.e. the oracle with all-zero queries."""

from __future__ import annotations

import pytest
import torch

import attention

from ._cases import SHAPES, make_mask, make_qkv, oracle


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", ["none", "key_padding", "boolean", "causal", "causal+key_padding"])
def test_equals_oracle_with_zero_queries(kind: str, shape: tuple) -> None:
    q, k, v = make_qkv(shape, torch.float64)
    v.requires_grad_()
    mask, causal = make_mask(kind, shape, torch.float64)
    out, weights = attention.build("uniform")(q, k, v, mask, is_causal=causal, need_weights=True)
    (_, _, v64), out64, weights64 = oracle(torch.zeros_like(q), k, v, mask, causal)
    torch.testing.assert_close(out, out64.detach(), atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(weights, weights64.detach(), atol=1e-12, rtol=1e-10)
    g = torch.randn_like(out)
    torch.testing.assert_close(torch.autograd.grad(out, v, g)[0], torch.autograd.grad(out64, v64, g)[0])


def test_causal_running_mean_path_equals_masked_path() -> None:
    q, k, v = make_qkv((2, 2, 9, 5, 4, 3), torch.float64)
    fast = attention.build("uniform")(q, k, v, is_causal=True).output  # cumulative-sum path
    keep = torch.ones(9, 5, dtype=torch.bool).tril()
    masked = attention.build("uniform")(q, k, v, keep).output
    torch.testing.assert_close(fast, masked, atol=1e-12, rtol=1e-12)


def test_additive_mask_is_refused_not_ignored() -> None:
    q = torch.randn(1, 1, 3, 4)
    with pytest.raises(attention.NotSupportedError, match="additive"):
        attention.build("uniform")(q, q, q, torch.zeros(3, 3))
