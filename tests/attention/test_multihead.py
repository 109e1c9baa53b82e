"""MultiHeadAttention reproduces torch.nn.MultiheadAttention and runs any dense variant."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import attention
from attention import MultiHeadAttention

from ._cases import DENSE


def _inputs(batch_first: bool, kdim: int = 16, vdim: int = 16):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 16, generator=gen, dtype=torch.float64)
    key = torch.randn(3, 7, kdim, generator=gen, dtype=torch.float64)
    value = torch.randn(3, 7, vdim, generator=gen, dtype=torch.float64)
    kpm = torch.zeros(3, 7, dtype=torch.bool)
    kpm[0, 4:] = True
    attn_mask = torch.rand(5, 7, generator=gen) > 0.8
    if not batch_first:
        x, key, value = (t.transpose(0, 1) for t in (x, key, value))
    return x, key, value, kpm, attn_mask


@pytest.mark.parametrize("variant", ["reference", "sdpa"])
@pytest.mark.parametrize(("batch_first", "kdim", "vdim", "bias"),
                         [(True, 16, 16, True), (False, 16, 16, True), (True, 12, 10, False)])
@pytest.mark.parametrize("float_masks", [False, True])
def test_from_torch_matches_torch(variant, batch_first, kdim, vdim, bias, float_masks) -> None:
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(16, 4, batch_first=batch_first, kdim=kdim, vdim=vdim, bias=bias,
                                dtype=torch.float64).eval()
    x, key, value, kpm, attn_mask = _inputs(batch_first, kdim, vdim)
    if float_masks:
        attn_mask = torch.randn(5, 7, dtype=torch.float64).masked_fill(attn_mask, -torch.inf)
        kpm = torch.zeros(3, 7, dtype=torch.float64).masked_fill(kpm, -torch.inf)
    expected, expected_w = mha(x, key, value, key_padding_mask=kpm, attn_mask=attn_mask,
                               need_weights=True)
    ours = MultiHeadAttention.from_torch(mha, variant=variant)
    need = variant == "reference"
    out, weights = ours(x, key, value, key_padding_mask=kpm, attn_mask=attn_mask, need_weights=need)
    torch.testing.assert_close(out, expected)
    if need:
        torch.testing.assert_close(weights, expected_w)


def test_causal_self_attention_matches_torch() -> None:
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(16, 2, batch_first=True, dtype=torch.float64).eval()
    x = torch.randn(2, 6, 16, dtype=torch.float64)
    causal = nn.Transformer.generate_square_subsequent_mask(6, dtype=torch.float64)
    expected, _ = mha(x, x, x, attn_mask=causal, is_causal=True)
    out, _ = MultiHeadAttention.from_torch(mha, variant="reference")(x, is_causal=True)
    torch.testing.assert_close(out, expected)


def test_per_head_weights_and_gradients_flow() -> None:
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4, variant="reference")
    x = torch.randn(2, 5, 16)
    out, weights = mha(x, need_weights=True, average_attn_weights=False)
    assert out.shape == (2, 5, 16) and weights.shape == (2, 4, 5, 5)
    out.sum().backward()
    assert all(p.grad is not None for p in mha.parameters())


@pytest.mark.parametrize("name", DENSE)
def test_every_dense_variant_runs_inside(name: str) -> None:
    if "cpu" not in attention.REGISTRY[name].capabilities.devices:
        pytest.skip(f"{name} has no CPU kernel")
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 2, variant=name, max_len=8)
    x = torch.randn(2, 8, 16)
    out, _ = mha(x)
    assert out.shape == (2, 8, 16) and torch.isfinite(out).all()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(10, 3)
    with pytest.raises(ValueError, match="unknown attention variant"):
        MultiHeadAttention(16, 2, variant="nope")
    with pytest.raises(ValueError, match="graph attention"):
        MultiHeadAttention(16, 2, variant="gat")
    with pytest.raises(ValueError, match="no attention dropout"):
        MultiHeadAttention(16, 2, variant="hard", dropout=0.1)
    mha = MultiHeadAttention(16, 2)
    with pytest.raises(ValueError, match="key_padding_mask must have shape"):
        mha(torch.randn(2, 5, 16), key_padding_mask=torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="query must be a 3-D tensor"):
        mha(torch.randn(5, 16))
    with pytest.raises(ValueError, match="add_bias_kv"):
        MultiHeadAttention.from_torch(nn.MultiheadAttention(16, 2, add_bias_kv=True))
