"""``performer`` (FAVOR+) against a dense float64 re-statement with the same random features,
and its approximation of softmax attention as the number of features grows."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch

from attention import NotSupportedError, _kernelized
from attention.performer import PerformerAttention
from attention.reference import ReferenceAttention

from ._kit import (
    HALF_PRECISION,
    UNSUPPORTED_REQUESTS,
    assert_half_matches_float32,
    grads,
    padding,
    shapes_formed,
)
from ._kit import inputs as _inputs

F64 = torch.float64
D = 6
inputs = partial(_inputs, d=D, dv=5)  # performer's tests: head dim D, value dim 5


def dense_favor(q, k, v, w, keep=None, causal=False, scale=None):
    """FAVOR+ written densely in float64 without stabilisation: A = phi(Q) phi(K)^T, masked, normalised."""
    w = w.to(F64)
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale

    def phi(x):
        x = x * math.sqrt(scale)
        return torch.exp(x @ w.T - (x * x).sum(-1, keepdim=True) / 2) / math.sqrt(w.shape[0])

    lq, lk = q.shape[-2], k.shape[-2]
    allowed = torch.ones(lq, lk, dtype=torch.bool)
    if causal:
        allowed = torch.tensor([[j <= i for j in range(lk)] for i in range(lq)])
    if keep is not None:
        allowed = allowed & keep
    a = (phi(q) @ phi(k).transpose(-2, -1)) * allowed  # (B, H, Lq, Lk)
    den = a.sum(dim=-1, keepdim=True)
    return torch.where(den > 0, (a @ v) / torch.where(den > 0, den, 1.0), 0.0)


@pytest.mark.parametrize("chunk", [4, 128])
@pytest.mark.parametrize("lq,lk", [(13, 13), (7, 11), (11, 7)])
@pytest.mark.parametrize("causal,with_mask", [(False, False), (False, True), (True, False), (True, True)])
@pytest.mark.parametrize("quadratic", [False, True])  # both associations of the non-causal sums
def test_matches_dense_restatement(lq, lk, causal, with_mask, chunk, quadratic, monkeypatch):
    monkeypatch.setattr(_kernelized, "quadratic_is_cheaper", lambda *shape: quadratic)
    q, k, v = inputs(lq, lk)
    mask = padding(2, lk, [0, 3, lk - 1]) if with_mask else None
    attn = PerformerAttention(head_dim=D, num_features=20, seed=3, chunk_size=chunk)
    out = attn(q, k, v, mask, is_causal=causal, scale=0.3).output
    want = dense_favor(q, k, v, attn.features, mask, causal, scale=0.3)
    torch.testing.assert_close(out, want, rtol=1e-10, atol=1e-10)
    for got, exp in zip(grads(out, (q, k, v)), grads(want, (q, k, v)), strict=True):
        assert torch.isfinite(got).all()
        torch.testing.assert_close(got, exp, rtol=1e-9, atol=1e-10)


def test_error_to_softmax_shrinks_with_more_features():
    # Moderate logits: the estimator's variance grows like exp(|q + k|^2 * scale), so with unit
    # inputs convergence is slow; at half magnitude m = 16, 128, 1024 give about 0.06, 0.025, 0.008.
    q, k, v = inputs(16, 16, b=1, d=8, magnitude=0.5)
    want = ReferenceAttention()(q, k, v).output
    errors = []
    for m in (16, 128, 1024):
        per_seed = [(PerformerAttention(head_dim=8, num_features=m, seed=s)(q, k, v).output - want)
                    .abs().mean().item() for s in range(4)]
        errors.append(sum(per_seed) / len(per_seed))
    assert errors[0] > errors[1] > errors[2], errors
    assert errors[2] < 0.015 and errors[2] < errors[0] / 4, errors


def test_stabilised_where_plain_float32_would_underflow():
    # |x|^2 / 2 ~ 90 here: unshifted float32 features of many rows underflow to 0.
    q, k, v = inputs(9, 9, d=8, magnitude=8.0)
    attn = PerformerAttention(head_dim=8, num_features=64, seed=1, chunk_size=4)
    want = dense_favor(q, k, v, attn.features)
    for causal in (False, True):
        out = attn(q.float(), k.float(), v.float(), is_causal=causal).output
        want = dense_favor(q, k, v, attn.features, causal=causal)
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out.double(), want, rtol=1e-3, atol=1e-3)


def test_features_are_orthogonal_blocks_with_chi_norms():
    attn = PerformerAttention(head_dim=D, num_features=15)
    w = attn.features.double()
    assert w.shape == (15, D) and attn.features.dtype == torch.float32
    for block in (w[:D], w[D:2 * D], w[2 * D:]):
        unit = block / block.norm(dim=-1, keepdim=True)
        torch.testing.assert_close(unit @ unit.T, torch.eye(len(block), dtype=F64), atol=1e-6, rtol=0)
    assert w.norm(dim=-1).std() > 0.1  # norms are drawn, not all sqrt(D)
    cross = w[:D] @ w[D:2 * D].T  # blocks are drawn independently, so not orthogonal to each other
    assert cross.abs().max() > 1e-3


def test_seed_and_redraw():
    a, b = PerformerAttention(head_dim=D, seed=5), PerformerAttention(head_dim=D, seed=5)
    assert torch.equal(a.features, b.features)
    q, k, v = inputs(6, 6, dtype=torch.float32)
    before = a(q, k, v).output
    a.redraw(6)
    assert not torch.equal(a.features, b.features) and not torch.allclose(a(q, k, v).output, before)
    a.redraw(5)
    assert torch.equal(a.features, b.features)
    assert "features" in a.state_dict()


@pytest.mark.parametrize("causal", [False, True])
def test_masked_keys_do_not_matter(causal):
    q, k, v = inputs(10, 10)
    mask = padding(2, 10, [1, 4, 8])
    attn = PerformerAttention(head_dim=D, num_features=16, chunk_size=3)
    out = attn(q, k, v, mask, is_causal=causal).output
    k2, v2 = k.detach().clone(), v.detach().clone()
    k2[1, :, [1, 4, 8]] = 50.0  # would dominate the key shift if masked keys entered it
    v2[1, :, [1, 4, 8]] = float("nan")
    torch.testing.assert_close(attn(q, k2, v2, mask, is_causal=causal).output, out)


def test_rows_without_keys_are_zero_with_finite_gradients():
    q, k, v = inputs(8, 8)
    mask = padding(2, 8, [0, 1, 2])  # batch 1, causal: queries 0..2 see no key
    mask[0] = False  # batch 0: every key masked
    out = PerformerAttention(head_dim=D, num_features=16, chunk_size=3)(q, k, v, mask, is_causal=True).output
    assert torch.isfinite(out).all()
    assert (out[0] == 0).all() and (out[1, :, :3] == 0).all() and (out[1, :, 3:] != 0).any()
    assert all(torch.isfinite(g).all() for g in grads(out, (q, k, v)))


@pytest.mark.parametrize("causal", [False, True])
def test_never_forms_lq_by_lk(causal):
    q, k, v = inputs(37, 41, dtype=torch.float32)
    attn = PerformerAttention(head_dim=D, num_features=24, chunk_size=16)
    shapes = shapes_formed(attn, q, k, v, is_causal=causal)
    assert shapes and not [s for s in shapes if 37 in s and 41 in s]


@pytest.mark.parametrize("dtype,tol", HALF_PRECISION)
@pytest.mark.parametrize("causal", [False, True])
def test_half_precision(dtype, tol, causal):
    q, k, v = inputs(12, 12, dtype=torch.float32)
    attn = PerformerAttention(head_dim=D, num_features=32, chunk_size=5)
    assert_half_matches_float32(attn, q, k, v, dtype, tol, is_causal=causal)


@pytest.mark.parametrize("request_kwargs", UNSUPPORTED_REQUESTS)
def test_refuses_unsupported(request_kwargs):
    q, k, v = inputs(6, 6, dtype=torch.float32)
    with pytest.raises(NotSupportedError):
        PerformerAttention(head_dim=D)(q, k, v, **request_kwargs)


def test_refuses_other_head_dim():
    q, k, v = inputs(6, 6, d=D + 2, dtype=torch.float32)
    with pytest.raises(NotSupportedError, match="head_dim"):
        PerformerAttention(head_dim=D)(q, k, v)


@pytest.mark.parametrize("kwargs,arg", [
    ({"head_dim": 0}, "head_dim"), ({"head_dim": 4.0}, "head_dim"),
    ({"head_dim": 4, "num_features": 0}, "num_features"), ({"head_dim": 4, "seed": -1}, "seed"),
    ({"head_dim": 4, "seed": "a"}, "seed"), ({"head_dim": 4, "chunk_size": 0}, "chunk_size"),
])
def test_bad_kwargs(kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        PerformerAttention(**kwargs)
