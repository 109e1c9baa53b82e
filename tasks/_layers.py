"""Transformer layers shared by the text tasks (the translation Transformer, the sentiment encoder).

Paper: Vaswani et al., "Attention Is All You Need", NeurIPS 2017; pre-layer-norm blocks as in
Xiong et al., "On Layer Normalization in the Transformer Architecture", ICML 2020 (they train
without warm-up, which suits short CPU budgets). Every attention is ``attention.MultiHeadAttention``
with one dense variant.

    encoder block:  x = x + SelfAttn(LN(x), key padding);  x = x + FFN(LN(x))
    decoder block:  y = y + SelfAttn(LN(y), causal);  y = y + CrossAttn(LN(y), x, key padding);
                    y = y + FFN(LN(y))
    embeddings:     sqrt(d) * E w + sinusoidal position (any length), or no position embedding
                    with ``positions`` rope / alibi, which act inside every self-attention
                    (``attention.positions``; cross-attention gets none)

- ``sinusoid``: the (length, d) position table; ``Embed``: token ids (B, L) -> (B, L, d).
- ``EncoderBlock``, ``DecoderBlock``: the blocks above; an ``attn`` argument holds the
  ``MultiHeadAttention`` settings (``variant``, ``kwargs``, ``attn_dropout``, ``max_len``).
- ``TransformerEncoder``: embeddings, blocks and a final layer norm; ids (B, S) -> states
  (B, S, d) and the key-padding mask (B, S), True = real token.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from attention import MultiHeadAttention
from tasks._text import PAD_ID


def sinusoid(length: int, dim: int, device: torch.device) -> Tensor:
    """(length, dim) sinusoidal positions: sin/cos(pos / 10000^(2i/dim))."""
    pos = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(1e4) / dim))
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return table


POSITIONS = ("sinusoid", "rope", "alibi")  # model.positions of the Transformer-family models


def check_positions(positions: object) -> str:
    if positions not in POSITIONS:
        raise ValueError(f"model.positions must be one of {list(POSITIONS)}, got {positions!r}")
    return str(positions)


def attention_positions(positions: str) -> str:
    """``MultiHeadAttention``'s ``positions`` for a model's ``positions``."""
    return "none" if check_positions(positions) == "sinusoid" else positions


class Embed(nn.Module):
    def __init__(self, vocab: int, dim: int, dropout: float, sinusoidal: bool = True) -> None:
        super().__init__()
        self.sinusoidal = sinusoidal
        self.emb = nn.Embedding(vocab, dim, padding_idx=PAD_ID)
        # N(0, 1/d) so that sqrt(d) * E w has unit scale, like the positions (as in fairseq); the
        # default N(0, 1) would drown the positions by a factor sqrt(d).
        nn.init.normal_(self.emb.weight, std=dim**-0.5)
        with torch.no_grad():
            self.emb.weight[PAD_ID].zero_()
        self.drop = nn.Dropout(dropout)
        self.scale = math.sqrt(dim)

    def forward(self, ids: Tensor, offset: int = 0) -> Tensor:
        """ids (B, L) at positions offset .. offset + L - 1 -> (B, L, d)."""
        x = self.emb(ids) * self.scale
        if not self.sinusoidal:
            return self.drop(x)
        return self.drop(x + sinusoid(offset + ids.shape[1], x.shape[-1], x.device)[offset:])


def _mha(dim: int, heads: int, variant: str, kwargs: dict | None, attn_dropout: float, max_len: int,
         positions: str = "none") -> MultiHeadAttention:
    return MultiHeadAttention(dim, heads, variant=variant, variant_kwargs=kwargs, dropout=attn_dropout,
                              max_len=max_len, positions=positions)


def _ffn(dim: int, ff_dim: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, ff_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ff_dim, dim))


class EncoderBlock(nn.Module):
    """Self-attention and FFN; ``causal``: each position attends to itself and earlier ones only (a
    decoder-only block, as the recall task's)."""

    def __init__(self, dim: int, heads: int, ff_dim: int, dropout: float, attn: dict, causal: bool = False
                 ) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = _mha(dim, heads, **attn)
        self.ffn = _ffn(dim, ff_dim, dropout)
        self.drop = nn.Dropout(dropout)
        self.causal = causal

    def forward(self, x: Tensor, blocked: Tensor | None = None) -> Tensor:
        return self.attend(x, blocked)[0]

    def attend(self, x: Tensor, blocked: Tensor | None = None, need_weights: bool = False
               ) -> tuple[Tensor, Tensor | None]:
        """The block's output and, when asked, its attention weights (averaged over heads)."""
        h = self.norm1(x)
        out, weights = self.attn(h, h, h, key_padding_mask=blocked, is_causal=self.causal,
                                 need_weights=need_weights)
        x = x + self.drop(out)
        return x + self.drop(self.ffn(self.norm2(x))), weights


class DecoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int, ff_dim: int, dropout: float, self_attn: dict, cross_attn: dict
                 ) -> None:
        super().__init__()
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(3))
        self.self_attn = _mha(dim, heads, **self_attn)
        self.cross_attn = _mha(dim, heads, **cross_attn)
        self.ffn = _ffn(dim, ff_dim, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, y: Tensor, memory: Tensor, blocked: Tensor, need_weights: bool = False
                ) -> tuple[Tensor, Tensor | None]:
        h = self.norms[0](y)
        y = y + self.drop(self.self_attn(h, h, h, is_causal=True)[0])
        out, weights = self.cross_attn(self.norms[1](y), memory, memory, key_padding_mask=blocked,
                                       need_weights=need_weights)
        y = y + self.drop(out)
        return y + self.drop(self.ffn(self.norms[2](y))), weights

    def step(self, y: Tensor, cache: dict[str, Tensor], blocked: Tensor, need_weights: bool = False
             ) -> tuple[Tensor, dict[str, Tensor], Tensor | None]:
        """One new position y (B, 1, d) with the cache of this block: ``self_k`` / ``self_v`` the
        self-attention heads of every earlier position (B, Hkv, t, Dh), ``cross_k`` / ``cross_v``
        those of the encoder states. Returns the block's output, the cache with this position
        appended, and the cross-attention weights (B, 1, S) when asked. The new query sees every
        cached key and itself: the last row of the causal self-attention."""
        h = self.norms[0](y)
        k, v = self.self_attn.project_kv(h, h)
        cache = {**cache, "self_k": torch.cat([cache["self_k"], k], 2),
                 "self_v": torch.cat([cache["self_v"], v], 2)}
        y = y + self.drop(self.self_attn.attend_projected(h, cache["self_k"], cache["self_v"])[0])
        out, weights = self.cross_attn.attend_projected(self.norms[1](y), cache["cross_k"], cache["cross_v"],
                                                        key_padding_mask=blocked, need_weights=need_weights)
        y = y + self.drop(out)
        return y + self.drop(self.ffn(self.norms[2](y))), cache, weights


class TransformerEncoder(nn.Module):
    """Token ids (B, S) -> states (B, S, d) and the key-padding mask (B, S), True = real token."""

    def __init__(self, *, vocab: int, dim: int, heads: int, layers: int, ff_dim: int, dropout: float,
                 attn_dropout: float, variant: str, variant_kwargs: dict | None, max_len: int,
                 positions: str = "sinusoid") -> None:
        super().__init__()
        attn = {"variant": variant, "kwargs": variant_kwargs, "attn_dropout": attn_dropout,
                "max_len": max_len, "positions": attention_positions(positions)}
        self.embed = Embed(vocab, dim, dropout, sinusoidal=positions == "sinusoid")
        self.blocks = nn.ModuleList(EncoderBlock(dim, heads, ff_dim, dropout, attn) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        mask = ids != PAD_ID
        x = self.embed(ids)
        for block in self.blocks:
            x = block(x, ~mask)  # torch MHA convention: True = blocked
        return self.norm(x), mask
