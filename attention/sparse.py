"""``sparse``: attention over a fixed sparsity pattern (sliding window + global tokens, or strided).

Papers: Beltagy, Peters & Cohan, "Longformer: The Long-Document Transformer", arXiv 2020, and
Zaheer et al., "Big Bird: Transformers for Longer Sequences", NeurIPS 2020 (``window_global``);
Child, Gray, Radford & Sutskever, "Generating Long Sequences with Sparse Transformers", arXiv
2019, fixed pattern (``strided``).

    out = masked_softmax(Q K^T * scale + M + log P) V,   P = the boolean pattern below

    window_global: P[i, j] = |i - j| <= window  or  j < num_global  or  i < num_global
    strided:       P[i, j] = floor(i / block) == floor(j / block)  or  j mod block >= block - num_summary

``is_causal`` adds j <= i and a user mask is ANDed (boolean) or added (additive) on top, so the
result equals ``reference`` run with the pattern AND the mask. Positions are top-left aligned
(as torch's causal mask), which defines both patterns for cross-attention (Lq != Lk) too.

Complexity: window_global O(B H L (2 window + 1 + num_global + block) D) time and memory
(queries in blocks of 128 against the key slice their windows cover, the global keys as extra
columns, the few global query rows densely); strided O(B H L (block + L num_summary / block) D)
(each query block against its own keys plus the gathered summary columns). Blocks run a bounded
chunk at a time (``_banded.CHUNK_ELEMENTS``), so forward memory is the output plus one chunk.
Lq x Lk is built only for ``need_weights`` and by :meth:`SparseAttention.pattern_mask`.

Limits: approximate; exact when the pattern is full (``window >= max(Lq, Lk)``, or a strided
``block >= max(Lq, Lk)``). Dropout applies to the pattern weights.

Args:
    pattern: ``window_global`` (default) or ``strided``.
    window: keys on each side of the query (window_global; default 64).
    num_global: leading positions that attend, and are attended by, everything (window_global;
        default 1, a CLS-like token).
    block: block length (strided; default 128, as in Child et al.).
    num_summary: summary columns at the end of every block (strided; default 8, Child et al.'s c).

Shapes: query (B, H, Lq, D), key (B, H, Lk, D), value (B, H, Lk, Dv) -> (B, H, Lq, Dv).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._banded import Band, banded_attention, block_attention
from ._base import (
    AttentionOutput,
    Capabilities,
    DenseAttention,
    LimitCase,
    require_choice,
    require_positive_int,
)

DEFAULTS = {"window_global": {"window": 64, "num_global": 1}, "strided": {"block": 128, "num_summary": 8}}


class SparseAttention(DenseAttention):
    name = "sparse"
    capabilities = Capabilities(exact=False, decode=False,
                                notes=("fixed pattern; O(L) memory for window_global",))
    limit_case = LimitCase(
        kwargs=lambda lq, lk, head_dim: {"pattern": "window_global", "window": max(lq, lk)},
        masks=frozenset({"none", "key_padding", "boolean", "additive"}),
        causal=True,
        description="window >= max(Lq, Lk): the pattern is full, plain softmax attention",
    )

    def __init__(self, *, pattern: str = "window_global", window: int | None = None,
                 num_global: int | None = None, block: int | None = None, num_summary: int | None = None
                 ) -> None:
        super().__init__()
        self.pattern = require_choice("pattern", pattern, tuple(DEFAULTS))
        given = {"window": window, "num_global": num_global, "block": block, "num_summary": num_summary}
        args = dict(DEFAULTS[pattern])
        for arg, value in given.items():
            if value is None:
                continue
            if arg not in args:
                raise ValueError(f"{arg}={value!r} does not apply to pattern={pattern!r} "
                                 f"(its arguments: {sorted(args)})")
            args[arg] = require_positive_int(arg, value, minimum=1 if arg == "block" else 0)
        if pattern == "strided" and args["num_summary"] > args["block"]:
            raise ValueError(f"num_summary must be <= block={args['block']}, got {args['num_summary']}")
        self.window, self.num_global = args.get("window", 0), args.get("num_global", 0)
        self.block, self.num_summary = args.get("block", 0), args.get("num_summary", 0)

    def extra_repr(self) -> str:
        if self.pattern == "strided":
            return f"pattern=strided, block={self.block}, num_summary={self.num_summary}"
        return f"pattern=window_global, window={self.window}, num_global={self.num_global}"

    def covers_every_key(self, lq: int, lk: int) -> bool:
        """Full pattern at the longest lengths; every shorter call keeps the top-left block of it
        (``pattern_mask`` of positions i < lq, j < lk), so it is full too."""
        return bool(self.pattern_mask(lq, lk).all())

    def pattern_mask(self, lq: int, lk: int, device: torch.device | str = "cpu") -> Tensor:
        """The dense (Lq, Lk) bool pattern, True = may attend (for reports and tests; O(Lq Lk))."""
        i = torch.arange(lq, device=device)[:, None]
        j = torch.arange(lk, device=device)
        if self.pattern == "strided":
            return (i // self.block == j // self.block) | (j % self.block >= self.block - self.num_summary)
        g = self.num_global
        return ((i - j).abs() <= self.window) | (j < g) | (i < g)

    def _attend(self, query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None, *,
                is_causal: bool, dropout_p: float, scale: float, need_weights: bool
                ) -> AttentionOutput:
        kw = dict(is_causal=is_causal, dropout_p=dropout_p, scale=scale, need_weights=need_weights)
        if self.pattern == "strided":
            return self._strided(query, key, value, attn_mask, **kw)
        return self._window_global(query, key, value, attn_mask, **kw)

    def _window_global(self, query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None, *,
                       is_causal: bool, dropout_p: float, scale: float, need_weights: bool
                       ) -> AttentionOutput:
        lq, lk, g = query.shape[-2], key.shape[-2], min(self.num_global, query.shape[-2])
        kw = dict(is_causal=is_causal, dropout_p=dropout_p, scale=scale, need_weights=need_weights)
        i = torch.arange(g, lq, device=query.device)
        lo, hi = (i - self.window).clamp(0, lk), (i + self.window + 1).clamp(0, lk)
        if is_causal:  # keys after the query are masked anyway: do not compute them
            hi = torch.minimum(hi, i + 1)
        parts = []
        if g:  # global query rows attend every key: one dense block of g rows
            cols = torch.arange(lk, device=query.device)[None]  # (1, Lk)
            keep = torch.ones(1, g, lk, dtype=torch.bool, device=query.device)
            parts.append(block_attention(query[:, :, :g], key, value, attn_mask, cols, keep, block=g,
                                         first_row=0, **kw))
        if g < lq:
            parts.append(banded_attention(query, key, value, attn_mask, Band(lo, hi), first_row=g,
                                          num_global=self.num_global, **kw))
        if len(parts) == 1:
            return parts[0]
        weights = torch.cat([p.weights for p in parts], dim=-2) if need_weights else None
        return AttentionOutput(torch.cat([p.output for p in parts], dim=-2), weights)

    def _strided(self, query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None, *,
                 is_causal: bool, dropout_p: float, scale: float, need_weights: bool) -> AttentionOutput:
        lq, lk, b, dev = query.shape[-2], key.shape[-2], self.block, query.device
        nb = -(-lq // b)
        summary = torch.arange(lk, device=dev)
        summary = summary[summary % b >= b - self.num_summary]  # (Ns,)
        own = torch.arange(nb * b, device=dev).view(nb, b)  # the keys of each query block's own block
        # A summary key inside the query's own block is counted there, not twice.
        other = summary // b != torch.arange(nb, device=dev)[:, None]  # (nb, Ns)
        cols = torch.cat([own, summary.expand(nb, -1)], dim=-1)  # (nb, b + Ns)
        keep = torch.cat([own < lk, other], dim=-1)[:, None].expand(nb, b, -1)  # (nb, b, b + Ns)
        return block_attention(query, key, value, attn_mask, cols.clamp(max=lk - 1), keep, block=b,
                               first_row=0, is_causal=is_causal, dropout_p=dropout_p, scale=scale,
                               need_weights=need_weights)
