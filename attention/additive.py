"""``additive``: Bahdanau (additive, "concat") attention with a learned scoring network.

Paper: Bahdanau, Cho & Bengio, "Neural Machine Translation by Jointly Learning to Align and
Translate", ICLR 2015 (eq. 6 and appendix A.1.2).

    e_ij = v_a^T tanh(W_a q_i + U_a k_j),   out_i = sum_j softmax_j(e_ij + mask_ij) v_j

W_a, U_a (D -> A) and v_a (A) are learned and shared by the heads. ``scale`` does not apply:
there is no dot product to scale, and v_a learns the temperature.

Complexity: O(B H Lq Lk A) time; O(B H Lq Lk) memory for the weights, plus the tanh features
(B, H, c, Lk, A) for a chunk of c queries, at most a quarter of the score matrix (so forward-only
memory stays near the score matrix; under autograd every chunk's features are kept for the
backward pass).

Limits: not an approximation of dot-product attention but a different scoring function, so it
has no oracle limit; it is tested against the equation written out in float64.

Args:
    head_dim: D.
    attn_dim: A, the width of the scoring network (default D).

Shapes: query (B, H, Lq, D), key (B, H, Lk, D), value (B, H, Lk, Dv) -> (B, H, Lq, Dv).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._base import AttentionOutput, Capabilities, DenseAttention, require_positive_int
from ._masks import additive_bias
from ._math import attend_scores

CHUNK_ELEMENTS = 1 << 24  # at most this many tanh features per query chunk (64 MiB in float32)


class AdditiveScore(nn.Module):
    """e_ij = v^T tanh(W q_i + U k_j); shared by Bahdanau attention and Luong's concat score."""

    def __init__(self, *, head_dim: int, attn_dim: int | None = None) -> None:
        super().__init__()
        head_dim = require_positive_int("head_dim", head_dim)
        attn_dim = head_dim if attn_dim is None else require_positive_int("attn_dim", attn_dim)
        self.query_proj = nn.Linear(head_dim, attn_dim, bias=False)  # W_a
        self.key_proj = nn.Linear(head_dim, attn_dim, bias=False)  # U_a
        self.v = nn.Parameter(torch.empty(attn_dim).uniform_(-attn_dim**-0.5, attn_dim**-0.5))

    def forward(self, query: Tensor, key: Tensor) -> Tensor:
        wq = self.query_proj(query).unsqueeze(-2)  # (B, H, Lq, 1, A)
        uk = self.key_proj(key).unsqueeze(-3)  # (B, H, 1, Lk, A)
        # A chunk's features stay within a quarter of the (B, H, Lq, Lk) scores, so the scores,
        # not a fixed-size buffer, set the peak memory at every length.
        scores = query.shape[0] * query.shape[1] * query.shape[-2] * key.shape[-2]
        per_query = max(key.shape[-2] * self.v.numel() * query.shape[0] * query.shape[1], 1)
        chunk = max(1, min(CHUNK_ELEMENTS, scores // 4) // per_query)
        parts = [torch.tanh(wq[:, :, i:i + chunk] + uk) @ self.v.to(query.dtype)
                 for i in range(0, query.shape[-2], chunk)]
        return torch.cat(parts, dim=-2)  # (B, H, Lq, Lk)


class AdditiveAttention(DenseAttention):
    name = "additive"
    capabilities = Capabilities(exact=False, needs=frozenset({"head_dim"}),
                                notes=("learned score v^T tanh(Wq + Uk); ignores scale",))

    def __init__(self, *, head_dim: int, attn_dim: int | None = None) -> None:
        super().__init__()
        self.score = AdditiveScore(head_dim=head_dim, attn_dim=attn_dim)

    def _extra_reasons(self, query: Tensor, key: Tensor, attn_mask: Tensor | None, *,
                       is_causal: bool) -> list[str]:
        d = self.score.query_proj.in_features
        return [] if query.shape[-1] == d else [f"head dim {query.shape[-1]} != head_dim={d}"]

    def _attend(self, query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None, *,
                is_causal: bool, dropout_p: float, scale: float, need_weights: bool
                ) -> AttentionOutput:
        scores = self.score(query, key)  # (B, H, Lq, Lk)
        bias = additive_bias(attn_mask, is_causal, query.shape[-2], key.shape[-2], scores.dtype,
                             scores.device)
        out, weights = attend_scores(scores, value, bias, dropout_p)
        return AttentionOutput(out, weights if need_weights else None)
