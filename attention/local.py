"""``local``: attention restricted to a window of keys (sliding window; Luong local-m and local-p).

Paper: Luong, Pham & Manning, "Effective Approaches to Attention-based Neural Machine
Translation", EMNLP 2015 (section 3.2, local attention); the sliding window for self-attention
as in Beltagy, Peters & Cohan, "Longformer: The Long-Document Transformer", arXiv 2020.

    a_t = masked_softmax(q_t K_W^T * scale + M)  over the window W(t) = [p_t - D, p_t + D]
    a_t(s) <- a_t(s) * exp(-(s - p_t)^2 / (2 sigma^2)),  sigma = D / 2   (Gaussian, optional)
    out_t = a_t V_W

Modes (the window centre p_t; positions are top-left aligned like torch's causal mask):
    sliding: p_t = t, self-attention style, |t - s| <= D (defined for Lq != Lk as well: queries
        past Lk + D have no key and give zeros). No Gaussian.
    local-m: monotonic alignment p_t = min(t, Lk - 1). Gaussian off by default.
    local-p: predictive alignment p_t = S * sigmoid(v_p^T tanh(W_p q_t)), per batch and head,
        with learned W_p (predictor_dim x head_dim) and v_p; the window is centred on round(p_t).
        S is the source length: Lk, or with a mask one past each row's last allowed key (so a
        right-padded sentence aligns as it does alone).
        Gaussian on by default; p_t stays real-valued inside it, so W_p and v_p are trained
        through the Gaussian only (the window placement itself is not differentiable).
With the Gaussian the weights no longer sum to 1 (as in Luong); the returned weights include it.
``is_causal`` further keeps only keys s <= t; masks combine with the window (AND).

Complexity: O(B H Lq (2D + 1 + block) Dh) time. Queries go in blocks of 128 against the
contiguous key slice their windows cover (local-p gathers each query's own 2D + 1 keys
instead), a bounded chunk of blocks at a time (``_banded.CHUNK_ELEMENTS``), so forward memory is
the O(B H Lq Dv) output plus one chunk; autograd keeps O(B H Lq (2D + 1 + block)) weights
(local-p recomputes its chunks in backward instead). Lq x Lk is built only for ``need_weights``.

Limits: approximate (exact when the window covers every key: ``window >= max(Lq, Lk)`` and no
Gaussian); attention dropout applies to the window weights.

Args:
    mode: ``sliding`` (default), ``local-m`` or ``local-p``.
    window: D, keys on each side of the centre (default 64: Longformer-scale local context that
        keeps L=8192 cheap; Luong used D=10 for translation).
    gaussian: multiply by the Gaussian; None = the mode's default (local-p on, local-m off);
        not allowed for ``sliding``.
    head_dim: query dimension, needed by ``local-p`` (ignored otherwise).
    predictor_dim: hidden size of the local-p predictor (default head_dim).

Shapes: query (B, H, Lq, Dh), key (B, H, Lk, Dh), value (B, H, Lk, Dv) -> (B, H, Lq, Dv).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._banded import Band, banded_attention
from ._base import (
    AttentionOutput,
    Capabilities,
    DenseAttention,
    LimitCase,
    require_choice,
    require_positive_int,
)

MODES = ("sliding", "local-m", "local-p")
DEFAULT_WINDOW = 64


class LocalAttention(DenseAttention):
    name = "local"
    capabilities = Capabilities(
        exact=False, needs=frozenset({"head_dim"}), decode=False,
        notes=("window of 2*window+1 keys per query; O(L) memory unless weights are requested",),
    )
    limit_case = LimitCase(
        kwargs=lambda lq, lk, head_dim: {"mode": "sliding", "window": max(lq, lk), "head_dim": head_dim},
        masks=frozenset({"none", "key_padding", "boolean", "additive"}),
        causal=True,
        description="sliding window >= max(Lq, Lk) covers every key: plain softmax attention",
    )

    def __init__(self, *, mode: str = "sliding", window: int = DEFAULT_WINDOW, gaussian: bool | None = None,
                 head_dim: int | None = None, predictor_dim: int | None = None) -> None:
        super().__init__()
        self.mode = require_choice("mode", mode, MODES)
        self.window = require_positive_int("window", window, minimum=0)
        if gaussian is not None and not isinstance(gaussian, bool):
            raise ValueError(f"gaussian must be True, False or None, got {gaussian!r}")
        if mode == "sliding" and gaussian is not None:
            raise ValueError(f"gaussian={gaussian!r} applies to local-m/local-p only, not mode='sliding'")
        self.gaussian = (mode == "local-p") if gaussian is None else gaussian
        if self.gaussian and window < 1:
            raise ValueError(f"window must be >= 1 with the Gaussian (sigma = window / 2), got {window}")
        if mode != "local-p" and predictor_dim is not None:
            raise ValueError(f"predictor_dim={predictor_dim!r} applies to mode='local-p' only")
        if mode == "local-p":
            self._build_predictor(head_dim, predictor_dim)
        self.head_dim = head_dim

    def _build_predictor(self, head_dim: int | None, predictor_dim: int | None) -> None:
        if head_dim is None:
            raise ValueError("head_dim must be given for mode='local-p' (the predictor W_p reads q_t)")
        require_positive_int("head_dim", head_dim)
        hidden = require_positive_int("predictor_dim", head_dim if predictor_dim is None else predictor_dim)
        self.w_p = nn.Linear(head_dim, hidden, bias=False)  # W_p: (P, Dh)
        self.v_p = nn.Linear(hidden, 1, bias=False)  # v_p^T: (1, P)

    def extra_repr(self) -> str:
        return f"mode={self.mode}, window={self.window}, gaussian={self.gaussian}"

    def covers_every_key(self, lq: int, lk: int) -> bool:
        """sliding / local-m without the Gaussian: query i sees keys [c - window, c + window] with
        c <= i <= lq - 1, so every key once window >= max(lq, lk) - 1. local-p places its window
        where it predicts and never promises that."""
        return self.mode != "local-p" and not self.gaussian and self.window >= max(lq, lk) - 1

    def _extra_reasons(self, query: Tensor, key: Tensor, attn_mask: Tensor | None, *,
                       is_causal: bool) -> list[str]:
        if self.mode == "local-p" and query.shape[-1] != self.head_dim:
            return [f"local-p was built for head_dim={self.head_dim}, got query head dim {query.shape[-1]}"]
        return []

    def _attend(self, query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None, *,
                is_causal: bool, dropout_p: float, scale: float, need_weights: bool
                ) -> AttentionOutput:
        band = self._band(query, key.shape[-2], is_causal, attn_mask)
        return banded_attention(query, key, value, attn_mask, band, is_causal=is_causal,
                                dropout_p=dropout_p, scale=scale, need_weights=need_weights)

    def predicted_position(self, query: Tensor, lk: int | Tensor) -> Tensor:
        """local-p centres p_t = S * sigmoid(v_p^T tanh(W_p q_t)), real-valued in [0, S]: (B, H, Lq).

        S is the source length: ``lk``, or per row (B, H, Lq) the number of keys its mask allows.
        """
        hidden = torch.tanh(F.linear(query, self.w_p.weight.to(query.dtype)))  # (B, H, Lq, P)
        return lk * torch.sigmoid(F.linear(hidden, self.v_p.weight.to(query.dtype))).squeeze(-1)

    @staticmethod
    def source_lengths(query: Tensor, lk: int, attn_mask: Tensor | None) -> Tensor | int:
        """Luong's S for local-p: ``lk`` without a mask, else per query row (B, H, Lq) one past its last
        allowed key, so a right-padded sentence is aligned as it is alone."""
        if attn_mask is None:
            return lk
        allowed = attn_mask if attn_mask.dtype == torch.bool else attn_mask > float("-inf")
        allowed = allowed.reshape((1,) * (4 - allowed.dim()) + tuple(allowed.shape))
        position = torch.arange(1, allowed.shape[-1] + 1, device=allowed.device)
        return (allowed * position).amax(-1).expand(query.shape[:-1])  # (B, H, Lq)

    def _band(self, query: Tensor, lk: int, is_causal: bool, attn_mask: Tensor | None = None) -> Band:
        lq, d, dev = query.shape[-2], self.window, query.device
        sigma = d / 2.0
        if self.mode == "local-p":
            length = self.source_lengths(query, lk, attn_mask)
            center = self.predicted_position(query, length.to(query.dtype) if torch.is_tensor(length)
                                             else length)  # (B, H, Lq)
            mid = center.detach().round().long()
            end = length if torch.is_tensor(length) else torch.full_like(mid, lk)
            hi = torch.minimum(mid + d + 1, end).clamp(min=0)
            lo = (mid - d).clamp(min=0, max=lk)
            return Band(torch.minimum(lo, hi), hi, center if self.gaussian else None, sigma, width=2 * d + 1)
        i = torch.arange(lq, device=dev)
        mid = i if self.mode == "sliding" else i.clamp(max=lk - 1)
        lo, hi = (mid - d).clamp(0, lk), (mid + d + 1).clamp(0, lk)
        if is_causal:  # keys after the query are masked anyway: do not compute them
            hi = torch.minimum(hi, i + 1)
        center = mid.to(query.dtype) if self.gaussian else None
        return Band(lo, hi, center, sigma)
