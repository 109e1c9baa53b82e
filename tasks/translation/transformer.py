"""A small Transformer encoder-decoder whose every attention is ``attention.MultiHeadAttention``.

Paper: Vaswani et al., "Attention Is All You Need", NeurIPS 2017; pre-layer-norm blocks as in
Xiong et al., "On Layer Normalization in the Transformer Architecture", ICML 2020. The layers
(embeddings, encoder and decoder blocks, the encoder) live in ``tasks._layers``, shared with the
sentiment task; this module stacks them into a sequence-to-sequence model.

The same dense variant runs in every attention (self, causal self, cross). Decoding (``tasks.decoding``)
keeps a key/value cache (``kv_cache``, the default): each step projects only the new token, whose
query attends over the cached keys of every earlier position (the last row of the causal
self-attention) and over the encoder's keys, projected once. That is exact for every variant whose
output for a query depends on the keys it sees, not on its position (``capabilities.decode``);
``local`` and ``sparse`` place their windows by position, so for them, or with ``kv_cache=False``,
each step re-runs the decoder on the whole prefix. ``decoding`` says which, and why.

Args (``TransformerSeq2Seq``):
    src_vocab, tgt_vocab: vocabulary sizes; dim: d_model; heads: H; layers: blocks in the encoder
    and in the decoder; ff_dim: feed-forward width; dropout: residual/embedding dropout;
    attn_dropout: attention-weight dropout; variant, variant_kwargs: the dense variant;
    max_src_len, max_tgt_len: longest sequences (for variants that need ``max_len``).

Shapes: src (B, S), tgt_in (B, T) -> logits (B, T, V); alignments (B, T, S) (last decoder block's
cross-attention, averaged over heads).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

import attention
from tasks._layers import DecoderBlock, Embed, TransformerEncoder


class TransformerSeq2Seq(nn.Module):
    def __init__(self, *, src_vocab: int, tgt_vocab: int, dim: int, heads: int, layers: int, ff_dim: int,
                 dropout: float, attn_dropout: float, variant: str, variant_kwargs: dict | None = None,
                 max_src_len: int, max_tgt_len: int, kv_cache: bool = True) -> None:
        super().__init__()
        self.encoder = TransformerEncoder(vocab=src_vocab, dim=dim, heads=heads, layers=layers, ff_dim=ff_dim,
                                          dropout=dropout, attn_dropout=attn_dropout, variant=variant,
                                          variant_kwargs=variant_kwargs, max_len=max_src_len)
        common = {"variant": variant, "kwargs": variant_kwargs, "attn_dropout": attn_dropout}
        self.embed = Embed(tgt_vocab, dim, dropout)
        self.blocks = nn.ModuleList(
            DecoderBlock(dim, heads, ff_dim, dropout, {**common, "max_len": max_tgt_len},
                         {**common, "max_len": max_src_len}) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, tgt_vocab)
        decodes = attention.REGISTRY[variant].capabilities.decode
        self.cached = kv_cache and decodes
        self.decoding = ("kv-cache" if self.cached else "recompute the prefix at each step: " +
                         ("kv_cache=False" if not kv_cache else f"{variant} places its keys by the query's "
                          "position, so one query over cached keys is not its causal row"))

    def encode(self, src: Tensor) -> dict[str, Tensor]:
        states, mask = self.encoder(src)
        return {"states": states, "mask": mask}

    def decode(self, memory: dict[str, Tensor], tgt_in: Tensor, need_weights: bool = False
               ) -> tuple[Tensor, Tensor | None]:
        """Logits (B, T, V); with ``need_weights`` the last block's cross-attention (B, T, S),
        averaged over heads."""
        y, weights = self.embed(tgt_in), None
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            y, weights = block(y, memory["states"], ~memory["mask"], need_weights and i == last)
        return self.out(self.norm(y)), weights

    def forward(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        return self.decode(self.encode(src), tgt_in)[0]

    def alignments(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        return self.decode(self.encode(src), tgt_in, need_weights=True)[1]

    def init_state(self, memory: dict[str, Tensor]) -> dict[str, Tensor]:
        """The decoding state, batch first (beam search reorders its rows): the prefix, or the
        per-block caches (``{i}.self_k`` etc., see ``DecoderBlock.step``)."""
        mask = memory["mask"]
        if not self.cached:
            return {"prefix": mask.new_zeros(mask.shape[0], 0, dtype=torch.long)}
        state = {}
        for i, block in enumerate(self.blocks):
            cross_k, cross_v = block.cross_attn.project_kv(memory["states"], memory["states"])
            empty = cross_k.new_zeros(*cross_k.shape[:2], 0, cross_k.shape[-1])
            state |= {f"{i}.cross_k": cross_k, f"{i}.cross_v": cross_v, f"{i}.self_k": empty,
                      f"{i}.self_v": empty.new_zeros(*cross_v.shape[:2], 0, cross_v.shape[-1])}
        return state

    def step(self, memory: dict[str, Tensor], state: dict[str, Tensor], tokens: Tensor,
             need_weights: bool = False) -> tuple[Tensor, dict[str, Tensor], Tensor | None]:
        """One decoding step: previous tokens (B,) -> logits (B, V), the new state and, when asked,
        the last block's cross-attention of this step (B, S)."""
        if not self.cached:
            prefix = torch.cat([state["prefix"], tokens.unsqueeze(1)], dim=1)  # (B, t)
            logits, weights = self.decode(memory, prefix, need_weights)
            return logits[:, -1], {"prefix": prefix}, None if weights is None else weights[:, -1]
        position = state["0.self_k"].shape[2]
        y, weights, new = self.embed(tokens.unsqueeze(1), offset=position), None, {}
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            cache = {name: state[f"{i}.{name}"] for name in ("self_k", "self_v", "cross_k", "cross_v")}
            y, cache, weights = block.step(y, cache, ~memory["mask"], need_weights and i == last)
            new |= {f"{i}.{name}": t for name, t in cache.items()}
        logits = self.out(self.norm(y))[:, 0]
        return logits, new, None if weights is None else weights[:, 0]
