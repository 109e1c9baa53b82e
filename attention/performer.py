"""``performer``: FAVOR+ attention with positive orthogonal random features.

Paper: Choromanski et al., "Rethinking Attention with Performers", ICLR 2021.

    phi(x) = exp(W x - |x|^2 / 2) / sqrt(M),   x = q * sqrt(scale) (keys alike)
    E_W[phi(q)^T phi(k)] = exp(q . k * scale)
    out_i = phi(q_i)^T sum_j phi(k_j) v_j^T / (phi(q_i)^T sum_j phi(k_j))

W (M x D) holds blocks of D orthonormal Gaussian directions (QR of a Gaussian matrix), each row
rescaled by an independent chi(D) norm so that its rows are marginally N(0, I). W is drawn once
from ``seed`` at construction (a buffer, saved in the state dict); :meth:`redraw` draws anew.

Stabilisation: before the exp, keys subtract the max exponent (w^T k - |k|^2 / 2) over all
kept keys and features of their (batch, head) and each query subtracts its own max over
features. Both are constants that cancel between numerator and denominator, so the result is
unchanged and no exp overflows. A key whose exponents lie ~87 below that max underflows to
phi(k) = 0 in float32 (its true weight is negligible unless, causally, it is all a query sees).

Complexity: O(B H (Lq + Lk) M D) time, O(B H (Lq + Lk) M) memory; causal runs chunk-wise
(see ``_kernelized``). Nothing of size Lq x Lk is formed, except for so few queries and
keys that phi(Q) phi(K)^T is the cheaper route (see ``_kernelized``).

Limits: an unbiased approximation of softmax attention with no exact limit (the error shrinks
like 1/sqrt(M)); masks: key padding only (masked keys get phi(k) = 0); causal and cross
attention yes; no dropout (weights are never formed), no weights. Half-precision inputs are
computed in float32 and cast back. A query with no kept key gives zeros.

Args:
    head_dim: D, the query/key head dimension (the features are drawn for it).
    num_features: M, the number of random features (default 256).
    seed: seed of the feature draw (default 0).
    chunk_size: query positions per chunk of the causal prefix sums (default 128).

Shapes: query (B, H, Lq, D), key (B, H, Lk, D), value (B, H, Lk, Dv) -> (B, H, Lq, Dv).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._base import AttentionOutput, Capabilities, DenseAttention, require_positive_int
from ._kernelized import DEFAULT_CHUNK, kernel_attention, work_dtype
from ._masks import key_padding_keep


def orthogonal_features(num_features: int, head_dim: int, seed: int) -> Tensor:
    """(M, D) float32: stacked blocks of orthonormal Gaussian rows, each scaled by a chi(D) norm."""
    gen = torch.Generator().manual_seed(seed)
    blocks = []
    for _ in range(math.ceil(num_features / head_dim)):
        gauss = torch.randn(head_dim, head_dim, generator=gen, dtype=torch.float64)
        q, r = torch.linalg.qr(gauss)
        # Fixing the signs by diag(R) makes the orthonormal basis uniformly (Haar) distributed.
        blocks.append((q * torch.sign(torch.diagonal(r))).T)  # rows orthonormal
    directions = torch.cat(blocks)[:num_features]  # (M, D)
    norms = torch.randn(num_features, head_dim, generator=gen, dtype=torch.float64).norm(dim=-1)
    return (directions * norms.unsqueeze(-1)).float()


def positive_features(x: Tensor, w: Tensor, keep: Tensor | None, *, per_row: bool) -> Tensor:
    """phi(x) for x (B, H, L, D) already scaled by sqrt(scale); returns (B, H, L, M).

    ``per_row`` (queries): each row subtracts its own max. Otherwise (keys) one max over every
    kept row and feature of a (batch, head) is subtracted; ``keep`` (B|1, H|1, L) zeroes masked rows.
    """
    exponent = x @ w.T - 0.5 * (x * x).sum(dim=-1, keepdim=True)  # (B, H, L, M)
    if keep is not None:
        exponent = exponent.masked_fill(~keep.unsqueeze(-1), float("-inf"))
    dims = (-1,) if per_row else (-2, -1)
    shift = exponent.detach().amax(dim=dims, keepdim=True)  # the constant that cancels
    shift = torch.where(torch.isfinite(shift), shift, 0.0)  # every key masked: nothing to shift
    return torch.exp(exponent - shift) / math.sqrt(w.shape[0])


class PerformerAttention(DenseAttention):
    name = "performer"
    capabilities = Capabilities(
        masks=frozenset({"key_padding"}),
        dropout=False,
        weights=False,
        exact=False,
        needs=frozenset({"head_dim"}),
        notes=("FAVOR+ positive orthogonal random features; unbiased, no exact limit",),
    )
    limit_case = None

    def __init__(self, *, head_dim: int, num_features: int = 256, seed: int = 0,
                 chunk_size: int = DEFAULT_CHUNK) -> None:
        super().__init__()
        self.head_dim = require_positive_int("head_dim", head_dim)
        self.num_features = require_positive_int("num_features", num_features)
        self.chunk_size = require_positive_int("chunk_size", chunk_size)
        seed = require_positive_int("seed", seed, minimum=0)
        self.register_buffer("features", orthogonal_features(num_features, head_dim, seed))

    def extra_repr(self) -> str:
        return f"head_dim={self.head_dim}, num_features={self.num_features}, chunk_size={self.chunk_size}"

    @torch.no_grad()
    def redraw(self, seed: int) -> None:
        """Draw new random features from ``seed`` (in place: device and dtype are kept)."""
        seed = require_positive_int("seed", seed, minimum=0)
        self.features.copy_(orthogonal_features(self.num_features, self.head_dim, seed))

    def _extra_reasons(self, query: Tensor, key: Tensor, attn_mask: Tensor | None, *,
                       is_causal: bool) -> list[str]:
        if query.shape[-1] != self.head_dim:
            return [f"head dim {query.shape[-1]} != head_dim={self.head_dim} the features were drawn for"]
        return []

    def _attend(self, query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None, *,
                is_causal: bool, dropout_p: float, scale: float, need_weights: bool
                ) -> AttentionOutput:
        work = work_dtype(query.dtype)
        w = self.features.to(work)  # (M, D)
        root = math.sqrt(scale)  # split the scale evenly: q.k * scale = (q * root) . (k * root)
        keep = key_padding_keep(attn_mask, query.shape[0], key.shape[-2])  # (B|1, H|1, Lk)
        q_feat = positive_features(query.to(work) * root, w, None, per_row=True)  # (B, H, Lq, M)
        k_feat = positive_features(key.to(work) * root, w, keep, per_row=False)  # (B, H, Lk, M)
        out = kernel_attention(q_feat, k_feat, value.to(work), keep, is_causal=is_causal,
                               chunk_size=self.chunk_size)
        return AttentionOutput(out.to(query.dtype), None)
