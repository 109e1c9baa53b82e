"""``linformer``: softmax attention over keys and values projected along the length.

Paper: Wang et al., "Linformer: Self-Attention with Linear Complexity", arXiv:2006.04768, 2020.

    K' = E[:, :Lk] K,   V' = F[:, :Lk] V          E, F learned, (rank, max_len)
    out = softmax(Q K'^T * scale) V'               (Lq x rank scores)

Complexity: O(B H (Lq + D) Lk rank) time, O(B H (Lq + Lk) rank) memory; nothing of size
Lq x Lk is formed.

Limits: Lk <= max_len. Masks: key padding only; masked keys and values are zeroed before the
projection, so whatever they hold never reaches the output (a zero row still takes part in the
projection's mixing: K' and V' simply lack its contribution). A general per-query mask or
causal attention cannot be expressed after the length is mixed, so they are refused. Cross
attention (any Lq) and dropout on the (Lq x rank) weights are supported; the weights over the
original keys are not formed, so ``need_weights`` is refused. If every key is masked, K' = V' = 0
and the output is zeros.

Limit case: ``init="identity"`` with rank = max_len = Lk sets E = F = I, so K' = K, V' = V and
the result is exactly softmax attention (no mask, not causal). It is a test of the plumbing, not
a useful setting (no compression).

Args:
    max_len: the longest key length the projections cover.
    rank: the projected length k (default 256); rank >= Lk gives no compression.
    share_kv: use one projection for keys and values (F = E), as in the paper's sharing variant.
    init: ``xavier`` (uniform Xavier/Glorot) or ``identity`` (requires rank == max_len).

Shapes: query (B, H, Lq, D), key (B, H, Lk, D), value (B, H, Lk, Dv) -> (B, H, Lq, Dv);
parameters proj_k (and proj_v unless share_kv) (rank, max_len).
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
from ._kernelized import work_dtype
from ._masks import key_padding_keep
from ._math import attend_scores

INITS = ("xavier", "identity")


def _limit_kwargs(lq: int, lk: int, head_dim: int) -> dict:
    return {"max_len": lk, "rank": lk, "init": "identity"}


class LinformerAttention(DenseAttention):
    name = "linformer"
    capabilities = Capabilities(
        masks=frozenset({"key_padding"}),
        causal=False,
        weights=False,
        exact=False,
        needs=frozenset({"max_len"}),
        notes=("low-rank projection of keys/values along the length; Lk <= max_len",),
    )
    limit_case = LimitCase(
        kwargs=_limit_kwargs,
        masks=frozenset({"none"}),
        causal=False,
        description="init='identity' with rank = max_len = Lk: E = F = I, plain softmax attention",
    )

    def __init__(self, *, max_len: int, rank: int = 256, share_kv: bool = False,
                 init: str = "xavier") -> None:
        super().__init__()
        self.max_len = require_positive_int("max_len", max_len)
        self.rank = require_positive_int("rank", rank)
        if not isinstance(share_kv, bool):
            raise ValueError(f"share_kv must be a bool, got {share_kv!r}")
        self.init = require_choice("init", init, INITS)
        if init == "identity" and rank != max_len:
            raise ValueError(f"init='identity' requires rank == max_len, got rank={rank}, max_len={max_len}")
        self.share_kv = share_kv
        self.proj_k = nn.Parameter(torch.empty(rank, max_len))
        self.proj_v = None if share_kv else nn.Parameter(torch.empty(rank, max_len))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        for proj in (self.proj_k, self.proj_v):
            if proj is None:
                continue
            if self.init == "identity":
                proj.copy_(torch.eye(self.rank))
            else:
                nn.init.xavier_uniform_(proj)

    def extra_repr(self) -> str:
        return f"max_len={self.max_len}, rank={self.rank}, share_kv={self.share_kv}, init={self.init}"

    def _extra_reasons(self, query: Tensor, key: Tensor, attn_mask: Tensor | None, *,
                       is_causal: bool) -> list[str]:
        if key.shape[-2] > self.max_len:
            return [f"Lk={key.shape[-2]} > max_len={self.max_len} (the projections cover max_len keys)"]
        return []

    def _attend(self, query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None, *,
                is_causal: bool, dropout_p: float, scale: float, need_weights: bool
                ) -> AttentionOutput:
        lk = key.shape[-2]
        keep = key_padding_keep(attn_mask, query.shape[0], lk)  # (B|1, H|1, Lk)
        if keep is not None:  # where, not multiply: a masked inf or NaN must not leak through
            key = torch.where(keep.unsqueeze(-1), key, 0.0)
            value = torch.where(keep.unsqueeze(-1), value, 0.0)
        proj_v = self.proj_k if self.proj_v is None else self.proj_v
        key_low = self._project(self.proj_k[:, :lk], key)  # (B, H, rank, D)
        value_low = self._project(proj_v[:, :lk], value)  # (B, H, rank, Dv)
        scores = (query @ key_low.transpose(-2, -1)) * scale  # (B, H, Lq, rank)
        out, _ = attend_scores(scores, value_low, None, dropout_p)
        return AttentionOutput(out, None)

    @staticmethod
    def _project(proj: Tensor, x: Tensor) -> Tensor:
        """proj (rank, Lk) applied along the length of x (B, H, Lk, D); long sums in float32 for halves."""
        work = work_dtype(x.dtype)
        # einsum folds B, H, D into one matrix product instead of broadcasting proj B*H times.
        return torch.einsum("rl,bhld->bhrd", proj.to(work), x.to(work)).to(x.dtype)
