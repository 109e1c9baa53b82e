"""RoPE and ALiBi (attention/positions.py) and MultiHeadAttention(positions=...)."""

from __future__ import annotations

import pytest
import torch

import attention
from attention import MultiHeadAttention, NotSupportedError
from attention.positions import alibi_bias, alibi_slopes, apply_rope, rope_tables


def test_rotary_scores_depend_on_the_positions_only_through_their_distance() -> None:
    gen = torch.Generator().manual_seed(0)
    q, k = (torch.randn(1, 2, 1, 16, generator=gen, dtype=torch.float64) for _ in range(2))
    scores = {}
    for m, n in ((3, 1), (10, 8), (2, 5), (9, 12)):
        scores[m, n] = (apply_rope(q, offset=m) * apply_rope(k, offset=n)).sum(-1)
    torch.testing.assert_close(scores[3, 1], scores[10, 8])
    torch.testing.assert_close(scores[2, 5], scores[9, 12])
    assert not torch.allclose(scores[3, 1], scores[2, 5])
    torch.testing.assert_close(apply_rope(q), q)  # position 0: no rotation
    torch.testing.assert_close(apply_rope(q, offset=7).norm(dim=-1), q.norm(dim=-1))  # a rotation
    with pytest.raises(ValueError, match="rope needs an even head dim, got 7"):
        rope_tables(4, 7)


def test_alibi_slopes_and_biases_follow_the_paper() -> None:
    torch.testing.assert_close(alibi_slopes(8), torch.tensor([2.0 ** -i for i in range(1, 9)],
                                                             dtype=torch.float64))
    # 6 heads: the 4-head slopes, then every other slope of the 8-head sequence
    torch.testing.assert_close(alibi_slopes(6), torch.tensor([2.0 ** -2, 2.0 ** -4, 2.0 ** -6, 2.0 ** -8,
                                                              2.0 ** -1, 2.0 ** -3], dtype=torch.float64))
    causal = alibi_bias(2, 3, 3, causal=True, dtype=torch.float64)
    assert causal.shape == (1, 2, 3, 3) and causal[0, 0, 2].tolist() == [-0.125, -0.0625, 0.0]  # m = 1/16
    both = alibi_bias(2, 3, 3, causal=False, dtype=torch.float64)
    assert both[0, 1, 0].tolist() == [0.0, -1 / 256, -2 / 256] and both[0, 1, 2, 0] == both[0, 1, 0, 2]


def _by_hand(mha: MultiHeadAttention, x: torch.Tensor, positions: str, causal: bool) -> torch.Tensor:
    """The module's computation written out with the reference attention."""
    b, length, _ = x.shape

    def heads(t):
        return t.view(b, length, mha.num_heads, mha.head_dim).transpose(1, 2)

    q, k, v = heads(mha.q_proj(x)), heads(mha.k_proj(x)), heads(mha.v_proj(x))
    mask = None
    if positions == "rope":
        q, k = apply_rope(q), apply_rope(k)
    else:
        mask = alibi_bias(mha.num_heads, length, length, causal=causal, dtype=x.dtype)
    out = attention.ReferenceAttention()(q, k, v, mask, is_causal=causal).output
    return mha.out_proj(out.transpose(1, 2).reshape(b, length, -1))


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("positions", ["rope", "alibi"])
@pytest.mark.parametrize("variant", ["reference", "sdpa"])
def test_multihead_positions_are_the_written_out_computation(variant: str, positions: str,
                                                              causal: bool) -> None:
    torch.manual_seed(0)
    mha = MultiHeadAttention(32, 4, variant=variant, positions=positions).double().eval()
    assert f"positions={positions}" in repr(mha)
    x = torch.randn(2, 7, 32, dtype=torch.float64)
    out, _ = mha(x, is_causal=causal)
    torch.testing.assert_close(out, _by_hand(mha, x, positions, causal), atol=1e-10, rtol=1e-8)
    padding = torch.zeros(2, 7, dtype=torch.bool)
    padding[0, -3:] = True
    masked, _ = mha(x, key_padding_mask=padding, is_causal=causal)
    assert torch.isfinite(masked).all()
    if not causal:  # padded keys change nothing for the real queries of the unpadded sequence
        torch.testing.assert_close(masked[1], out[1])


def test_alibi_is_refused_by_variants_without_additive_masks_and_positions_need_self_attention() -> None:
    mha = MultiHeadAttention(16, 2, variant="linear", positions="alibi")
    x = torch.randn(1, 4, 16)
    with pytest.raises(NotSupportedError, match="attn_mask kind 'additive'"):
        mha(x)
    assert MultiHeadAttention(16, 2, variant="linear", positions="rope")(x)[0].shape == (1, 4, 16)
    with pytest.raises(ValueError, match="positions='rope' is for self-attention"):
        MultiHeadAttention(16, 2, positions="rope")(x, torch.randn(1, 4, 16))
    with pytest.raises(ValueError, match=r"positions must be one of \['none', 'rope', 'alibi'\], got 'sin'"):
        MultiHeadAttention(16, 2, positions="sin")
    with pytest.raises(ValueError, match="rope needs an even head dim, got 3"):
        MultiHeadAttention(6, 2, positions="rope")
