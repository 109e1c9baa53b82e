"""``reference``: scaled dot-product attention written out; the oracle every variant is tested against.

Paper: Vaswani et al., "Attention Is All You Need", NeurIPS 2017 (eq. 1).

    Attention(Q, K, V) = softmax(Q K^T * scale + M) V,   scale = 1 / sqrt(D) by default

Complexity: O(B H Lq Lk D) time and O(B H Lq Lk) memory for the score matrix, which is
materialised (that is what makes it the oracle, and what makes it the memory baseline).

Limits: none beyond memory; any float dtype (float64 for the oracle), any device, every mask
kind, causal, cross-attention, dropout, grouped-query keys and values (query heads a multiple of
the key/value heads; scores by broadcasting), and it returns the weights.

Args: none.
Shapes: query (B, H, Lq, D), key (B, Hkv, Lk, D), value (B, Hkv, Lk, Dv) -> (B, H, Lq, Dv).
"""

from __future__ import annotations

from torch import Tensor

from ._base import AttentionOutput, Capabilities, DenseAttention
from ._masks import additive_bias
from ._math import attend_scores


class ReferenceAttention(DenseAttention):
    name = "reference"
    capabilities = Capabilities(gqa=True, notes=("oracle: explicit math, materialises Lq x Lk scores",))

    def _attend(self, query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None, *,
                is_causal: bool, dropout_p: float, scale: float, need_weights: bool
                ) -> AttentionOutput:
        lq, lk = query.shape[-2], key.shape[-2]
        b, h, hkv = query.shape[0], query.shape[1], key.shape[1]
        if hkv != h:  # grouped: each key/value head serves h / hkv query heads, by broadcasting
            grouped = query.reshape(b, hkv, h // hkv, lq, query.shape[-1])
            scores = (grouped @ key.unsqueeze(2).transpose(-2, -1)).reshape(b, h, lq, lk) * scale
            value = value.repeat_interleave(h // hkv, dim=1)
        else:
            scores = (query @ key.transpose(-2, -1)) * scale  # (B, H, Lq, Lk)
        bias = additive_bias(attn_mask, is_causal, lq, lk, scores.dtype, scores.device)
        out, weights = attend_scores(scores, value, bias, dropout_p)
        return AttentionOutput(out, weights if need_weights else None)
