"""Greedy decoding and beam search for ``CaptionModel`` (``init_state`` / ``step``).

Beam search keeps, per image, the ``beam_size`` prefixes of highest summed log-probability; a
finished beam (it emitted <eos>) is carried unchanged at no cost; the winner maximises the
length-normalised score  log p(y) / |y|^alpha  (alpha = ``length_penalty``; 0 = raw sum, which
favours short captions; 1 = mean log-probability per word).
"""

from __future__ import annotations

import torch
from torch import Tensor

from tasks._text import BOS_ID, EOS_ID, PAD_ID

State = dict[str, Tensor]


def _rows(tensors: State, index: Tensor) -> State:
    return {name: t.index_select(0, index) for name, t in tensors.items()}


@torch.no_grad()
def greedy(model, memory: State, max_steps: int, need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
    """Token ids (B, <= max_steps) (<pad> after <eos>) and, if asked, alpha (B, steps, L)."""
    batch = memory["regions"].shape[0]
    device = memory["regions"].device
    state = model.init_state(memory)
    tokens = torch.full((batch,), BOS_ID, dtype=torch.long, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    out, alphas = [], []
    for _ in range(max_steps):
        logits, state, alpha = model.step(memory, state, tokens, need_weights)
        tokens = logits.argmax(-1).masked_fill(finished, PAD_ID)
        out.append(tokens)
        alphas.append(alpha)
        finished |= tokens == EOS_ID
        if finished.all():
            break
    weights = torch.stack(alphas, 1) if need_weights and alphas and alphas[0] is not None else None
    return torch.stack(out, 1), weights


@torch.no_grad()
def beam_search(model, memory: State, max_steps: int, *, beam_size: int, length_penalty: float) -> Tensor:
    """Token ids (B, <= max_steps) of the best beam per image."""
    if isinstance(beam_size, bool) or not isinstance(beam_size, int) or beam_size < 1:
        raise ValueError(f"beam_size must be a positive integer, got {beam_size!r}")
    batch, k = memory["regions"].shape[0], beam_size
    device = memory["regions"].device
    memory = _rows(memory, torch.arange(batch, device=device).repeat_interleave(k))
    state = model.init_state(memory)
    scores = torch.zeros(batch, k, device=device)
    scores[:, 1:] = float("-inf")  # the k beams start identical: expand the first only
    tokens = torch.full((batch * k,), BOS_ID, dtype=torch.long, device=device)
    history = torch.zeros(batch * k, 0, dtype=torch.long, device=device)
    finished = torch.zeros(batch * k, dtype=torch.bool, device=device)
    lengths = torch.zeros(batch * k, device=device)
    for _ in range(max_steps):
        logits, state, _ = model.step(memory, state, tokens)
        logp = torch.log_softmax(logits.float(), dim=-1)  # (B * k, V)
        logp[finished] = float("-inf")
        logp[finished, PAD_ID] = 0.0  # a finished beam continues with <pad> for free
        vocab = logp.shape[-1]
        scores, index = (scores.view(-1, 1) + logp).view(batch, k * vocab).topk(k, dim=1)  # (B, k)
        rows = (torch.arange(batch, device=device).unsqueeze(1) * k + index // vocab).view(-1)
        tokens = (index % vocab).view(-1)
        state, history = _rows(state, rows), torch.cat([history[rows], tokens.unsqueeze(1)], dim=1)
        lengths = lengths[rows] + (~finished[rows]).float()
        finished = finished[rows] | (tokens == EOS_ID)
        if finished.all():
            break
    normalised = scores / lengths.clamp(min=1.0).view(batch, k).pow(length_penalty)
    best = normalised.argmax(dim=1)
    return history.view(batch, k, -1)[torch.arange(batch, device=device), best]
