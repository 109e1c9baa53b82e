"""ListOps classifier: a pre-LN Transformer encoder read at [CLS], or its blocks without attention.

LRA's ListOps model (Tay et al., "Long Range Arena", ICLR 2021): a Transformer encoder over the
tokens, classified from the [CLS] token's final state (``pooling_mode`` CLS). Here the encoder is
``tasks._layers.TransformerEncoder`` (sinusoidal positions, pre-LN blocks), every self-attention
``attention.MultiHeadAttention`` over the run's dense variant with the padding masked as keys:

    x = Embed([CLS] tokens)                                        (B, L, D)
    x = x + SelfAttn(LN(x), key padding);  x = x + FFN(LN(x))      per block
    p(y) = softmax(W_y dropout(LN(x)_0))                           10 classes

Baseline ``none``: the same embeddings and blocks with the attention sublayer removed (each token
on its own: x = x + FFN(LN(x))), then a masked mean over the tokens, which [CLS] alone could not
stand in for (without attention it never sees another token). It reads the expression as a bag
of position-tagged tokens; nesting, which decides the value, is out of its reach except through
what the positions carry.

Args:
    vocab: vocabulary size; hidden: D; heads; layers; ff_dim; dropout; attn_dropout:
    attention-weight dropout; variant, variant_kwargs: the self-attention (or ``none``);
    max_len: the longest input, [CLS] included (``linformer`` sizes its projections by it).

Shapes: ids (B, L) -> logits (B, 10); [CLS] attention weights (B, L).
"""

from __future__ import annotations

from torch import Tensor, nn

from tasks._layers import Embed, TransformerEncoder
from tasks._text import PAD_ID

from .synthetic import NUM_CLASSES


class TokenwiseEncoder(nn.Module):
    """``TransformerEncoder`` without its attention sublayers: ids (B, L) -> states (B, L, D), mask (B, L)."""

    def __init__(self, *, vocab: int, dim: int, layers: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.embed = Embed(vocab, dim, dropout)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, ff_dim), nn.ReLU(), nn.Dropout(dropout),
                          nn.Linear(ff_dim, dim), nn.Dropout(dropout)) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        x = self.embed(ids)
        for block in self.blocks:
            x = x + block(x)
        return self.norm(x), ids != PAD_ID


class ListOpsModel(nn.Module):
    def __init__(self, *, vocab: int, hidden: int, heads: int, layers: int, ff_dim: int, dropout: float,
                 attn_dropout: float, variant: str, variant_kwargs: dict | None = None, max_len: int,
                 positions: str = "sinusoid") -> None:
        super().__init__()
        for name, value in (("hidden", hidden), ("heads", heads), ("layers", layers), ("ff_dim", ff_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.variant = variant
        if variant == "none":
            self.encoder = TokenwiseEncoder(vocab=vocab, dim=hidden, layers=layers, ff_dim=ff_dim,
                                            dropout=dropout)
        else:
            self.encoder = TransformerEncoder(vocab=vocab, dim=hidden, heads=heads, layers=layers,
                                              ff_dim=ff_dim, dropout=dropout, attn_dropout=attn_dropout,
                                              variant=variant, variant_kwargs=variant_kwargs, max_len=max_len,
                                              positions=positions)
        self.drop = nn.Dropout(dropout)
        self.classify = nn.Linear(hidden, NUM_CLASSES)

    def pooled(self, ids: Tensor) -> Tensor:
        """(B, D): the [CLS] state, or for ``none`` the mean over the real tokens."""
        states, mask = self.encoder(ids)  # (B, L, D), (B, L)
        if self.variant != "none":
            return states[:, 0]
        keep = mask.unsqueeze(-1).to(states.dtype)
        return (states * keep).sum(1) / keep.sum(1).clamp(min=1.0)

    def forward(self, ids: Tensor) -> Tensor:
        return self.classify(self.drop(self.pooled(ids)))

    def cls_attention(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        """logits (B, 10) and the last block's attention of [CLS] over the tokens (B, L), averaged over
        heads: the last self-attention is called once more on the inputs it got, asking for weights."""
        if self.variant == "none":
            raise ValueError("variant 'none' has no attention (token-wise blocks, mean pooling)")
        attn = self.encoder.blocks[-1].attn
        seen: dict = {}

        def keep(module: nn.Module, args: tuple, kwargs: dict, output: object) -> None:
            seen.update(args=args, kwargs=kwargs)

        handle = attn.register_forward_hook(keep, with_kwargs=True)
        try:
            logits = self(ids)
        finally:
            handle.remove()
        _, weights = attn(*seen["args"], **{**seen["kwargs"], "need_weights": True})  # (B, L, L)
        return logits, weights[:, 0]
