"""``hard``: attention on one position (stochastic) or on the top-k positions.

Papers: Xu et al., "Show, Attend and Tell", ICML 2015 (stochastic hard attention); Jang, Gu &
Poole, "Categorical Reparameterization with Gumbel-Softmax", ICLR 2017 (straight-through
estimator); Gupta et al., "Memory-efficient Transformers via Top-k Attention", 2021 (top-k).

    sample:  s ~ Categorical(softmax(S / tau)) in training (Gumbel-max), s = argmax S in eval;
             out = v_s; gradient: straight-through, d out / d S taken from softmax(S / tau) v
    topk:    out = softmax(S restricted to its k largest entries per row) V

with S = Q K^T * scale + mask. Masked keys are never chosen; a fully masked row gives zeros.
``topk`` with k >= Lk is exactly the oracle (its limit case).

Complexity: O(B H Lq Lk D) time and O(B H Lq Lk) memory (scores are formed to choose from).

Args:
    mode: ``sample`` or ``topk``.
    k: positions kept per query in ``topk`` mode.
    tau: temperature of the softmax used by the straight-through gradient (``sample``).

Shapes: query (B, H, Lq, D), key (B, H, Lk, D), value (B, H, Lk, Dv) -> (B, H, Lq, Dv).
Sampling uses torch's global generator: seed it (``torch.manual_seed``) for repeatable runs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._base import (
    AttentionOutput,
    Capabilities,
    DenseAttention,
    LimitCase,
    require_choice,
    require_positive_int,
)
from ._masks import additive_bias
from ._math import safe_softmax


class HardAttention(DenseAttention):
    name = "hard"
    capabilities = Capabilities(dropout=False, exact=False, notes=("stochastic in training",))
    limit_case = LimitCase(
        kwargs=lambda lq, lk, d: {"mode": "topk", "k": lk},
        masks=frozenset({"none", "key_padding", "boolean", "additive"}),
        causal=True,
        description="mode='topk' with k >= Lk",
    )

    def __init__(self, *, mode: str = "sample", k: int = 1, tau: float = 1.0) -> None:
        super().__init__()
        self.mode = require_choice("mode", mode, ("sample", "topk"))
        self.k = require_positive_int("k", k)
        if not (isinstance(tau, (int, float)) and tau > 0):
            raise ValueError(f"tau must be a positive number, got {tau!r}")
        self.tau = float(tau)

    def extra_repr(self) -> str:
        return f"mode={self.mode}, k={self.k}, tau={self.tau}"

    def _attend(self, query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None, *,
                is_causal: bool, dropout_p: float, scale: float, need_weights: bool
                ) -> AttentionOutput:
        lq, lk = query.shape[-2], key.shape[-2]
        scores = (query @ key.transpose(-2, -1)) * scale  # (B, H, Lq, Lk)
        bias = additive_bias(attn_mask, is_causal, lq, lk, scores.dtype, scores.device)
        masked = scores if bias is None else scores + bias
        if self.mode == "topk":
            weights = safe_softmax(_keep_top_k(masked, self.k))
        else:
            weights = self._sample_weights(masked)
        return AttentionOutput(weights @ value, weights if need_weights else None)

    def _sample_weights(self, masked: Tensor) -> Tensor:
        alive = (masked > float("-inf")).any(dim=-1, keepdim=True)  # (B, H, Lq, 1)
        logits = masked.float()
        if self.training:  # Gumbel-max: argmax(logits + G) ~ Categorical(softmax(logits))
            uniform = torch.rand_like(logits).clamp_(torch.finfo(logits.dtype).tiny, 1.0)
            logits = logits - torch.log(-torch.log(uniform))
        choice = logits.argmax(dim=-1)  # (B, H, Lq)
        one_hot = F.one_hot(choice, masked.shape[-1]).to(masked.dtype) * alive
        if not (self.training and torch.is_grad_enabled() and masked.requires_grad):
            return one_hot
        soft = safe_softmax(masked / self.tau)
        return one_hot + soft - soft.detach()  # forward: one-hot; backward: softmax's gradient


def _keep_top_k(masked: Tensor, k: int) -> Tensor:
    """Scores outside each row's k largest become -inf (ties at the k-th value are all kept)."""
    if k >= masked.shape[-1]:
        return masked
    kth = masked.topk(k, dim=-1).values[..., -1:]  # (B, H, Lq, 1)
    return masked.masked_fill(masked < kth, float("-inf"))
