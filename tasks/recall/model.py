"""Recall models: a causal Transformer decoder over any dense variant, and the LSTM baseline.

Decoder (GPT-style, pre-layer-norm as in ``tasks._layers``; Vaswani et al., NeurIPS 2017; Xiong et
al., ICML 2020), the model Zoology (Arora et al., 2023) trains on MQAR with each sequence mixer:

    x = sqrt(d) E w + sinusoidal position
    x = x + SelfAttn(LN(x), causal);  x = x + FFN(LN(x))      (``layers`` blocks)
    logits = W_o LN(x)                                         next-token scores at every position

Every self-attention is ``attention.MultiHeadAttention`` with the run's variant (it owns the
projections, so parameter-free variants are not handicapped), called with ``is_causal=True``.

Baseline ``none``: a unidirectional LSTM of the same width and depth (Hochreiter & Schmidhuber,
1997), the classic recurrent model whose fixed-size state must hold every pair it has read; the
fixed-state models Zoology studies (gated convolutions, linear attention) share that limit, so
it is the control an attention variant must beat by looking back rather than remembering.

Args:
    vocab: V; dim: d; layers; heads, ff_dim: decoder; dropout; attn_dropout: attention-weight
    dropout; variant, variant_kwargs: the self-attention variant (or ``none``: the LSTM);
    max_len: the sequence length (``data.seq_len``; some variants need it).

Shapes: ids (B, L) -> logits (B, L, V); last block's weights (B, L, L), averaged over heads.
"""

from __future__ import annotations

from torch import Tensor, nn

from tasks._layers import Embed, EncoderBlock, attention_positions
from tasks._text import PAD_ID


class RecallDecoder(nn.Module):
    def __init__(self, *, vocab: int, dim: int, layers: int, heads: int, ff_dim: int, dropout: float,
                 attn_dropout: float, variant: str, variant_kwargs: dict | None, max_len: int,
                 positions: str = "sinusoid") -> None:
        super().__init__()
        attn = {"variant": variant, "kwargs": variant_kwargs, "attn_dropout": attn_dropout,
                "max_len": max_len, "positions": attention_positions(positions)}
        self.embed = Embed(vocab, dim, dropout, sinusoidal=positions == "sinusoid")
        self.blocks = nn.ModuleList(EncoderBlock(dim, heads, ff_dim, dropout, attn, causal=True)
                                    for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab)

    def forward(self, ids: Tensor, need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        """ids (B, L) -> logits (B, L, V), the last block's weights (B, L, L) when asked."""
        x = self.embed(ids)  # (B, L, d)
        weights = None
        for i, block in enumerate(self.blocks):
            x, weights = block.attend(x, need_weights=need_weights and i == len(self.blocks) - 1)
        return self.head(self.norm(x)), weights


class RecallLSTM(nn.Module):
    """The ``none`` baseline: embeddings -> unidirectional LSTM (d, ``layers``) -> LN -> head."""

    def __init__(self, *, vocab: int, dim: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, dim, padding_idx=PAD_ID)
        self.lstm = nn.LSTM(dim, dim, num_layers=layers, batch_first=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab)

    def forward(self, ids: Tensor, need_weights: bool = False) -> tuple[Tensor, None]:
        states, _ = self.lstm(self.emb(ids))  # (B, L, d), causal by construction
        return self.head(self.norm(states)), None


def build_model(model_cfg: dict, variant: str, vocab: int, max_len: int,
                variant_kwargs: dict | None = None) -> RecallDecoder | RecallLSTM:
    """The decoder with ``variant``, or the LSTM for ``none``; bad sizes raise ValueError."""
    dim, layers, heads = model_cfg["dim"], model_cfg["layers"], model_cfg["heads"]
    for name, value in (("dim", dim), ("layers", layers), ("heads", heads), ("ff_dim", model_cfg["ff_dim"])):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"model.{name} must be a positive integer, got {value!r}")
    if variant == "none":
        return RecallLSTM(vocab=vocab, dim=dim, layers=layers, dropout=model_cfg["dropout"])
    return RecallDecoder(vocab=vocab, dim=dim, layers=layers, heads=heads, ff_dim=model_cfg["ff_dim"],
                         dropout=model_cfg["dropout"], attn_dropout=model_cfg["attn_dropout"],
                         variant=variant, variant_kwargs=variant_kwargs, max_len=max_len,
                         positions=model_cfg.get("positions", "sinusoid"))
