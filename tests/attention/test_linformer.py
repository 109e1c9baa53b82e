"""``linformer`` against the float64 oracle at its limit case and a float64 re-statement otherwise."""

from __future__ import annotations

import pytest
import torch

from attention import NotSupportedError
from attention.linformer import LinformerAttention
from attention.reference import ReferenceAttention

from ._kit import HALF_PRECISION, assert_half_matches_float32, grads, inputs, padding, shapes_formed


def dense_linformer(q, k, v, e, f, keep=None, scale=None):
    """Wang et al. eq. (7): softmax(Q (E K)^T * scale) (F V), masked keys/values zeroed first."""
    lk = k.shape[-2]
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    if keep is not None:
        k, v = k * keep.transpose(-2, -1), v * keep.transpose(-2, -1)  # keep (B, 1, 1, Lk) -> (B, 1, Lk, 1)
    k_low, v_low = e[:, :lk] @ k, f[:, :lk] @ v  # (B, H, rank, D)
    return torch.softmax(q @ k_low.transpose(-2, -1) * scale, dim=-1) @ v_low


@pytest.mark.parametrize("lq", [11, 4, 17])
def test_limit_case_is_softmax_attention(lq):
    kwargs = LinformerAttention.limit_case.kwargs(lq, 11, 5)
    attn = LinformerAttention(**kwargs).double()
    q, k, v = inputs(lq, 11)
    out = attn(q, k, v).output
    want = ReferenceAttention()(q, k, v).output
    torch.testing.assert_close(out, want, rtol=1e-12, atol=1e-12)
    for got, exp in zip(grads(out, (q, k, v)), grads(want, (q, k, v)), strict=True):
        torch.testing.assert_close(got, exp, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("share_kv", [False, True])
@pytest.mark.parametrize("lq,lk", [(9, 9), (5, 13), (14, 6)])
@pytest.mark.parametrize("with_mask", [False, True])
def test_matches_dense_restatement(lq, lk, with_mask, share_kv):
    attn = LinformerAttention(max_len=15, rank=4, share_kv=share_kv).double()
    e = attn.proj_k
    f = attn.proj_k if share_kv else attn.proj_v
    q, k, v = inputs(lq, lk)
    mask = padding(2, lk, [0, 2, lk - 1]) if with_mask else None
    out = attn(q, k, v, mask, scale=0.7).output
    want = dense_linformer(q, k, v, e, f, mask, scale=0.7)
    torch.testing.assert_close(out, want, rtol=1e-12, atol=1e-12)
    params = list(attn.parameters())
    assert len(params) == (1 if share_kv else 2)
    for got, exp in zip(grads(out, (q, k, v, *params)), grads(want, (q, k, v, *params)), strict=True):
        assert torch.isfinite(got).all()
        torch.testing.assert_close(got, exp, rtol=1e-10, atol=1e-12)


def test_masked_keys_and_values_do_not_matter():
    attn = LinformerAttention(max_len=12, rank=3)
    q, k, v = inputs(7, 10, dtype=torch.float32)
    mask = padding(2, 10, [1, 4, 9])
    out = attn(q, k, v, mask).output
    k2, v2 = k.detach().clone(), v.detach().clone()
    k2[1, :, [1, 4, 9]] = float("inf")
    v2[1, :, [1, 4, 9]] = float("nan")
    torch.testing.assert_close(attn(q, k2, v2, mask).output, out)
    k2[0, :, 1] = 3.0  # an unmasked position does matter
    assert not torch.allclose(attn(q, k2, v2, mask).output, out)


def test_all_keys_masked_gives_zeros_with_finite_gradients():
    attn = LinformerAttention(max_len=8, rank=3)
    q, k, v = inputs(5, 8, dtype=torch.float32)
    mask = padding(2, 8, list(range(8)))
    out = attn(q, k, v, mask).output
    assert (out[1] == 0).all() and (out[0] != 0).any()
    assert all(torch.isfinite(g).all() for g in grads(out, (q, k, v, attn.proj_k, attn.proj_v)))


def test_dropout_acts_on_projected_weights():
    attn = LinformerAttention(max_len=8, rank=4)
    q, k, v = inputs(6, 8, dtype=torch.float32)
    torch.manual_seed(0)
    first = attn(q, k, v, dropout_p=0.5).output
    torch.manual_seed(0)
    assert torch.equal(attn(q, k, v, dropout_p=0.5).output, first)
    assert not torch.allclose(first, attn(q, k, v).output)


def test_identity_init_and_parameters():
    attn = LinformerAttention(max_len=6, rank=6, init="identity", share_kv=True)
    assert torch.equal(attn.proj_k.detach(), torch.eye(6)) and attn.proj_v is None
    xavier = LinformerAttention(max_len=40, rank=8)
    assert xavier.proj_k.shape == (8, 40) and not torch.equal(xavier.proj_k, xavier.proj_v)
    assert xavier.proj_k.abs().max() <= (6 / 48) ** 0.5


def test_never_forms_lq_by_lk():
    attn = LinformerAttention(max_len=45, rank=8)
    q, k, v = inputs(37, 41, dtype=torch.float32)
    shapes = shapes_formed(attn, q, k, v, params=(attn.proj_k,), dropout_p=0.1)
    assert shapes and not [s for s in shapes if 37 in s and 41 in s]


@pytest.mark.parametrize("dtype,tol", HALF_PRECISION)
def test_half_precision(dtype, tol):
    attn = LinformerAttention(max_len=16, rank=5)
    q, k, v = inputs(9, 13, dtype=torch.float32)
    assert_half_matches_float32(attn, q, k, v, dtype, tol)


@pytest.mark.parametrize("request_kwargs,reason", [
    ({"is_causal": True}, "causal"),
    ({"attn_mask": torch.ones(6, 6, dtype=torch.bool)}, "boolean"),
    ({"attn_mask": torch.zeros(2, 1, 6, 6)}, "additive"),
    ({"need_weights": True}, "need_weights"),
])
def test_refuses_unsupported(request_kwargs, reason):
    q, k, v = inputs(6, 6, dtype=torch.float32)
    with pytest.raises(NotSupportedError, match=reason):
        LinformerAttention(max_len=8, rank=4)(q, k, v, **request_kwargs)


def test_refuses_keys_longer_than_max_len():
    q, k, v = inputs(6, 9, dtype=torch.float32)
    with pytest.raises(NotSupportedError, match="max_len=8"):
        LinformerAttention(max_len=8, rank=4)(q, k, v)


@pytest.mark.parametrize("kwargs,arg", [
    ({"max_len": 0}, "max_len"), ({"max_len": 8, "rank": 0}, "rank"), ({"max_len": 8, "rank": 2.0}, "rank"),
    ({"max_len": 8, "init": "orthogonal"}, "init"),
    ({"max_len": 8, "rank": 4, "init": "identity"}, "identity"),
    ({"max_len": 8, "share_kv": 1}, "share_kv"),
])
def test_bad_kwargs(kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        LinformerAttention(**kwargs)
