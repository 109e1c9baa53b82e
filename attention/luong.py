"""``luong``: multiplicative (dot, general) and concat scores of Luong attention.

Paper: Luong, Pham & Manning, "Effective Approaches to Attention-based Neural Machine
Translation", EMNLP 2015 (section 3.1, eq. 8).

    dot:     e_ij = q_i^T k_j * scale
    general: e_ij = q_i^T W_a k_j * scale
    concat:  e_ij = v_a^T tanh(W_a [q_i; k_j])  (= the additive score; ``scale`` does not apply)
    out_i = sum_j softmax_j(e_ij + mask_ij) v_j

Luong's paper uses no scaling: pass ``scale=1.0`` for its exact form (the default scale is
1/sqrt(D), as everywhere in this package). ``dot`` is then the oracle itself; ``general`` with
W_a = I (``init="identity"``) is the oracle too (its limit case); ``concat`` is a different
scoring function, tested against its equation.

Complexity: O(B H Lq Lk D) time (concat: x A), O(B H Lq Lk) memory.

Args:
    score: ``dot``, ``general`` or ``concat``.
    head_dim: D (``general`` and ``concat``).
    attn_dim: A for ``concat`` (default D).
    init: ``xavier`` or ``identity`` initialisation of W_a for ``general``.

Shapes: query (B, H, Lq, D), key (B, H, Lk, D), value (B, H, Lk, Dv) -> (B, H, Lq, Dv).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._base import (
    AttentionOutput,
    Capabilities,
    DenseAttention,
    LimitCase,
    require_choice,
    require_positive_int,
)
from ._masks import additive_bias
from ._math import attend_scores
from .additive import AdditiveScore


class LuongAttention(DenseAttention):
    name = "luong"
    capabilities = Capabilities(exact=False, needs=frozenset({"head_dim"}),
                                notes=("score = dot | general | concat",))
    limit_case = LimitCase(
        kwargs=lambda lq, lk, d: {"score": "general", "head_dim": d, "init": "identity"},
        masks=frozenset({"none", "key_padding", "boolean", "additive"}),
        causal=True,
        description="score='general' with W_a = I (score='dot' is the oracle itself)",
    )

    def __init__(self, *, score: str = "general", head_dim: int | None = None,
                 attn_dim: int | None = None, init: str = "xavier") -> None:
        super().__init__()
        self.score = require_choice("score", score, ("dot", "general", "concat"))
        require_choice("init", init, ("xavier", "identity"))
        self.head_dim = head_dim
        self.weight = None
        self.concat = None
        if score == "dot":
            return
        if head_dim is None:
            raise ValueError(f"head_dim is required for score={score!r}, got None")
        head_dim = require_positive_int("head_dim", head_dim)
        if score == "general":
            self.weight = nn.Parameter(torch.eye(head_dim) if init == "identity"
                                       else nn.init.xavier_uniform_(torch.empty(head_dim, head_dim)))
        else:
            self.concat = AdditiveScore(head_dim=head_dim, attn_dim=attn_dim)

    def extra_repr(self) -> str:
        return f"score={self.score}, head_dim={self.head_dim}"

    def _extra_reasons(self, query: Tensor, key: Tensor, attn_mask: Tensor | None, *,
                       is_causal: bool) -> list[str]:
        if self.score != "dot" and query.shape[-1] != self.head_dim:
            return [f"head dim {query.shape[-1]} != head_dim={self.head_dim}"]
        return []

    def _scores(self, query: Tensor, key: Tensor, scale: float) -> Tensor:
        if self.concat is not None:
            return self.concat(query, key)
        if self.weight is not None:
            query = query @ self.weight.to(query.dtype)  # (B, H, Lq, D)
        return (query @ key.transpose(-2, -1)) * scale  # (B, H, Lq, Lk)

    def _attend(self, query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None, *,
                is_causal: bool, dropout_p: float, scale: float, need_weights: bool
                ) -> AttentionOutput:
        scores = self._scores(query, key, scale)
        bias = additive_bias(attn_mask, is_causal, query.shape[-2], key.shape[-2], scores.dtype,
                             scores.device)
        out, weights = attend_scores(scores, value, bias, dropout_p)
        return AttentionOutput(out, weights if need_weights else None)
