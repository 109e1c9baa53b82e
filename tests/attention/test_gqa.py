"""Grouped-query and multi-query attention: the dense interface with fewer key/value heads than
query heads (``capabilities.gqa``), and ``MultiHeadAttention(num_kv_heads=...)`` over any variant."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

import attention
from attention import MultiHeadAttention, NotSupportedError

from ._cases import DENSE, MASK_KINDS, TOLERANCES, context_kwargs, make_mask

# (B, H, Hkv, Lq, Lk, D, Dv): grouped (2 query heads per key/value head), and multi-query
GQA_SHAPES = ((2, 4, 2, 6, 6, 8, 8), (1, 3, 1, 7, 5, 16, 8))


def _qkv(shape, dtype):
    b, h, hkv, lq, lk, d, dv = shape
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(b, h, lq, d, generator=gen, dtype=torch.float64)
    k = torch.randn(b, hkv, lk, d, generator=gen, dtype=torch.float64)
    v = torch.randn(b, hkv, lk, dv, generator=gen, dtype=torch.float64)
    return tuple(t.to(dtype).requires_grad_() for t in (q, k, v))


def _cases():
    for name, kind, shape, dtype in itertools.product(DENSE, MASK_KINDS, GQA_SHAPES,
                                                      (torch.float64, torch.float32)):
        marks = [] if "cpu" in attention.REGISTRY[name].capabilities.devices else [pytest.mark.cuda]
        yield pytest.param(name, kind, shape, dtype, marks=marks,
                           id=f"{name}-{kind}-H{shape[1]}kv{shape[2]}-{str(dtype)[6:]}")


@pytest.mark.parametrize(("name", "kind", "shape", "dtype"), list(_cases()))
def test_grouped_keys_match_repeated_heads_or_are_refused(name, kind, shape, dtype) -> None:
    b, h, hkv, lq, lk, d, dv = shape
    variant = attention.build(name, **context_kwargs(name, (b, h, lq, lk, d, dv))).to(dtype).eval()
    if "cpu" not in variant.capabilities.devices:
        pytest.skip(f"{name} has no CPU kernel")
    q, k, v = _qkv(shape, dtype)
    mask, causal = make_mask(kind, (b, h, lq, lk, d, dv), dtype)
    need_weights = variant.capabilities.weights
    reasons = variant.not_supported_reasons(q, k, mask, is_causal=causal, need_weights=need_weights)
    if not variant.capabilities.gqa:
        assert any(r.startswith(f"grouped-query request: {h} query heads over {hkv}") for r in reasons)
    if reasons:
        with pytest.raises(NotSupportedError) as err:
            variant(q, k, v, mask, is_causal=causal, need_weights=need_weights)
        assert err.value.reasons == reasons
        return
    out, weights = variant(q, k, v, mask, is_causal=causal, need_weights=need_weights)
    # the oracle: plain attention over each key/value head repeated for its group, in float64
    q64, k64, v64 = (t.detach().double().requires_grad_() for t in (q, k, v))
    mask64 = mask if mask is None or mask.dtype == torch.bool else mask.double()
    group = h // hkv
    out64, weights64 = attention.ReferenceAttention()(q64, k64.repeat_interleave(group, 1),
                                                      v64.repeat_interleave(group, 1), mask64,
                                                      is_causal=causal, need_weights=True)
    (atol, rtol), (gatol, grtol) = TOLERANCES[dtype]
    assert out.shape == (b, h, lq, dv)
    torch.testing.assert_close(out.double(), out64.detach(), atol=atol, rtol=rtol)
    if need_weights:
        torch.testing.assert_close(weights.double(), weights64.detach(), atol=atol, rtol=rtol)
    upstream = torch.randn(out64.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    grads = torch.autograd.grad(out, (q, k, v), upstream.to(dtype))
    grads64 = torch.autograd.grad(out64, (q64, k64, v64), upstream)
    for g, g64 in zip(grads, grads64, strict=True):  # a key/value head's gradient sums over its group
        torch.testing.assert_close(g.double(), g64, atol=gatol, rtol=grtol)


def test_key_heads_that_do_not_divide_the_query_heads_are_a_clear_error() -> None:
    q, k, v = torch.randn(1, 4, 3, 8), torch.randn(1, 3, 3, 8), torch.randn(1, 3, 3, 8)
    with pytest.raises(ValueError, match=r"key must have shape \(1, Hkv, Lk, 8\) with the 4 query heads"):
        attention.ReferenceAttention()(q, k, v)
    with pytest.raises(ValueError, match="num_heads=4 must be divisible by num_kv_heads=3"):
        MultiHeadAttention(16, 4, num_kv_heads=3)
    with pytest.raises(ValueError, match="num_kv_heads must be an integer >= 1, got 0"):
        MultiHeadAttention(16, 4, num_kv_heads=0)


def _expanded(gqa: MultiHeadAttention, variant: str) -> MultiHeadAttention:
    """A full multi-head module whose key/value projections repeat each head block of ``gqa``'s
    for its group: the function grouped-query attention computes, written out."""
    full = MultiHeadAttention(gqa.embed_dim, gqa.num_heads, variant=variant)
    group, dh = gqa.num_heads // gqa.num_kv_heads, gqa.head_dim
    with torch.no_grad():
        full.q_proj.load_state_dict(gqa.q_proj.state_dict())
        full.out_proj.load_state_dict(gqa.out_proj.state_dict())
        for small, big in ((gqa.k_proj, full.k_proj), (gqa.v_proj, full.v_proj)):
            big.weight.copy_(small.weight.view(gqa.num_kv_heads, dh, -1).repeat_interleave(group, 0)
                             .reshape_as(big.weight))
            big.bias.copy_(small.bias.view(gqa.num_kv_heads, dh).repeat_interleave(group, 0).reshape(-1))
    return full


@pytest.mark.parametrize("kv_heads", [2, 1])
@pytest.mark.parametrize("variant", ["reference", "sdpa", "linear", "local", "memory"])
def test_multihead_with_fewer_kv_heads_computes_grouped_query_attention(variant: str, kv_heads: int) -> None:
    torch.manual_seed(0)
    gqa = MultiHeadAttention(32, 4, variant=variant, num_kv_heads=kv_heads).double().eval()
    assert gqa.k_proj.out_features == gqa.v_proj.out_features == kv_heads * 8
    native = attention.REGISTRY[variant].capabilities.gqa
    assert gqa.kv_repeat == (1 if native else 4 // kv_heads)
    assert ("passed grouped to" if native else f"each repeated {4 // kv_heads}x before") in repr(gqa)
    full = _expanded(gqa, variant).double().eval()
    if variant == "memory":  # learned slots: give both modules the same
        full.attention.load_state_dict(gqa.attention.state_dict())
    x = torch.randn(2, 5, 32, dtype=torch.float64)
    padding = torch.zeros(2, 5, dtype=torch.bool)
    padding[1, -2:] = True
    for kwargs in ({}, {"is_causal": True}, {"key_padding_mask": padding}):
        out, _ = gqa(x, x, x, **kwargs)
        expected, _ = full(x, x, x, **kwargs)
        torch.testing.assert_close(out, expected, atol=1e-10, rtol=1e-8)


def test_from_torch_is_still_exact_with_one_kv_head_per_query_head() -> None:
    torch.manual_seed(1)
    mha = nn.MultiheadAttention(16, 4, batch_first=True).eval()
    ours = MultiHeadAttention.from_torch(mha, variant="reference").eval()
    assert ours.num_kv_heads == 4 and ours.kv_repeat == 1 and repr(ours).count("num_kv_heads") == 0
    x = torch.randn(2, 6, 16)
    torch.testing.assert_close(ours(x, x, x)[0], mha(x, x, x, need_weights=False)[0], atol=1e-6, rtol=1e-5)
