"""Greedy and beam-search decoding for any model with ``init_state`` and ``step``.

A model's ``step(memory, state, tokens) -> (logits (B, V), state)`` advances one target position;
memory and state are dicts of batch-first tensors, so beams are expanded and reordered by row.

Beam search (Sutskever et al. 2014; length normalisation as in Wu et al., "Google's Neural
Machine Translation System", 2016, eq. 14): keep the ``beam_size`` prefixes of highest summed
log-probability; a beam that emitted <eos> stays finished (it may only be extended by <pad> at no
cost). A sentence is done once its highest-scoring beam has finished (summed log-probabilities
only fall as a beam grows, so no open beam can overtake it); then, per sentence, the finished
beam maximising  log p(y) / lp(y),  lp(y) = ((5 + |y|) / 6)^alpha  is returned (an open beam
only if none finished within ``max_steps``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from tasks._text import BOS_ID, EOS_ID, PAD_ID


def _rows(tensors: dict[str, Tensor], index: Tensor) -> dict[str, Tensor]:
    return {name: t.index_select(0, index) for name, t in tensors.items()}


@torch.no_grad()
def greedy(model, memory: dict[str, Tensor], max_steps: int) -> Tensor:
    """Token ids (B, <= max_steps): the most likely token at each step, <pad> after <eos>."""
    batch = memory["mask"].shape[0]
    device = memory["mask"].device
    state = model.init_state(memory)
    tokens = torch.full((batch,), BOS_ID, dtype=torch.long, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    out = []
    for _ in range(max_steps):
        logits, state = model.step(memory, state, tokens)
        tokens = logits.argmax(-1).masked_fill(finished, PAD_ID)
        out.append(tokens)
        finished |= tokens == EOS_ID
        if finished.all():
            break
    return torch.stack(out, dim=1) if out else torch.zeros(batch, 0, dtype=torch.long, device=device)


@torch.no_grad()
def beam_search(model, memory: dict[str, Tensor], max_steps: int, *, beam_size: int,
                length_penalty: float) -> Tensor:
    """Token ids (B, <= max_steps) of the best beam per sentence."""
    if isinstance(beam_size, bool) or not isinstance(beam_size, int) or beam_size < 1:
        raise ValueError(f"beam_size must be a positive integer, got {beam_size!r}")
    batch, k = memory["mask"].shape[0], beam_size
    device = memory["mask"].device
    memory = _rows(memory, torch.arange(batch, device=device).repeat_interleave(k))
    state = model.init_state(memory)
    scores = torch.zeros(batch, k, device=device)
    scores[:, 1:] = float("-inf")  # all beams start identical: expand only the first
    tokens = torch.full((batch * k,), BOS_ID, dtype=torch.long, device=device)
    history = torch.zeros(batch * k, 0, dtype=torch.long, device=device)
    finished = torch.zeros(batch * k, dtype=torch.bool, device=device)
    lengths = torch.zeros(batch * k, device=device)
    for _ in range(max_steps):
        logits, state = model.step(memory, state, tokens)
        logp = torch.log_softmax(logits.float(), dim=-1)  # (B * k, V)
        logp[finished] = float("-inf")
        logp[finished, PAD_ID] = 0.0
        vocab = logp.shape[-1]
        top, index = (scores.view(-1, 1) + logp).view(batch, k * vocab).topk(k, dim=1)  # (B, k)
        rows = (torch.arange(batch, device=device).unsqueeze(1) * k + index // vocab).view(-1)
        tokens = (index % vocab).view(-1)
        state, history = _rows(state, rows), torch.cat([history[rows], tokens.unsqueeze(1)], dim=1)
        lengths = lengths[rows] + (~finished[rows]).float()
        finished = finished[rows] | (tokens == EOS_ID)
        scores = top
        if finished.view(batch, k)[:, 0].all():  # topk is sorted: beam 0 is the best one
            break
    penalty = ((5.0 + lengths) / 6.0).pow(length_penalty).view(batch, k)
    done = finished.view(batch, k)
    ranked = torch.where(done | ~done.any(dim=1, keepdim=True), scores / penalty, float("-inf"))
    best = ranked.argmax(dim=1)  # (B,)
    return history.view(batch, k, -1)[torch.arange(batch, device=device), best]
