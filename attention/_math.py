"""The softmax step shared by the score-based variants (reference, Luong, additive, memory, ...)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

LOW_PRECISION = (torch.float16, torch.bfloat16)


def masked_softmax(scores: Tensor, bias: Tensor | None) -> Tensor:
    """softmax(scores + bias) over the last dim; rows with every key blocked give zeros.

    Half-precision scores are normalised in float32 (as fused kernels do) and cast back.
    """
    if bias is None:
        work = scores.float() if scores.dtype in LOW_PRECISION else scores
        return torch.softmax(work, dim=-1).to(scores.dtype)
    return safe_softmax(scores + bias)


def safe_softmax(scores: Tensor) -> Tensor:
    """softmax over the last dim of scores that may hold -inf; all -inf rows give zeros."""
    work = scores.float() if scores.dtype in LOW_PRECISION else scores
    # A fully blocked row would be softmax(-inf, ..., -inf) = NaN (and NaN gradients): replace
    # its scores by zeros before the softmax and its weights by zeros after.
    alive = (work > float("-inf")).any(dim=-1, keepdim=True)  # (..., Lq, 1)
    weights = torch.softmax(torch.where(alive, work, 0.0), dim=-1)
    return torch.where(alive, weights, 0.0).to(scores.dtype)


def attend_scores(
    scores: Tensor,  # (B, H, Lq, Lk), already scaled
    value: Tensor,  # (B, H, Lk, Dv)
    bias: Tensor | None,
    dropout_p: float,
) -> tuple[Tensor, Tensor]:
    """Mask, normalise, drop out and apply the weights. Returns (output, weights before dropout)."""
    weights = masked_softmax(scores, bias)
    dropped = F.dropout(weights, p=dropout_p) if dropout_p > 0 else weights
    return dropped @ value, weights
