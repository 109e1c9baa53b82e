"""Sentiment classifier: embeddings -> BiLSTM or Transformer encoder -> pooling -> linear.

Attention pooling (Yang et al., "Hierarchical Attention Networks for Document Classification",
NAACL 2016; Zhou et al., "Attention-Based Bidirectional LSTM Networks for Relation
Classification", ACL 2016), with any dense variant doing the attending:

    u_j = tanh(W h_j + b)                      keys      (B, 1, L, D)
    r   = Attn(q = u_w, K = u, V = h)          u_w a learned query (1, 1, 1, D), key-padding mask
    p(y) = softmax(W_y dropout(r))

With the Transformer encoder (``tasks._layers``), its self-attention uses ``encoder_variant`` when
given, else the pooling variant (so ``none`` needs ``encoder_variant``).

Baselines: ``none`` reads the final states ([h_fwd_L; h_bwd_1] of the BiLSTM; the state of the
leading [CLS] token for the Transformer, BERT's pooling), ``uniform`` (a registered variant)
averages the token states.

Args:
    vocab, num_classes: sizes; encoder: ``lstm`` or ``transformer``; emb_dim: LSTM embeddings;
    hidden: D, the token state width; layers; heads, ff_dim: transformer; dropout; attn_dropout:
    attention-weight dropout; variant, variant_kwargs: the pooling variant (or ``none``);
    encoder_variant, encoder_kwargs: the transformer's self-attention; max_len: longest input.

Shapes: ids (B, L) -> logits (B, num_classes); pooling weights (B, L).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import attention
from tasks._layers import TransformerEncoder
from tasks._text import PAD_ID

ENCODERS = ("lstm", "transformer")


class AttentionPooling(nn.Module):
    def __init__(self, dim: int, variant: str, variant_kwargs: dict | None, max_len: int,
                 dropout: float) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.randn(dim) / dim**0.5)  # u_w
        self.key = nn.Linear(dim, dim)
        self.dropout = dropout
        self.attention = attention.build_in_context(variant, head_dim=dim, num_heads=1, max_len=max_len,
                                                    **(variant_kwargs or {}))

    def forward(self, states: Tensor, mask: Tensor, need_weights: bool = False
                ) -> tuple[Tensor, Tensor | None]:
        """states (B, L, D), mask (B, L) True = token -> pooled (B, D), weights (B, L) when asked."""
        b, _, d = states.shape
        keys = torch.tanh(self.key(states)).unsqueeze(1)  # (B, 1, L, D)
        query = self.query.view(1, 1, 1, d).expand(b, 1, 1, d)
        out, weights = self.attention(query, keys, states.unsqueeze(1), mask[:, None, None, :],
                                      dropout_p=self.dropout if self.training else 0.0,
                                      need_weights=need_weights)
        return out[:, 0, 0], None if weights is None else weights[:, 0, 0]


class LSTMEncoder(nn.Module):
    def __init__(self, *, vocab: int, emb_dim: int, hidden: int, layers: int, dropout: float) -> None:
        super().__init__()
        if hidden % 2:
            raise ValueError(f"hidden must be even (hidden/2 per LSTM direction), got {hidden}")
        self.emb = nn.Embedding(vocab, emb_dim, padding_idx=PAD_ID)
        self.lstm = nn.LSTM(emb_dim, hidden // 2, num_layers=layers, batch_first=True, bidirectional=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)

    def forward(self, ids: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """-> states (B, L, D), mask (B, L), final [h_fwd_L; h_bwd_1] (B, D); zeros at padding."""
        mask = ids != PAD_ID
        lengths = mask.sum(1).clamp(min=1)
        x = self.drop(self.emb(ids))
        if ids.shape[0] > 1 and bool((lengths != lengths[0]).any()):
            return self._by_direction(x, mask, lengths)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, (h_n, _) = self.lstm(packed)
        states, _ = pad_packed_sequence(out, batch_first=True, total_length=ids.shape[1])
        return states, mask, torch.cat([h_n[-2], h_n[-1]], dim=-1)

    def _by_direction(self, x: Tensor, mask: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The packed BiLSTM's result for a batch of unequal lengths, several times faster on CPU.

        A packed batch whose lengths differ takes a per-step path (about 4x slower on one CPU
        thread than equal lengths). Instead each direction runs on the padded batch: the forward
        one reads the tokens first and the padding after, so its outputs at the tokens are exact;
        the backward one reads each review reversed within its length (``flip``), so it too
        starts at the review's last token. Same parameters (``self.lstm``), same results.
        """
        b, steps, _ = x.shape
        t = torch.arange(steps, device=x.device).expand(b, steps)
        flip = torch.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)  # an involution
        keep = mask.unsqueeze(-1)
        lstm, layer_in = self.lstm, x
        for layer in range(lstm.num_layers):
            if layer:
                layer_in = nn.functional.dropout(layer_in, lstm.dropout, self.training)
            outs = []
            for suffix in ("", "_reverse"):
                weights = [getattr(lstm, f"{name}_l{layer}{suffix}")
                           for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
                reverse = suffix == "_reverse"
                seq = _gather_steps(layer_in, flip) if reverse else layer_in
                zeros = seq.new_zeros(1, b, lstm.hidden_size)
                out, _, _ = torch.lstm(seq, (zeros, zeros), weights, True, 1, 0.0, self.training, False, True)
                outs.append(_gather_steps(out, flip) if reverse else out)
            layer_in = torch.where(keep, torch.cat(outs, dim=-1), 0.0)
        half = lstm.hidden_size
        last = (lengths - 1).view(b, 1, 1).expand(b, 1, half)
        final = torch.cat([layer_in[..., :half].gather(1, last)[:, 0], layer_in[:, 0, half:]], dim=-1)
        return layer_in, mask, final


def _gather_steps(x: Tensor, index: Tensor) -> Tensor:
    """x (B, L, D) with its steps reordered per row: out[b, t] = x[b, index[b, t]]."""
    return x.gather(1, index.unsqueeze(-1).expand_as(x))


class SentimentModel(nn.Module):
    def __init__(self, *, vocab: int, num_classes: int, encoder: str, emb_dim: int, hidden: int, layers: int,
                 heads: int, ff_dim: int, dropout: float, attn_dropout: float, variant: str,
                 variant_kwargs: dict | None = None, encoder_variant: str | None = None,
                 encoder_kwargs: dict | None = None, max_len: int) -> None:
        super().__init__()
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {list(ENCODERS)}, got {encoder!r}")
        self.kind = encoder
        if encoder == "lstm":
            self.encoder = LSTMEncoder(vocab=vocab, emb_dim=emb_dim, hidden=hidden, layers=layers,
                                       dropout=dropout)
        else:
            self_attn = encoder_variant or variant
            if self_attn == "none":
                raise ValueError("the transformer encoder needs a self-attention variant: set "
                                 "model.encoder_variant (the pooling baseline 'none' has no attention)")
            self.encoder = TransformerEncoder(
                vocab=vocab, dim=hidden, heads=heads, layers=layers, ff_dim=ff_dim, dropout=dropout,
                attn_dropout=attn_dropout, variant=self_attn, variant_kwargs=encoder_kwargs, max_len=max_len)
        self.pool = None if variant == "none" else AttentionPooling(hidden, variant, variant_kwargs, max_len,
                                                                    attn_dropout)
        self.drop = nn.Dropout(dropout)
        self.classify = nn.Linear(hidden, num_classes)

    def _encode(self, ids: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        if self.kind == "lstm":
            return self.encoder(ids)
        states, mask = self.encoder(ids)
        return states, mask, states[:, 0]  # the leading [CLS] (<bos>) token

    def pooled(self, ids: Tensor, need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        states, mask, final = self._encode(ids)
        if self.pool is None:
            return final, None
        return self.pool(states, mask, need_weights)

    def forward(self, ids: Tensor) -> Tensor:
        return self.classify(self.drop(self.pooled(ids)[0]))
