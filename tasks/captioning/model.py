"""Show, Attend and Tell: an LSTM decoder attending over the CNN's regions at every word.

Xu et al., "Show, Attend and Tell: Neural Image Caption Generation with Visual Attention",
ICML 2015. With regions a_1..a_L (``tasks._vision.RegionEncoder``), word embeddings E y and the
LSTM state (h, c):

    h_0 = tanh(W_h mean_i a_i),  c_0 = tanh(W_c mean_i a_i)                      (init, sec. 3.1.2)
    z_t = beta_t * Attend(W_q h_{t-1}, W_k a, a),  beta_t = sigmoid(w_b h_{t-1})   (gate, sec. 4.2.1)
    h_t, c_t = LSTM([E y_{t-1}; z_t], (h_{t-1}, c_{t-1}))
    p(y_t) = softmax(L_o dropout(E y_{t-1} + L_h h_t + L_z z_t))                  (deep output, eq. 7)

``Attend`` is any dense attention variant (one head of width ``dim``) on a (B, 1, 1, dim) query
over the (B, 1, L, dim) regions: ``reference``/``sdpa`` is the paper's soft attention, ``hard``
its stochastic hard attention (one sampled region; trained here with the variant's Gumbel
straight-through estimator, not the paper's REINFORCE; argmax at evaluation). The ``none``
baseline feeds the mean-pooled image z_t = beta_t * mean_i a_i at every step (no attention), gated
like every variant: it is the same decoder with Attend replaced by the mean, i.e. ``uniform``
(ungated, it read the image at twice the strength of a variant's start, beta_0 ~ 1/2, and beat
``uniform``, the same read, by 9 BLEU-4 at the quick preset's 5 epochs).

Shapes: images (U, 3, H, W), image_row (B,) into U, tokens (B, T) -> logits (B, T, V) and the
attention weights alpha (B, T, L) when asked.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

import attention
from tasks._vision import RegionEncoder

State = dict[str, Tensor]


class CaptionModel(nn.Module):
    """Args: vocab; variant (dense attention name or ``none``) and its kwargs; dim (region and
    attention width); emb_dim; hidden (LSTM width); dropout; gate (the beta_t selector);
    encoder: ``RegionEncoder`` keyword arguments."""

    def __init__(self, *, vocab: int, variant: str, variant_kwargs: Mapping | None, dim: int, emb_dim: int,
                 hidden: int, dropout: float, gate: bool, encoder: Mapping) -> None:
        super().__init__()
        self.variant = variant
        self.encoder = RegionEncoder(dim=dim, **encoder)
        self.embed = nn.Embedding(vocab, emb_dim, padding_idx=0)
        self.init_h, self.init_c = nn.Linear(dim, hidden), nn.Linear(dim, hidden)
        self.cell = nn.LSTMCell(emb_dim + dim, hidden)
        self.attend = None
        if variant != "none":
            self.attend = attention.build_in_context(variant, head_dim=dim, num_heads=1,
                                                     max_len=self.encoder.num_regions,
                                                     **dict(variant_kwargs or {}))
            self.query, self.key = nn.Linear(hidden, dim), nn.Linear(dim, dim)
        self.gate = nn.Linear(hidden, 1) if gate else None  # the baseline's too: one surrounding model
        self.out_h, self.out_z = nn.Linear(hidden, emb_dim), nn.Linear(dim, emb_dim)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(emb_dim, vocab)

    def encode(self, images: Tensor, image_row: Tensor) -> State:
        """Per-caption memory: regions (B, L, D) and their keys (B, 1, L, D) (projected per image)."""
        regions = self.encoder(images)  # (U, L, D)
        memory = {"regions": regions[image_row]}
        if self.attend is not None:
            memory["keys"] = self.key(regions)[image_row].unsqueeze(1)
        return memory

    def init_state(self, memory: State) -> State:
        mean = memory["regions"].mean(1)
        return {"h": torch.tanh(self.init_h(mean)), "c": torch.tanh(self.init_c(mean))}

    def context(self, memory: State, h: Tensor, need_weights: bool) -> tuple[Tensor, Tensor | None]:
        """z_t (B, D) and alpha_t (B, L) (None without attention or weights)."""
        regions = memory["regions"]
        weights = None
        if self.attend is None:
            z = regions.mean(1)
        else:
            out = self.attend(self.query(h)[:, None, None, :], memory["keys"], regions.unsqueeze(1),
                              need_weights=need_weights)
            z = out.output[:, 0, 0]
            weights = out.weights[:, 0, 0] if need_weights else None
        if self.gate is not None:
            z = torch.sigmoid(self.gate(h)) * z
        return z, weights

    def step(self, memory: State, state: State, tokens: Tensor, need_weights: bool = False
             ) -> tuple[Tensor, State, Tensor | None]:
        """One word (``tasks.decoding``'s step protocol): logits (B, V) for the word after ``tokens``
        (B,), the new state, alpha_t (B, L) when asked (else None)."""
        emb = self.embed(tokens)  # (B, E)
        z, alpha = self.context(memory, state["h"], need_weights)
        h, c = self.cell(torch.cat([emb, z], dim=-1), (state["h"], state["c"]))
        logits = self.out(self.drop(emb + self.out_h(h) + self.out_z(z)))
        return logits, {"h": h, "c": c}, alpha

    def forward(self, images: Tensor, image_row: Tensor, tokens: Tensor, need_weights: bool = False
                ) -> tuple[Tensor, Tensor | None]:
        """Teacher forcing over ``tokens`` (B, T) (starting with <bos>): logits (B, T, V), alpha."""
        memory = self.encode(images, image_row)
        state = self.init_state(memory)
        logits, alphas = [], []
        for t in range(tokens.shape[1]):
            step_logits, state, alpha = self.step(memory, state, tokens[:, t], need_weights)
            logits.append(step_logits)
            alphas.append(alpha)
        weights = torch.stack(alphas, 1) if need_weights and self.attend is not None else None
        return torch.stack(logits, 1), weights
