"""``linear`` (elu + 1 linear attention) against a dense float64 re-statement of its equation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attention import NotSupportedError, _kernelized
from attention.linear import LinearAttention

from ._kit import (
    HALF_PRECISION,
    UNSUPPORTED_REQUESTS,
    assert_half_matches_float32,
    grads,
    inputs,
    padding,
    shapes_formed,
)


def dense_linear(q, k, v, keep=None, causal=False):
    """Katharopoulos et al. eq. (4)-(6) written densely: phi(Q) phi(K)^T masked, row-normalised."""
    lq, lk = q.shape[-2], k.shape[-2]
    sim = (F.elu(q) + 1) @ (F.elu(k) + 1).transpose(-2, -1)  # (B, H, Lq, Lk)
    allowed = torch.ones(lq, lk, dtype=torch.bool)
    if causal:
        allowed = torch.tensor([[j <= i for j in range(lk)] for i in range(lq)])
    if keep is not None:
        allowed = allowed & keep
    sim = sim * allowed
    den = sim.sum(dim=-1, keepdim=True)
    return torch.where(den > 0, (sim @ v) / torch.where(den > 0, den, 1.0), 0.0)


SHAPES = [(13, 13), (7, 11), (11, 7)]


@pytest.mark.parametrize("chunk", [4, 128])
@pytest.mark.parametrize("lq,lk", SHAPES)
@pytest.mark.parametrize("causal,with_mask", [(False, False), (False, True), (True, False), (True, True)])
@pytest.mark.parametrize("quadratic", [False, True])  # both associations of the non-causal sums
def test_matches_dense_restatement(lq, lk, causal, with_mask, chunk, quadratic, monkeypatch):
    monkeypatch.setattr(_kernelized, "quadratic_is_cheaper", lambda *shape: quadratic)
    q, k, v = inputs(lq, lk)
    mask = padding(2, lk, [0, 2, lk - 1]) if with_mask else None
    out = LinearAttention(chunk_size=chunk)(q, k, v, mask, is_causal=causal).output
    want = dense_linear(q, k, v, mask, causal)
    torch.testing.assert_close(out, want, rtol=1e-10, atol=1e-10)
    for got, exp in zip(grads(out, (q, k, v)), grads(want, (q, k, v)), strict=True):
        assert torch.isfinite(got).all()
        torch.testing.assert_close(got, exp, rtol=1e-9, atol=1e-10)


def test_scale_is_ignored():
    q, k, v = inputs(9, 9)
    attn = LinearAttention()
    base = attn(q, k, v).output
    for scale in (0.01, 1.0, 7.5):
        assert torch.equal(attn(q, k, v, scale=scale).output, base)


@pytest.mark.parametrize("causal", [False, True])
def test_masked_keys_do_not_matter(causal):
    q, k, v = inputs(10, 10)
    mask = padding(2, 10, [1, 4, 8])
    out = LinearAttention(chunk_size=3)(q, k, v, mask, is_causal=causal).output
    k2, v2 = k.detach().clone(), v.detach().clone()
    k2[1, :, [1, 4, 8]] = 1e4
    v2[1, :, [1, 4, 8]] = float("nan")
    torch.testing.assert_close(LinearAttention(chunk_size=3)(q, k2, v2, mask, is_causal=causal).output, out)


def test_rows_without_keys_are_zero_with_finite_gradients():
    q, k, v = inputs(8, 8)
    mask = padding(2, 8, [0, 1, 2])  # batch 1, causal: queries 0..2 see no key
    mask[0] = False  # batch 0: every key masked
    out = LinearAttention(chunk_size=3)(q, k, v, mask, is_causal=True).output
    assert torch.isfinite(out).all()
    assert (out[0] == 0).all() and (out[1, :, :3] == 0).all() and (out[1, :, 3:] != 0).any()
    assert all(torch.isfinite(g).all() for g in grads(out, (q, k, v)))


@pytest.mark.parametrize("causal", [False, True])
def test_never_forms_lq_by_lk(causal):
    q, k, v = inputs(37, 41, d=8, dv=8, dtype=torch.float32)
    shapes = shapes_formed(LinearAttention(chunk_size=16), q, k, v, is_causal=causal)
    assert shapes and not [s for s in shapes if 37 in s and 41 in s]


@pytest.mark.parametrize("dtype,tol", HALF_PRECISION)
@pytest.mark.parametrize("causal", [False, True])
def test_half_precision(dtype, tol, causal):
    q, k, v = inputs(12, 12, dtype=torch.float32)
    assert_half_matches_float32(LinearAttention(chunk_size=5), q, k, v, dtype, tol, is_causal=causal)


@pytest.mark.parametrize("request_kwargs", UNSUPPORTED_REQUESTS)
def test_refuses_unsupported(request_kwargs):
    q, k, v = inputs(6, 6, dtype=torch.float32)
    with pytest.raises(NotSupportedError):
        LinearAttention()(q, k, v, **request_kwargs)


@pytest.mark.parametrize("kwargs", [{"chunk_size": 0}, {"chunk_size": 2.5}, {"chunk_size": True}])
def test_bad_kwargs(kwargs):
    with pytest.raises(ValueError, match="chunk_size"):
        LinearAttention(**kwargs)


def test_association_order_follows_the_operation_count() -> None:
    assert _kernelized.quadratic_is_cheaper(1, 9, 256, 64)  # a decoder step over 9 regions
    assert not _kernelized.quadratic_is_cheaper(1024, 1024, 256, 64)
    assert not _kernelized.quadratic_is_cheaper(37, 41, 24, 5)
    shapes = [(lq, lk, m, dv) for lq in (1, 3, 50, 400) for lk in (1, 9, 200, 5000) for m in (1, 8, 256)
              for dv in (1, 16, 64)]
    chosen = [s for s in shapes if _kernelized.quadratic_is_cheaper(*s)]
    assert chosen and all(lq * lk < (lq + lk) * m for lq, lk, m, _ in chosen)  # A stays below the features
