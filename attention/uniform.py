"""``uniform``: equal weights over every key a query may attend; the no-focus control.

Paper: none; the control that asks whether any attention variant beats plain averaging (as
in the "uniform attention" ablations of Jain & Wallace, "Attention is not Explanation",
NAACL 2019).

    out_i = (1 / |A_i|) * sum_{j in A_i} v_j,   A_i = keys allowed for query i

It equals the oracle run with all-zero queries (every score equal), which is how it is tested.
With ``is_causal`` and no other mask it is a running mean, computed with a cumulative sum.

Complexity: O(B H Lk Dv) without a mask or with a key-padding mask, O(B H Lq Lk Dv) with a
general boolean mask. Queries, ``scale`` and finite additive biases play no part, so
additive masks are refused (they would be silently ignored otherwise).

Args: none.
Shapes: query (B, H, Lq, D), key (B, H, Lk, D), value (B, H, Lk, Dv) -> (B, H, Lq, Dv).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._base import AttentionOutput, Capabilities, DenseAttention
from ._masks import keep_mask


class UniformAttention(DenseAttention):
    name = "uniform"
    capabilities = Capabilities(
        masks=frozenset({"boolean", "key_padding"}),
        exact=False,
        notes=("control: ignores queries and keys",),
    )

    def _attend(self, query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None, *,
                is_causal: bool, dropout_p: float, scale: float, need_weights: bool
                ) -> AttentionOutput:
        b, h, lq, lk = query.shape[0], query.shape[1], query.shape[2], key.shape[2]
        if attn_mask is None and is_causal and not need_weights and dropout_p == 0:
            return AttentionOutput(_running_mean(value, lq), None)
        keep = keep_mask(attn_mask, is_causal, lq, lk, query.device)
        if keep is None:
            keep = torch.ones(1, 1, 1, lk, dtype=torch.bool, device=query.device)
        keep = keep.expand(b, h, lq, lk) if keep.shape[-2] != 1 else keep.expand(b, h, 1, lk)
        weights = keep.to(value.dtype)
        weights = weights / weights.sum(-1, keepdim=True).clamp_min(1)  # empty row -> zeros
        dropped = F.dropout(weights, p=dropout_p) if dropout_p > 0 else weights
        out = dropped @ value  # (B, H, Lq or 1, Dv)
        if need_weights:
            weights = weights.expand(b, h, lq, lk)
        return AttentionOutput(out.expand(b, h, lq, value.shape[-1]), weights if need_weights else None)


def _running_mean(value: Tensor, lq: int) -> Tensor:
    """Causal uniform attention: query i averages keys 0..min(i, Lk-1)."""
    lk = value.shape[-2]
    csum = value.cumsum(dim=-2)  # (B, H, Lk, Dv)
    idx = torch.arange(lq, device=value.device).clamp_max(lk - 1)
    counts = (idx + 1).to(value.dtype).unsqueeze(-1)  # (Lq, 1)
    return csum[..., idx, :] / counts
