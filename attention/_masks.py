"""Mask helpers shared by the variants (SDPA convention: bool True = may attend)."""

from __future__ import annotations

import torch
from torch import Tensor


def causal_keep(lq: int, lk: int, device: torch.device) -> Tensor:
    """(Lq, Lk) bool, True where key j <= query i (torch's top-left alignment)."""
    return torch.ones(lq, lk, dtype=torch.bool, device=device).tril()


def additive_bias(
    attn_mask: Tensor | None, is_causal: bool, lq: int, lk: int, dtype: torch.dtype,
    device: torch.device,
) -> Tensor | None:
    """Merge ``attn_mask`` and ``is_causal`` into one additive bias (-inf = blocked), or None."""
    bias = None
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            bias = torch.zeros(attn_mask.shape, dtype=dtype, device=device)
            bias = bias.masked_fill(~attn_mask, float("-inf"))
        else:
            bias = attn_mask.to(dtype)
    if is_causal:
        blocked = ~causal_keep(lq, lk, device)
        causal = torch.zeros(lq, lk, dtype=dtype, device=device).masked_fill(blocked, float("-inf"))
        bias = causal if bias is None else bias + causal
    return bias


def keep_mask(attn_mask: Tensor | None, is_causal: bool, lq: int, lk: int, device: torch.device
              ) -> Tensor | None:
    """Merge a boolean ``attn_mask`` and ``is_causal`` into one bool keep mask, or None."""
    keep = attn_mask
    if attn_mask is not None and attn_mask.dtype != torch.bool:
        keep = attn_mask > float("-inf")  # only valid for variants that ignore finite biases
    if is_causal:
        causal = causal_keep(lq, lk, device)
        keep = causal if keep is None else keep & causal
    return keep


def key_padding_keep(attn_mask: Tensor | None, batch: int, lk: int) -> Tensor | None:
    """A key-padding mask (bool, broadcasting over queries) as (B or 1, H or 1, Lk), or None."""
    if attn_mask is None:
        return None
    mask = attn_mask
    while mask.dim() < 4:
        mask = mask.unsqueeze(0)
    return mask[..., 0, :].expand(mask.shape[0], mask.shape[1], lk)
