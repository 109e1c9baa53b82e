"""RNN encoder-decoder with attention over the source, or with a fixed context (``none``).

Papers: Cho et al., "Learning Phrase Representations using RNN Encoder-Decoder for Statistical
Machine Translation", EMNLP 2014 (the fixed-context baseline); Bahdanau, Cho & Bengio, "Neural
Machine Translation by Jointly Learning to Align and Translate", ICLR 2015 (bidirectional
encoder, attention); Luong, Pham & Manning, EMNLP 2015 (attentional output layer, eq. 5-6);
Vaswani et al., NeurIPS 2017 (query/key/value/output projections around the attention function).

    h_1..h_S = BiRNN(E x)                          (B, S, D), D = hidden (hidden/2 per direction)
    c       = tanh(W_c [h_fwd_S; h_bwd_1])         fixed summary of the whole source   (B, D)
    s_t     = RNN([E y_{t-1}; c], s_{t-1}),  s_0 = c
    a_t     = W_O Attn(q = W_Q s_t, K = W_K h, V = W_V h)    any dense variant, key-padding mask
    a_t     = W_O W_V c                            for ``none`` (Cho et al.'s fixed context)
    p(y_t)  = softmax(W_o tanh(W_a [s_t; a_t]))

One protocol (``attn_projections=True``, the default): every dense variant gets the same learned
projections W_Q, W_K, W_V, W_O (D x D, with bias) around it, so variants differ only in their
attention function Attn (the parameters a variant learns itself, e.g. ``additive``'s W_a, U_a, v_a,
``luong`` general's W_a, ``local-p``'s predictor, ``memory``'s slots, ``linformer``'s E and F, stay
inside it and are a few percent of the model). ``none`` is attention over the single memory {c}:
softmax weights over one key are 1 whatever the query and key, so it has W_V and W_O only.
With ``attn_projections=False`` the variant compares raw decoder states with raw encoder states
(q = s_t, K = V = h, a_t = Attn(...), and a_t = c for ``none``): the parameter-free form of Luong
et al.'s ``dot`` score (``luong`` with ``score: dot``) or Bahdanau's additive attention as
published, where only variants with parameters of their own can map one space onto the other.

Both models get the same fixed context c, so attention is the only difference. The attention
query is the decoder state (no input feeding), so teacher-forced training attends for all target
positions in one call (Lq = T). Step-by-step decoding must give the same result: a variant whose
output row t depends on t itself (``local`` local-m centres query t's window on source position
t) is called with every query so far, keeping the last row (O(T^2) over a sentence); every other
variant is called with the newest query alone. Which case applies is measured, not assumed: at
construction ``position_free_steps`` probes the variant with random inputs at the task's longest
lengths and checks that each query alone gives its row of the full call (the projections act on
each position alone, so they cannot change the answer).

Memory and decoding state are dicts of batch-first tensors (``tasks.decoding``'s step protocol:
beam search reorders them by row); the memory holds the projected keys and values, computed once
per source.

Args:
    src_vocab, tgt_vocab: vocabulary sizes; emb_dim: E; hidden: D (even); cell: ``gru`` or ``lstm``;
    layers: RNN layers (encoder and decoder); dropout: on embeddings and the output layer.
    variant: a dense attention variant or ``none``; variant_kwargs: its constructor arguments.
    max_len: longest source (for variants that need it); max_steps: longest decoding (the probe).
    attn_projections: the learned W_Q, W_K, W_V, W_O around the variant (default True).

Shapes: src (B, S), tgt_in (B, T) -> logits (B, T, V); alignments (B, T, S).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import attention
from tasks._text import PAD_ID

CELLS = {"gru": nn.GRU, "lstm": nn.LSTM}


class RNNSeq2Seq(nn.Module):
    def __init__(self, *, src_vocab: int, tgt_vocab: int, emb_dim: int, hidden: int, cell: str,
                 layers: int, dropout: float, variant: str, variant_kwargs: dict | None = None,
                 max_len: int, max_steps: int = 0, attn_projections: bool = True) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}")
        if hidden % 2:
            raise ValueError(f"hidden must be even (hidden/2 per encoder direction), got {hidden}")
        if not isinstance(attn_projections, bool):
            raise ValueError(f"attn_projections must be true or false, got {attn_projections!r}")
        rnn = CELLS[cell]
        inner = dropout if layers > 1 else 0.0
        self.cell, self.layers, self.hidden = cell, layers, hidden
        self.src_emb = nn.Embedding(src_vocab, emb_dim, padding_idx=PAD_ID)
        self.tgt_emb = nn.Embedding(tgt_vocab, emb_dim, padding_idx=PAD_ID)
        self.encoder = rnn(emb_dim, hidden // 2, num_layers=layers, batch_first=True, bidirectional=True,
                           dropout=inner)
        self.bridge = nn.Linear(hidden, hidden)
        self.decoder = rnn(emb_dim + hidden, hidden, num_layers=layers, batch_first=True, dropout=inner)
        self.attention = None if variant == "none" else attention.build_in_context(
            variant, head_dim=hidden, num_heads=1, max_len=max_len, **(variant_kwargs or {}))
        self.projections = attn_projections
        if attn_projections:  # the same W_Q, W_K (dense variants), W_V, W_O for every variant
            if self.attention is not None:
                self.q_proj, self.k_proj = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)
            self.v_proj, self.o_proj = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)
        self.combine = nn.Linear(2 * hidden, hidden)
        self.out = nn.Linear(hidden, tgt_vocab)
        self.drop = nn.Dropout(dropout)
        self.free_steps = position_free_steps(self.attention, max_steps, max_len, hidden)

    def encode(self, src: Tensor) -> dict[str, Tensor]:
        """Source ids (B, S) -> memory: mask (B, S) True = real token, context (B, D) and, for a dense
        variant, the attention's keys and values (B, S, D) (projected unless ``attn_projections`` is off)."""
        mask = src != PAD_ID
        lengths = mask.sum(1).clamp(min=1).cpu()
        packed = pack_padded_sequence(self.drop(self.src_emb(src)), lengths, batch_first=True,
                                      enforce_sorted=False)
        out, final = self.encoder(packed)
        states, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
        h_n = final[0] if self.cell == "lstm" else final  # (layers * 2, B, D/2)
        context = torch.tanh(self.bridge(torch.cat([h_n[-2], h_n[-1]], dim=-1)))  # (B, D)
        memory = {"mask": mask, "context": context}
        if self.attention is None:
            return memory
        if not self.projections:
            return {**memory, "keys": states, "values": states}
        return {**memory, "keys": self.k_proj(states), "values": self.v_proj(states)}

    def init_state(self, memory: dict[str, Tensor]) -> dict[str, Tensor]:
        c = memory["context"]
        h = c.unsqueeze(1).expand(-1, self.layers, -1).contiguous()  # (B, layers, D)
        state = {"h": h, "queries": c.new_zeros(c.shape[0], 0, self.hidden)}
        if self.cell == "lstm":
            state["c"] = torch.zeros_like(h)
        return state

    def _run_decoder(self, memory: dict[str, Tensor], tgt_in: Tensor, state: dict[str, Tensor]
                     ) -> tuple[Tensor, dict[str, Tensor]]:
        emb = self.drop(self.tgt_emb(tgt_in))  # (B, T, E)
        ctx = memory["context"].unsqueeze(1).expand(-1, emb.shape[1], -1)
        h0 = state["h"].transpose(0, 1).contiguous()  # (layers, B, D)
        hx = (h0, state["c"].transpose(0, 1).contiguous()) if self.cell == "lstm" else h0
        s, final = self.decoder(torch.cat([emb, ctx], dim=-1), hx)  # (B, T, D)
        new = {"h": (final[0] if self.cell == "lstm" else final).transpose(0, 1)}
        if self.cell == "lstm":
            new["c"] = final[1].transpose(0, 1)
        return s, new

    def attend(self, memory: dict[str, Tensor], queries: Tensor, need_weights: bool = False
               ) -> tuple[Tensor, Tensor | None]:
        """Context (B, T, D) for decoder states (B, T, D), and weights (B, T, S) when asked."""
        if self.attention is None:
            ctx = memory["context"]
            if self.projections:
                ctx = self.o_proj(self.v_proj(ctx))  # attention over the one memory {c}
            return ctx.unsqueeze(1).expand_as(queries), None
        if self.projections:
            queries = self.q_proj(queries)
        keys, values = memory["keys"].unsqueeze(1), memory["values"].unsqueeze(1)  # (B, 1, S, D)
        mask = memory["mask"][:, None, None, :]  # (B, 1, 1, S)
        out, weights = self.attention(queries.unsqueeze(1), keys, values, mask, need_weights=need_weights)
        out = self.o_proj(out[:, 0]) if self.projections else out[:, 0]
        return out, None if weights is None else weights[:, 0]

    def _logits(self, s: Tensor, ctx: Tensor) -> Tensor:
        return self.out(self.drop(torch.tanh(self.combine(torch.cat([s, ctx], dim=-1)))))

    def forward(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher-forced logits (B, T, V)."""
        memory = self.encode(src)
        s, _ = self._run_decoder(memory, tgt_in, self.init_state(memory))
        return self._logits(s, self.attend(memory, s)[0])

    def alignments(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        """Attention weights (B, T, S) of target step t over the source, teacher-forced on tgt_in."""
        memory = self.encode(src)
        s, _ = self._run_decoder(memory, tgt_in, self.init_state(memory))
        return self.attend(memory, s, need_weights=True)[1]

    def step(self, memory: dict[str, Tensor], state: dict[str, Tensor], tokens: Tensor,
             need_weights: bool = False) -> tuple[Tensor, dict[str, Tensor], Tensor | None]:
        """One decoding step: previous tokens (B,) -> logits (B, V), the new state and, when asked,
        this step's attention over the source (B, S) (None for ``none``)."""
        s, new = self._run_decoder(memory, tokens.unsqueeze(1), state)  # s: (B, 1, D)
        new["queries"] = torch.cat([state["queries"], s], dim=1)  # (B, t, D)
        if new["queries"].shape[1] <= self.free_steps or self.attention is None:
            ctx, weights = self.attend(memory, s, need_weights)
        else:
            ctx, weights = self.attend(memory, new["queries"], need_weights)
            ctx, weights = ctx[:, -1:], None if weights is None else weights[:, -1:]
        return self._logits(s, ctx)[:, 0], new, None if weights is None else weights[:, 0]


@torch.no_grad()
def position_free_steps(attn: nn.Module | None, lq: int, lk: int, dim: int) -> int:
    """``lq`` if every output row of ``attn`` (for up to ``lq`` queries over ``lk`` keys) depends only
    on its own query, not on its index; else 0. Random inputs, eval mode (no sampling, no dropout)."""
    if attn is None or lq < 1:
        return 0
    gen = torch.Generator().manual_seed(0)
    param = next(attn.parameters(), torch.empty(0))
    query = torch.randn(1, 1, lq, dim, generator=gen).to(param.device)
    key = torch.randn(1, 1, lk, dim, generator=gen).to(param.device)
    mask = torch.ones(1, 1, 1, lk, dtype=torch.bool, device=param.device)
    was_training = attn.training
    attn.eval()
    try:
        full = attn(query, key, key, mask).output.view(lq, dim)
        alone = attn(query.view(lq, 1, 1, dim), key.expand(lq, 1, lk, dim), key.expand(lq, 1, lk, dim),
                     mask.expand(lq, 1, 1, lk)).output.view(lq, dim)
    finally:
        attn.train(was_training)
    return lq if torch.allclose(full, alone, atol=1e-5, rtol=1e-4) else 0
