"""Greedy decoding and beam search for the sequence-generating tasks (captioning, translation).

Step protocol. A model decodes with

    model.init_state(memory) -> state
    model.step(memory, state, tokens, need_weights=False) -> (logits (B, V), state, weights)

where ``tokens`` (B,) are the previous outputs (<bos> first) and ``weights`` is the attention the
step used (B, L) when asked for and formed, else None. Memory and state are dicts of batch-first
tensors, so the batch size is read off any memory tensor and beams are expanded and reordered by
row without knowing what the tensors hold.

Greedy: the most likely token at every step, <pad> after <eos>, until every row has emitted <eos>
or ``max_steps`` is reached.

Beam search (Sutskever, Vinyals & Le, "Sequence to Sequence Learning with Neural Networks",
NeurIPS 2014): keep per input the ``beam_size`` prefixes of highest summed log-probability
log p(y); a beam that emitted <eos> is finished and is carried on with <pad> at no cost. Two
rules are options, chosen per task:

- ``length_norm``: the score the final beams are ranked by, with alpha = ``length_penalty``
  (0: the raw sum, which favours short outputs) and |y| the tokens up to and including <eos>:
  ``"length"``  log p(y) / |y|^alpha (alpha = 1: the mean log-probability per token);
  ``"gnmt"``    log p(y) / ((5 + |y|) / 6)^alpha (Wu et al., "Google's Neural Machine
  Translation System", 2016, eq. 14), which penalises length less steeply for short outputs.
- ``stop``: when the search ends and which beams may win.
  ``"all"``   run until every beam has finished (or ``max_steps``), then rank every beam;
  ``"best"``  end once the highest-scoring beam of every input has finished (summed
  log-probabilities only fall as a beam grows, so no open beam can overtake it on the raw score),
  then rank the finished beams only: an open beam was cut short by the search, not ended by the
  model, and is returned only where no beam of its input finished within ``max_steps``.

Shapes: memory tensors (B, ...) -> token ids (B, T), T <= ``max_steps``; greedy weights (B, T, L).
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
from torch import Tensor

from tasks._text import BOS_ID, EOS_ID, PAD_ID

State = dict[str, Tensor]
LENGTH_NORMS = ("length", "gnmt")
STOPS = ("all", "best")


class Decoder(Protocol):
    """The step protocol above."""

    def init_state(self, memory: State) -> State: ...

    def step(self, memory: State, state: State, tokens: Tensor, need_weights: bool = False
             ) -> tuple[Tensor, State, Tensor | None]: ...


def _steps(max_steps: int) -> int:
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 0:
        raise ValueError(f"max_steps must be a non-negative integer, got {max_steps!r}")
    return max_steps


def _check_beam(beam_size: int, length_penalty: float, length_norm: str, stop: str) -> None:
    if isinstance(beam_size, bool) or not isinstance(beam_size, int) or beam_size < 1:
        raise ValueError(f"beam_size must be a positive integer, got {beam_size!r}")
    if (isinstance(length_penalty, bool) or not isinstance(length_penalty, int | float)
            or not math.isfinite(length_penalty) or length_penalty < 0):
        raise ValueError(f"length_penalty must be a finite number >= 0, got {length_penalty!r}")
    for arg, value, choices in (("length_norm", length_norm, LENGTH_NORMS), ("stop", stop, STOPS)):
        if not isinstance(value, str) or value not in choices:
            raise ValueError(f"{arg} must be one of {list(choices)}, got {value!r}")


def _batch(memory: State) -> tuple[int, torch.device]:
    if not memory:
        raise ValueError("memory must hold at least one tensor")
    first = next(iter(memory.values()))
    return first.shape[0], first.device


def _rows(tensors: State, index: Tensor) -> State:
    return {name: t.index_select(0, index) for name, t in tensors.items()}


@torch.no_grad()
def greedy(model: Decoder, memory: State, max_steps: int, *, need_weights: bool = False
           ) -> tuple[Tensor, Tensor | None]:
    """Token ids (B, <= max_steps), <pad> after <eos>; with ``need_weights`` the weights of every
    step (B, steps, L), else (or when the model forms none, or after zero steps) None."""
    steps = _steps(max_steps)
    batch, device = _batch(memory)
    state = model.init_state(memory)
    tokens = torch.full((batch,), BOS_ID, dtype=torch.long, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    out, weights = [], []
    for _ in range(steps):
        logits, state, step_weights = model.step(memory, state, tokens, need_weights=need_weights)
        tokens = logits.argmax(-1).masked_fill(finished, PAD_ID)  # (B,)
        out.append(tokens)
        weights.append(step_weights)
        finished |= tokens == EOS_ID
        if finished.all():
            break
    if not out:
        return torch.zeros(batch, 0, dtype=torch.long, device=device), None
    formed = need_weights and weights[0] is not None
    return torch.stack(out, 1), torch.stack(weights, 1) if formed else None  # (B, T), (B, T, L)


def _expand(scores: Tensor, logits: Tensor, finished: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The best k continuations of each input's k beams: their scores (B, k), the rows (B * k,)
    they extend and their last tokens (B * k,)."""
    batch, k = scores.shape
    logp = torch.log_softmax(logits.float(), dim=-1)  # (B * k, V)
    logp[finished] = float("-inf")
    logp[finished, PAD_ID] = 0.0  # a finished beam continues with <pad> for free
    vocab = logp.shape[-1]
    top, index = (scores.view(-1, 1) + logp).view(batch, k * vocab).topk(k, dim=1)  # (B, k), sorted
    rows = (torch.arange(batch, device=scores.device).unsqueeze(1) * k + index // vocab).view(-1)
    return top, rows, (index % vocab).view(-1)


def _done(finished: Tensor, stop: str) -> bool:
    """finished (B, k), each input's beams sorted by score."""
    return bool(finished.all() if stop == "all" else finished[:, 0].all())


def _ranking(scores: Tensor, lengths: Tensor, finished: Tensor, *, length_penalty: float,
             length_norm: str, stop: str) -> Tensor:
    """Length-normalised scores (B, k); -inf for the beams ``stop`` rules out."""
    if length_norm == "gnmt":
        penalty = ((5.0 + lengths) / 6.0).pow(length_penalty)  # (B, k)
    else:
        penalty = lengths.clamp(min=1.0).pow(length_penalty)  # no zero length after zero steps
    normalised = scores / penalty
    if stop == "all":
        return normalised
    return torch.where(finished | ~finished.any(dim=1, keepdim=True), normalised, float("-inf"))


@torch.no_grad()
def beam_search(model: Decoder, memory: State, max_steps: int, *, beam_size: int, length_penalty: float,
                length_norm: str, stop: str) -> Tensor:
    """Token ids (B, <= max_steps) of the best beam per input, <pad> after <eos>."""
    steps = _steps(max_steps)
    _check_beam(beam_size, length_penalty, length_norm, stop)
    (batch, device), k = _batch(memory), beam_size
    memory = _rows(memory, torch.arange(batch, device=device).repeat_interleave(k))
    state = model.init_state(memory)
    scores = torch.zeros(batch, k, device=device)
    scores[:, 1:] = float("-inf")  # the k beams start identical: expand the first only
    tokens = torch.full((batch * k,), BOS_ID, dtype=torch.long, device=device)
    history = torch.zeros(batch * k, 0, dtype=torch.long, device=device)
    finished = torch.zeros(batch * k, dtype=torch.bool, device=device)
    lengths = torch.zeros(batch * k, device=device)
    for _ in range(steps):
        logits, state, _ = model.step(memory, state, tokens)
        scores, rows, tokens = _expand(scores, logits, finished)
        state, history = _rows(state, rows), torch.cat([history[rows], tokens.unsqueeze(1)], dim=1)
        lengths = lengths[rows] + (~finished[rows]).float()  # |y| counts <eos>, not the <pad> after it
        finished = finished[rows] | (tokens == EOS_ID)
        if _done(finished.view(batch, k), stop):
            break
    best = _ranking(scores, lengths.view(batch, k), finished.view(batch, k), length_penalty=length_penalty,
                    length_norm=length_norm, stop=stop).argmax(dim=1)  # (B,)
    return history.view(batch, k, -1)[torch.arange(batch, device=device), best]
