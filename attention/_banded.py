"""Block-sparse attention engine: query blocks attend short lists of key positions, in O(L) memory.

Shared by ``local`` (sliding, local-m, local-p) and ``sparse`` (window + global, strided).
Query block n (``block`` consecutive rows) attends the key positions ``cols[n]`` (C of them)
where ``keep[n]`` allows it; the engine adds the causal rule (top-left, j <= i) and the user mask,
normalises with masked-softmax semantics (a row with nothing left gives zeros, with finite
gradients) and optionally multiplies Luong's Gaussian ``exp(-(j - p_i)^2 / (2 sigma^2))``.

Blocks are batched into chunks of about ``CHUNK_ELEMENTS`` score/gathered elements, so a
chunk is a handful of large tensor ops (few Python steps, few thread-pool wake-ups on CPU)
while memory stays O(B H Lq C) for the whole call, never O(Lq Lk). Only ``need_weights``
builds the dense ``(B, H, Lq, Lk)`` weights (zeros outside the pattern).

``cols`` is ``(nb, C)`` when all batches and heads share the pattern (sliding, local-m, sparse),
or ``(B, H, nb, C)`` when it depends on the input (local-p): then each block is one query, its
keys are gathered per (batch, head), and each chunk is recomputed in backward (activation
checkpointing) rather than its gathered keys and values kept.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from ._base import AttentionOutput
from ._math import LOW_PRECISION

QUERY_BLOCK = 128  # queries per block: big matmuls, yet a key slice only block + 2 window wide
CHUNK_ELEMENTS = 1 << 23  # score + gathered key/value elements per chunk (32 MiB in float32)


class Band(NamedTuple):
    lo: Tensor  # (Lq,) or (B, H, Lq) int64, first key of each query's window (clamped to [0, Lk])
    hi: Tensor  # same shape, one past the last key (clamped to [0, Lk])
    center: Tensor | None = None  # same shape, real Gaussian centre p_i; None: no Gaussian
    sigma: float = 1.0
    width: int = 0  # per-(batch, head) bounds only: the largest hi - lo


def mask_at(attn_mask: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """``attn_mask[b, h, rows, cols]`` for index tensors laid out as ``(B|1, H|1, ...)``.

    Broadcast (size-1) mask dims are read at index 0, so key-padding and (Lq, Lk) masks work
    without ever being expanded to (B, H, Lq, Lk).
    """
    mask = attn_mask.reshape((1,) * (4 - attn_mask.dim()) + tuple(attn_mask.shape))
    nd = max(rows.dim(), cols.dim())
    b = torch.arange(mask.shape[0], device=mask.device).view((-1,) + (1,) * (nd - 1))
    h = torch.arange(mask.shape[1], device=mask.device).view((1, -1) + (1,) * (nd - 2))
    r = rows if mask.shape[2] > 1 else torch.zeros_like(rows)
    c = cols if mask.shape[3] > 1 else torch.zeros_like(cols)
    return mask[b, h, r, c]


def keep_softmax(scores: Tensor, keep: Tensor) -> Tensor:
    """Softmax over the kept positions; rows with none kept give zeros (finite gradients).

    Same semantics as ``_math.masked_softmax``, but driven by a bool mask that is usually shared
    by all batches and heads, which saves the float-bias passes over the largest tensor.
    """
    alive = keep.any(dim=-1, keepdim=True)
    work = scores.float() if scores.dtype in LOW_PRECISION else scores
    # Dead rows keep their finite scores through the softmax and are zeroed after it. The fill
    # is in place: callers hand over fresh score tensors that nothing else reads.
    weights = torch.softmax(work.masked_fill_(~keep & alive, float("-inf")), dim=-1)
    if not bool(alive.all()):
        weights = weights.masked_fill(~alive, 0.0)
    return weights.to(scores.dtype)


def band_blocks(lo: Tensor, hi: Tensor, block: int, lk: int, num_global: int = 0) -> tuple[Tensor, Tensor]:
    """(cols (nb, C), keep (nb, block, C)) for rows with windows [lo_i, hi_i) plus global keys.

    Block n scores the contiguous slice covering its rows' windows; a global key that is also in
    a row's window is counted there, not twice.
    """
    nb = -(-lo.shape[-1] // block)
    pad = nb * block - lo.shape[-1]
    lo = F.pad(lo, (0, pad), value=lk).view(nb, block, 1)  # padded rows: empty window
    hi = F.pad(hi, (0, pad), value=0).view(nb, block, 1)
    start = lo.amin(dim=1)  # (nb, 1)
    span = max(int((hi.amax(dim=1) - start).max()), 0)
    pos = start + torch.arange(span, device=lo.device)  # (nb, S)
    g = min(num_global, lk)
    if g:
        pos = torch.cat([torch.arange(g, device=lo.device).expand(nb, g), pos], dim=-1)
    keep = (pos[:, None] >= lo) & (pos[:, None] < hi)  # (nb, block, g + S)
    if g:
        keep[..., :g] = ~keep[..., :g]
    return pos.clamp(max=max(lk - 1, 0)), keep


def banded_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None, band: Band, *,
                     is_causal: bool, dropout_p: float, scale: float, need_weights: bool,
                     first_row: int = 0, num_global: int = 0) -> AttentionOutput:
    """Rows ``first_row..`` of ``query`` attend their band (plus ``num_global`` leading keys)."""
    lk = key.shape[-2]
    if band.lo.dim() == 1:
        block = max(1, min(QUERY_BLOCK, band.lo.shape[-1]))  # few queries (a decoder step): no padded rows
        cols, keep = band_blocks(band.lo, band.hi, block, lk, num_global)
    else:  # per-(batch, head) windows: one query per block, its own gathered keys
        cols = band.lo[..., None] + torch.arange(band.width, device=query.device)  # (B, H, Lq, W)
        keep = (cols < band.hi[..., None])[..., None, :]  # (B, H, Lq, 1, W)
        cols, block = cols.clamp(max=max(lk - 1, 0)), 1
    return block_attention(query, key, value, attn_mask, cols, keep, block=block, first_row=first_row,
                           is_causal=is_causal, dropout_p=dropout_p, scale=scale,
                           need_weights=need_weights, center=band.center, sigma=band.sigma)


def block_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None, cols: Tensor,
                    keep: Tensor, *, block: int, first_row: int, is_causal: bool, dropout_p: float,
                    scale: float, need_weights: bool, center: Tensor | None = None, sigma: float = 1.0
                    ) -> AttentionOutput:
    """Rows ``first_row + n * block + [0, block)`` attend ``cols[..., n, :]`` where ``keep`` allows."""
    (bsz, heads, lq, dim), dv = query.shape, value.shape[-1]
    nb, width = cols.shape[-2:]
    nrows = lq - first_row
    # Padded rows (past Lq) read row Lq - 1 and are dropped at the end.
    rows = (first_row + torch.arange(nb * block, device=query.device)).clamp(max=lq - 1).view(nb, block, 1)
    q = F.pad(query[:, :, first_row:] * scale, (0, 0, 0, nb * block - nrows))
    q = q.view(bsz, heads, nb, block, dim)
    step = max(1, CHUNK_ELEMENTS // max(1, bsz * heads * width * (block + dim + dv)))
    run = _chunk if cols.dim() == 2 else partial(checkpoint, _chunk, use_reentrant=False)
    outs, dense = [], []
    for n in range(0, nb, step):
        out, weights = run(q[:, :, n:n + step], key, value, attn_mask, cols[..., n:n + step, :],
                           keep[..., n:n + step, :, :], rows[n:n + step], is_causal=is_causal,
                           dropout_p=dropout_p, need_weights=need_weights, center=center, sigma=sigma)
        outs.append(out)
        dense.append(weights)
    out = torch.cat(outs, dim=2).reshape(bsz, heads, nb * block, dv)[:, :, :nrows]
    if not need_weights:
        return AttentionOutput(out, None)
    weights = torch.cat(dense, dim=2).reshape(bsz, heads, nb * block, -1)[:, :, :nrows]
    return AttentionOutput(out, weights)


def _chunk(q: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None, cols: Tensor, keep: Tensor,
           rows: Tensor, *, is_causal: bool, dropout_p: float, need_weights: bool,
           center: Tensor | None, sigma: float) -> tuple[Tensor, Tensor | None]:
    k, v = _gather(key, cols), _gather(value, cols)  # (B, H, m, C, D)
    scores = q @ k.transpose(-2, -1)  # (B, H, m, block, C); q is pre-scaled
    cols = cols[..., None, :]  # (.., m, 1, C)
    if is_causal:
        keep = keep & (cols <= rows)
    if attn_mask is not None:
        user = mask_at(attn_mask, rows[None, None], cols if cols.dim() == 5 else cols[None, None])
        keep = keep & (user if user.dtype == torch.bool else user > float("-inf"))
        if user.dtype != torch.bool:
            scores = scores + user.masked_fill(user == float("-inf"), 0.0)
    weights = keep_softmax(scores, keep)
    if center is not None:  # Luong: p_t stays real-valued here, so gradients reach the predictor
        p = center[..., rows]  # (.., m, block, 1)
        weights = weights * torch.exp(-((cols - p) ** 2) / (2.0 * sigma ** 2)).to(weights.dtype)
    dropped = F.dropout(weights, p=dropout_p) if dropout_p > 0 else weights
    out = dropped @ v  # (B, H, m, block, Dv)
    if not need_weights:
        return out, None
    # Positions outside the pattern (clamped duplicates included) carry weight 0 and add nothing.
    index = cols.expand(weights.shape)
    return out, weights.new_zeros(*weights.shape[:-1], key.shape[-2]).scatter_add(-1, index, weights)


def _gather(t: Tensor, cols: Tensor) -> Tensor:
    """Rows ``cols`` of ``t`` (B, H, L, D): (B, H, nb, C, D); cols is (nb, C) or (B, H, nb, C)."""
    if cols.dim() == 2:
        return t[:, :, cols]
    flat = cols.reshape(*cols.shape[:2], -1, 1).expand(-1, -1, -1, t.shape[-1])
    return t.gather(2, flat).view(*cols.shape, t.shape[-1])
