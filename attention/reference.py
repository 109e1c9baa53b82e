"""``reference``: scaled dot-product attention written out; the oracle every variant is tested against.

Paper: Vaswani et al., "Attention Is All You Need", NeurIPS 2017 (eq. 1).

    Attention(Q, K, V) = softmax(Q K^T * scale + M) V,   scale = 1 / sqrt(D) by default

Complexity: O(B H Lq Lk D) time and O(B H Lq Lk) memory for the score matrix, which is
materialised (that is what makes it the oracle, and what makes it the memory baseline).

Limits: none beyond memory; any float dtype (float64 for the oracle), any device, every mask
kind, causal, cross-attention, dropout, and it returns the weights.

Args: none.
Shapes: query (B, H, Lq, D), key (B, H, Lk, D), value (B, H, Lk, Dv) -> (B, H, Lq, Dv).
"""

from __future__ import annotations

from torch import Tensor

from ._base import AttentionOutput, Capabilities, DenseAttention
from ._masks import additive_bias
from ._math import attend_scores


class ReferenceAttention(DenseAttention):
    name = "reference"
    capabilities = Capabilities(notes=("oracle: explicit math, materialises Lq x Lk scores",))

    def _attend(self, query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None, *,
                is_causal: bool, dropout_p: float, scale: float, need_weights: bool
                ) -> AttentionOutput:
        lq, lk = query.shape[-2], key.shape[-2]
        scores = (query @ key.transpose(-2, -1)) * scale  # (B, H, Lq, Lk)
        bias = additive_bias(attn_mask, is_causal, lq, lk, scores.dtype, scores.device)
        out, weights = attend_scores(scores, value, bias, dropout_p)
        return AttentionOutput(out, weights if need_weights else None)
