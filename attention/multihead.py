"""``MultiHeadAttention``: projections around any dense variant, a drop-in for ``nn.MultiheadAttention``.

Paper: Vaswani et al., "Attention Is All You Need", NeurIPS 2017 (section 3.2.2).

    MultiHead(Q, K, V) = Concat(head_1, ..., head_H) W^O,  head_h = Attn(Q W_h^Q, K W_h^K, V W_h^V)

where Attn is any registered dense variant. Masks follow ``torch.nn.MultiheadAttention`` (not
SDPA), so that swapping the module into an existing model changes nothing: in
``key_padding_mask`` (B, S) and ``attn_mask`` (L, S) or (B * H, L, S), a boolean True marks a
position that may NOT be attended and a float is added to the scores. ``is_causal`` applies a
causal mask (it may be combined with the masks). Weights, when asked for, are those before
dropout, averaged over heads unless ``average_attn_weights=False``.

Args:
    embed_dim: E, the model width; num_heads: H (E must divide by H).
    variant: name of a dense variant in ``attention.REGISTRY``; variant_kwargs: its arguments.
    dropout: attention-weight dropout in training (the variant must support dropout).
    bias: biases in the projections; kdim, vdim: key / value input widths (default E).
    batch_first: inputs (B, L, E) if True, else (L, B, E) as torch's default.
    max_len: longest key sequence, for variants that need it (e.g. ``linformer``).
    num_kv_heads: key / value heads (default H): grouped-query attention with 1 < Hkv < H
        (Ainslie et al., EMNLP 2023), multi-query with Hkv = 1 (Shazeer 2019); H must divide by
        Hkv, query head h reads key/value head h // (H / Hkv). The key and value projections
        shrink to Hkv x head_dim. A variant that declares ``capabilities.gqa`` (reference, sdpa)
        receives the Hkv heads as they are; for the others the module repeats each key/value
        head H / Hkv times before the call (the same function, none of the memory saving in the
        attention itself) and says so: ``kv_repeat`` and ``extra_repr``.
    positions: ``none`` (the default: positions come from outside, e.g. added embeddings),
        ``rope`` (rotary: the query and key heads are rotated by their positions, base
        ``rope_base``) or ``alibi`` (linear biases per head, added to the scores as an additive
        mask; a variant without additive masks refuses it with its reason). Self-attention only:
        query, key and value are the same tensor (``attention.positions``).

Shapes: query (B, L, E), key (B, S, kdim), value (B, S, vdim) -> output (B, L, E), weights
(B, L, S) or (B, H, L, S) (H query heads, grouped or not).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._base import DenseAttention, require_choice, require_positive_int
from .positions import POSITIONS, alibi_bias, apply_rope, rope_tables


class MultiHeadAttention(nn.Module):
    def __init__(self, embed_dim: int, num_heads: int, *, variant: str = "sdpa",
                 variant_kwargs: dict | None = None, dropout: float = 0.0, bias: bool = True,
                 kdim: int | None = None, vdim: int | None = None, batch_first: bool = True,
                 max_len: int | None = None, num_kv_heads: int | None = None, positions: str = "none",
                 rope_base: float = 10000.0) -> None:
        super().__init__()
        from . import build_in_context  # the registry lives in the package root

        self.embed_dim = require_positive_int("embed_dim", embed_dim)
        self.num_heads = require_positive_int("num_heads", num_heads)
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim={embed_dim} must be divisible by num_heads={num_heads}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.num_kv_heads = require_positive_int("num_kv_heads", num_heads if num_kv_heads is None
                                                 else num_kv_heads)
        if num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads={num_heads} must be divisible by num_kv_heads={self.num_kv_heads}")
        self.head_dim = embed_dim // num_heads
        self.positions = require_choice("positions", positions, POSITIONS)
        if positions == "rope":
            rope_tables(1, self.head_dim, base=rope_base)  # an odd head dim or a bad base fails here
        self.rope_base = float(rope_base)
        self.dropout = dropout
        self.batch_first = batch_first
        kv_width = self.num_kv_heads * self.head_dim
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.k_proj = nn.Linear(kdim or embed_dim, kv_width, bias=bias)
        self.v_proj = nn.Linear(vdim or embed_dim, kv_width, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.attention: DenseAttention = build_in_context(
            variant, head_dim=self.head_dim, num_heads=num_heads, max_len=max_len, **(variant_kwargs or {}))
        if dropout > 0 and not self.attention.capabilities.dropout:
            raise ValueError(f"dropout={dropout} but variant {variant!r} has no attention dropout")
        # query heads per key/value head that the module repeats itself (1: none)
        native = self.num_kv_heads == num_heads or self.attention.capabilities.gqa
        self.kv_repeat = 1 if native else num_heads // self.num_kv_heads

    def extra_repr(self) -> str:
        text = f"num_heads={self.num_heads}"
        if self.num_kv_heads != self.num_heads:
            how = (f"each repeated {self.kv_repeat}x before {self.attention.name}, which takes one per query "
                   f"head" if self.kv_repeat > 1 else f"passed grouped to {self.attention.name}")
            text += f", num_kv_heads={self.num_kv_heads} ({how})"
        return text + (f", positions={self.positions}" if self.positions != "none" else "")

    @classmethod
    def from_torch(cls, mha: nn.MultiheadAttention, *, variant: str = "sdpa",
                   variant_kwargs: dict | None = None, max_len: int | None = None
                   ) -> MultiHeadAttention:
        """Build from an existing ``nn.MultiheadAttention``, copying its weights and layout."""
        if mha.bias_k is not None or mha.add_zero_attn:
            raise ValueError("mha uses add_bias_kv or add_zero_attn, which MultiHeadAttention lacks")
        has_bias = mha.in_proj_bias is not None
        new = cls(mha.embed_dim, mha.num_heads, variant=variant, variant_kwargs=variant_kwargs,
                  dropout=mha.dropout, bias=has_bias, kdim=mha.kdim, vdim=mha.vdim,
                  batch_first=mha.batch_first, max_len=max_len)
        new.to(device=mha.out_proj.weight.device, dtype=mha.out_proj.weight.dtype)
        e = mha.embed_dim
        with torch.no_grad():
            if mha._qkv_same_embed_dim:
                weights = mha.in_proj_weight.split(e)
            else:
                weights = (mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight)
            for proj, w in zip((new.q_proj, new.k_proj, new.v_proj), weights, strict=True):
                proj.weight.copy_(w)
            if has_bias:
                for proj, b in zip((new.q_proj, new.k_proj, new.v_proj), mha.in_proj_bias.split(e),
                                   strict=True):
                    proj.bias.copy_(b)
                new.out_proj.bias.copy_(mha.out_proj.bias)
            new.out_proj.weight.copy_(mha.out_proj.weight)
        return new.train(mha.training)

    def forward(self, query: Tensor, key: Tensor | None = None, value: Tensor | None = None, *,
                key_padding_mask: Tensor | None = None, attn_mask: Tensor | None = None,
                is_causal: bool = False, need_weights: bool = False,
                average_attn_weights: bool = True) -> tuple[Tensor, Tensor | None]:
        key = query if key is None else key
        value = key if value is None else value
        if self.positions != "none" and not (key is query and value is query):
            raise ValueError(f"positions={self.positions!r} is for self-attention: pass the same tensor as "
                             "query, key and value")
        for arg, t in (("query", query), ("key", key), ("value", value)):
            if not isinstance(t, Tensor) or t.dim() != 3:
                raise ValueError(f"{arg} must be a 3-D tensor {self._layout()}, got "
                                 f"{tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__}")
        if not self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        b, lq, ls = query.shape[0], query.shape[1], key.shape[1]
        q = self._heads(self.q_proj(query), self.num_heads)  # (B, H, L, Dh)
        k = self._heads(self.k_proj(key), self.num_kv_heads)  # (B, Hkv, S, Dh)
        v = self._heads(self.v_proj(value), self.num_kv_heads)
        if self.positions == "rope":  # before any repeat: the rotation is the same for every head
            q, k = apply_rope(q, base=self.rope_base), apply_rope(k, base=self.rope_base)
        if self.kv_repeat > 1:
            k, v = (t.repeat_interleave(self.kv_repeat, dim=1) for t in (k, v))
        mask = self._merge_masks(key_padding_mask, attn_mask, b, lq, ls, q.dtype)
        if self.positions == "alibi":
            bias = alibi_bias(self.num_heads, lq, ls, causal=is_causal, device=q.device, dtype=q.dtype)
            if mask is not None and mask.dtype == torch.bool:  # True = may attend -> 0 / -inf
                mask = torch.zeros(mask.shape, dtype=q.dtype, device=q.device).masked_fill(~mask, -torch.inf)
            mask = bias if mask is None else bias + mask
        out, weights = self.attention(q, k, v, mask, is_causal=is_causal,
                                      dropout_p=self.dropout if self.training else 0.0,
                                      need_weights=need_weights)
        out = self.out_proj(out.transpose(1, 2).reshape(b, lq, self.embed_dim))  # (B, L, E)
        if not self.batch_first:
            out = out.transpose(0, 1)
        if weights is not None and average_attn_weights:
            weights = weights.mean(dim=1)
        return out, weights

    def project_kv(self, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
        """Key and value inputs (B, S, kdim / vdim), batch first -> their heads (B, Hkv, S, Dh): what
        a key/value cache keeps (``attend_projected`` attends over them)."""
        return (self._heads(self.k_proj(key), self.num_kv_heads),
                self._heads(self.v_proj(value), self.num_kv_heads))

    def attend_projected(self, query: Tensor, k: Tensor, v: Tensor, *, key_padding_mask: Tensor | None = None,
                         need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        """Queries (B, L, E), batch first, over already projected keys and values (B, Hkv, S, Dh),
        e.g. a decoder's cache of every earlier position: no causal mask (the caller passes the
        keys a query may see); ``key_padding_mask`` (B, S) True = blocked. Returns (B, L, E) and
        the weights averaged over heads (B, L, S) when asked. Not with ``positions``, whose
        rotations and biases depend on where the queries are."""
        if self.positions != "none":
            raise ValueError(f"attend_projected does not place queries: positions={self.positions!r} "
                             "needs the whole sequence (forward)")
        b, lq = query.shape[0], query.shape[1]
        q = self._heads(self.q_proj(query), self.num_heads)
        if self.kv_repeat > 1:
            k, v = (t.repeat_interleave(self.kv_repeat, dim=1) for t in (k, v))
        mask = self._merge_masks(key_padding_mask, None, b, lq, k.shape[2], q.dtype)
        out, weights = self.attention(q, k, v, mask, dropout_p=self.dropout if self.training else 0.0,
                                      need_weights=need_weights)
        out = self.out_proj(out.transpose(1, 2).reshape(b, lq, self.embed_dim))
        return out, None if weights is None else weights.mean(dim=1)

    def _layout(self) -> str:
        return "(B, L, E)" if self.batch_first else "(L, B, E)"

    def _heads(self, x: Tensor, heads: int) -> Tensor:
        b, l, _ = x.shape
        return x.view(b, l, heads, self.head_dim).transpose(1, 2)

    def _merge_masks(self, key_padding_mask: Tensor | None, attn_mask: Tensor | None, b: int,
                     lq: int, ls: int, dtype: torch.dtype) -> Tensor | None:
        """torch MHA masks (True = blocked) -> one SDPA-convention mask (True = may attend)."""
        masks = []
        if key_padding_mask is not None:
            if key_padding_mask.shape != (b, ls):
                raise ValueError(f"key_padding_mask must have shape ({b}, {ls}), got "
                                 f"{tuple(key_padding_mask.shape)}")
            masks.append(key_padding_mask.view(b, 1, 1, ls))
        if attn_mask is not None:
            masks.append(self._attn_mask_4d(attn_mask, b, lq, ls))
        if not masks:
            return None
        if all(m.dtype == torch.bool for m in masks):
            keep = ~masks[0]
            for m in masks[1:]:
                keep = keep & ~m
            return keep
        bias = torch.zeros((), dtype=dtype, device=masks[0].device)
        for m in masks:
            bias = bias + (m.to(dtype) if m.dtype != torch.bool
                           else torch.zeros(m.shape, dtype=dtype, device=m.device).masked_fill(m, -torch.inf))
        return bias

    def _attn_mask_4d(self, attn_mask: Tensor, b: int, lq: int, ls: int) -> Tensor:
        if attn_mask.shape == (lq, ls):
            return attn_mask.view(1, 1, lq, ls)
        if attn_mask.shape == (b * self.num_heads, lq, ls):
            return attn_mask.view(b, self.num_heads, lq, ls)
        raise ValueError(f"attn_mask must have shape ({lq}, {ls}) or ({b * self.num_heads}, {lq}, {ls}), "
                         f"got {tuple(attn_mask.shape)}")
