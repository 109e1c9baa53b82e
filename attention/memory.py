"""``memory``: learned memory slots attended alongside the keys and values.

Paper: Sukhbaatar et al., "Augmenting Self-attention with Persistent Memory", 2019 (persistent
memory vectors); the same idea as the memory tokens of Burtsev et al., "Memory Transformer", 2020.

    out = softmax([Q M_k^T, Q K^T] * scale + [0, mask]) [M_v; V]

M_k, M_v are ``num_slots`` learned vectors per head. Slots are never masked and are outside the
causal order, so every query (also a fully masked one) can read them; with ``num_slots=0`` the
variant is exactly the oracle (its limit case).

Complexity: O(B H Lq (S + Lk) D) time and O(B H Lq (S + Lk)) memory; weights materialised.

Args:
    head_dim: D (the slots live in the key/value space of each head).
    num_heads: H (slots are per head).
    num_slots: S >= 0 learned slots.
    value_dim: Dv if it differs from head_dim.

Shapes: query (B, H, Lq, D), key (B, H, Lk, D), value (B, H, Lk, Dv) -> (B, H, Lq, Dv);
weights (B, H, Lq, Lk) are the weights on the real keys (the slots take the rest of the mass).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._base import AttentionOutput, Capabilities, DenseAttention, LimitCase, require_positive_int
from ._masks import additive_bias
from ._math import attend_scores


class MemoryAttention(DenseAttention):
    name = "memory"
    capabilities = Capabilities(exact=False, needs=frozenset({"head_dim", "num_heads"}))
    limit_case = LimitCase(
        kwargs=lambda lq, lk, d: {"head_dim": d, "num_heads": 1, "num_slots": 0},
        masks=frozenset({"none", "key_padding", "boolean", "additive"}),
        causal=True,
        description="num_slots=0",
    )

    def __init__(self, *, head_dim: int, num_heads: int, num_slots: int = 16,
                 value_dim: int | None = None) -> None:
        super().__init__()
        self.head_dim = require_positive_int("head_dim", head_dim)
        self.num_heads = require_positive_int("num_heads", num_heads)
        self.num_slots = require_positive_int("num_slots", num_slots, minimum=0)
        dv = head_dim if value_dim is None else require_positive_int("value_dim", value_dim)
        self.memory_keys = nn.Parameter(torch.randn(num_heads, num_slots, head_dim) / head_dim**0.5)
        self.memory_values = nn.Parameter(torch.randn(num_heads, num_slots, dv) / dv**0.5)

    def extra_repr(self) -> str:
        return f"head_dim={self.head_dim}, num_heads={self.num_heads}, num_slots={self.num_slots}"

    def _extra_reasons(self, query: Tensor, key: Tensor, attn_mask: Tensor | None, *,
                       is_causal: bool) -> list[str]:
        if self.num_slots == 0:
            return []
        reasons = []
        if query.shape[1] != self.num_heads:
            reasons.append(f"query has {query.shape[1]} heads, the memory was built for {self.num_heads}")
        if query.shape[-1] != self.head_dim:
            reasons.append(f"head dim {query.shape[-1]} != head_dim={self.head_dim} of the memory")
        return reasons

    def _check_value_dim(self, value: Tensor) -> None:
        if self.num_slots and value.shape[-1] != self.memory_values.shape[-1]:
            raise ValueError(f"value must have Dv={self.memory_values.shape[-1]} (the memory's "
                             f"value_dim), got shape {tuple(value.shape)}")

    def _attend(self, query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None, *,
                is_causal: bool, dropout_p: float, scale: float, need_weights: bool
                ) -> AttentionOutput:
        b, h, lq, lk = query.shape[0], query.shape[1], query.shape[2], key.shape[2]
        self._check_value_dim(value)
        s = self.num_slots
        keys, values = key, value
        if s:
            mem_k = self.memory_keys.to(query.dtype).expand(b, h, s, -1)  # (B, H, S, D)
            mem_v = self.memory_values.to(value.dtype).expand(b, h, s, -1)  # (B, H, S, Dv)
            keys = torch.cat([mem_k, key], dim=-2)  # (B, H, S + Lk, D)
            values = torch.cat([mem_v, value], dim=-2)
        scores = (query @ keys.transpose(-2, -1)) * scale  # (B, H, Lq, S + Lk)
        bias = additive_bias(attn_mask, is_causal, lq, lk, scores.dtype, scores.device)
        if bias is not None:  # slots are always visible: pad the bias with zeros in front
            bias = torch.cat([bias.new_zeros(bias.shape[:-1] + (s,)), bias], dim=-1)
        out, weights = attend_scores(scores, values, bias, dropout_p)
        return AttentionOutput(out, weights[..., s:] if need_weights else None)
