"""Shared machinery of the kernelised variants (``performer``, ``linear``), written once.

With a non-negative feature map phi, softmax attention is replaced by

    out_i = phi(q_i)^T (sum_j phi(k_j) v_j^T) / (phi(q_i)^T sum_j phi(k_j))

where j runs over every kept key (non-causal) or over kept keys j <= i (causal, top-left
aligned as in torch). Non-causal: the sums S = phi(K)^T V (M x Dv) and z = phi(K)^T 1 are formed
once, so nothing of size Lq x Lk exists, except where the other association is cheaper: for few
queries and keys (a decoder step over a handful of regions), A = phi(Q) phi(K)^T (Lq x Lk) and
A V, A 1 take fewer operations than S and z. The sums are the same, and A then holds fewer than
(Lq + Lk) M elements, the size of the features themselves. Causal: the prefix sums are carried
between chunks of ``chunk_size`` query positions; inside a chunk the few keys of the same chunk
are handled by a small masked (chunk x chunk) product. Memory is O(L M + M Dv) per head (plus one
state per chunk kept by autograd when gradients are needed), never O(L M Dv).

Key padding zeroes phi(k) and v of masked keys, so they add nothing to S or z, whatever they
hold. A query with no kept key has a zero denominator; its output is defined as zeros (with
zero, finite gradients).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._math import LOW_PRECISION

DEFAULT_CHUNK = 128


def work_dtype(dtype: torch.dtype) -> torch.dtype:
    """Feature maps and sums of half-precision inputs are computed in float32 (exp and long sums)."""
    return torch.float32 if dtype in LOW_PRECISION else dtype


def kernel_attention(
    q_feat: Tensor,  # (B, H, Lq, M), non-negative
    k_feat: Tensor,  # (B, H, Lk, M), non-negative
    value: Tensor,  # (B, H, Lk, Dv)
    key_keep: Tensor | None,  # (B or 1, H or 1, Lk) bool, True = key may be attended
    *,
    is_causal: bool,
    chunk_size: int = DEFAULT_CHUNK,
) -> Tensor:
    """Normalised linear attention with phi(Q), phi(K) given; returns (B, H, Lq, Dv)."""
    if key_keep is not None:  # values too: 0 * inf or NaN held by a padded position would leak
        k_feat = torch.where(key_keep.unsqueeze(-1), k_feat, 0.0)
        value = torch.where(key_keep.unsqueeze(-1), value, 0.0)
    if is_causal:
        num, den = _causal_sums(q_feat, k_feat, value, chunk_size)
    else:
        num, den = _global_sums(q_feat, k_feat, value)
    alive = den > 0  # (B, H, Lq, 1); False only where no key is left (or all features underflow)
    return torch.where(alive, num / torch.where(alive, den, 1.0), 0.0)


def _global_sums(q_feat: Tensor, k_feat: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
    (lq, m), (lk, dv) = q_feat.shape[-2:], value.shape[-2:]
    if quadratic_is_cheaper(lq, lk, m, dv):
        sim = q_feat @ k_feat.transpose(-2, -1)  # (B, H, Lq, Lk): fewer than (Lq + Lk) M elements
        return sim @ value, sim.sum(dim=-1, keepdim=True)
    state = k_feat.transpose(-2, -1) @ value  # (B, H, M, Dv)
    norm = k_feat.sum(dim=-2).unsqueeze(-1)  # (B, H, M, 1)
    return q_feat @ state, q_feat @ norm  # (B, H, Lq, Dv), (B, H, Lq, 1)


def quadratic_is_cheaper(lq: int, lk: int, m: int, dv: int) -> bool:
    """(phi(Q) phi(K)^T) [V, 1] takes fewer multiply-adds than phi(Q) (phi(K)^T [V, 1])."""
    return lq * lk * (m + dv + 1) < (lk + lq) * m * (dv + 1)


def _causal_sums(q_feat: Tensor, k_feat: Tensor, value: Tensor, chunk: int) -> tuple[Tensor, Tensor]:
    lq, lk = q_feat.shape[-2], k_feat.shape[-2]
    batch = torch.broadcast_shapes(q_feat.shape[:-2], k_feat.shape[:-2])
    state = q_feat.new_zeros(*batch, q_feat.shape[-1], value.shape[-1])  # (B, H, M, Dv): keys < start
    norm = q_feat.new_zeros(*batch, q_feat.shape[-1], 1)  # (B, H, M, 1)
    nums, dens = [], []
    for start in range(0, max(lq, 1), chunk):  # at least once, so that Lq = 0 gives an empty result
        stop = min(start + chunk, lq)
        qc = q_feat[..., start:stop, :]  # (B, H, c, M)
        kc = k_feat[..., start:min(stop, lk), :]  # (B, H, c', M), empty once keys run out
        vc = value[..., start:min(stop, lk), :]
        # Query start+a sees key start+b iff b <= a: the lower triangle (same offset on both sides).
        intra = (qc @ kc.transpose(-2, -1)).tril()  # (B, H, c, c')
        nums.append(qc @ state + intra @ vc)
        dens.append(qc @ norm + intra.sum(dim=-1, keepdim=True))
        state = state + kc.transpose(-2, -1) @ vc
        norm = norm + kc.sum(dim=-2).unsqueeze(-1)
    return torch.cat(nums, dim=-2), torch.cat(dens, dim=-2)
