"""Shared decoding (tasks.decoding): greedy with weights, both length normalisations, both stopping
rules and option checks, on a toy model whose log-probabilities are set by hand."""

from __future__ import annotations

import math
import re

import pytest
import torch
from torch import Tensor

from tasks._text import BOS_ID, EOS_ID, PAD_ID
from tasks.decoding import beam_search, greedy

VOCAB, SOURCE = 12, 3
SHORT, LONG = [4, EOS_ID], [5, 6, 7, EOS_ID]
LOSSY, STICKY = math.log(0.125), math.log(0.99)


def chains(a: float, b: float, stay: float) -> Tensor:
    """Next-token log-probabilities (V, V) by previous token: from <bos> 4 (log p = a), 5 (b) or the
    sink 8 (the rest); then 4 <eos> and 5 6 7 <eos> for sure; the sink keeps itself with log p =
    ``stay`` and else leaks into the dead ends 9..11, which never reach <eos>."""
    table = torch.full((VOCAB, VOCAB), -1e4)
    table[BOS_ID, 4], table[BOS_ID, 5] = a, b
    table[BOS_ID, 8] = math.log(1 - math.exp(a) - math.exp(b))
    table[4, EOS_ID] = table[5, 6] = table[6, 7] = table[7, EOS_ID] = 0.0
    table[8, 8], table[8, 9:] = stay, math.log((1 - math.exp(stay)) / 3)
    table[9:, 9:] = math.log(1 / 3)
    return table


class Toy:
    """Logits = the table row of the previous token + the row's ``bias`` (B, V) from the memory;
    step t attends to source position t mod 3 (one-hot weights)."""

    def __init__(self, table: Tensor, weights: bool = True) -> None:
        self.table, self.weights = table, weights

    def init_state(self, memory: dict[str, Tensor]) -> dict[str, Tensor]:
        return {"t": torch.zeros(memory["bias"].shape[0], dtype=torch.long)}

    def step(self, memory: dict[str, Tensor], state: dict[str, Tensor], tokens: Tensor,
             need_weights: bool = False) -> tuple[Tensor, dict[str, Tensor], Tensor | None]:
        weights = torch.nn.functional.one_hot(state["t"] % SOURCE, SOURCE).float()
        return (self.table[tokens] + memory["bias"], {"t": state["t"] + 1},
                weights if need_weights and self.weights else None)


def memory(rows: int = 1) -> dict[str, Tensor]:
    return {"bias": torch.zeros(rows, VOCAB)}


def padded(ids: list[int], width: int) -> list[int]:
    return ids + [PAD_ID] * (width - len(ids))


def beam(table: Tensor, steps: int = 5, **options) -> list[int]:
    options = {"beam_size": 3, "length_penalty": 1.0, "length_norm": "length", "stop": "all", **options}
    return beam_search(Toy(table), memory(), steps, **options)[0].tolist()


def test_greedy_pads_after_eos_and_returns_the_weights_of_every_step() -> None:
    mem = memory(2)
    mem["bias"][1, 5] = 2.0  # row 1 starts with 5 and takes the long chain
    ids, weights = greedy(Toy(chains(-0.5, -1.6, LOSSY)), mem, 6, need_weights=True)
    assert ids.tolist() == [padded(SHORT, 4), LONG]  # stops once every row emitted <eos>
    assert torch.equal(weights, torch.eye(SOURCE)[[0, 1, 2, 0]].expand(2, 4, SOURCE))
    assert greedy(Toy(chains(-0.5, -1.6, LOSSY)), mem, 6)[1] is None
    assert greedy(Toy(chains(-0.5, -1.6, LOSSY), weights=False), mem, 6, need_weights=True)[1] is None


def test_greedy_with_zero_steps_returns_empty_ids() -> None:
    ids, weights = greedy(Toy(chains(-0.5, -1.6, LOSSY)), memory(2), 0, need_weights=True)
    assert ids.shape == (2, 0) and ids.dtype == torch.long and weights is None
    assert beam_search(Toy(chains(-0.5, -1.6, LOSSY)), memory(2), 0, beam_size=2, length_penalty=1.0,
                       length_norm="gnmt", stop="best").shape == (2, 0)


# log p: short -1 (|y| = 2), long b (|y| = 4). Per token (|y|^1) the long one wins iff b > 2 * -1;
# with GNMT's ((5 + |y|) / 6)^1 iff b > 9/7 * -1.
@pytest.mark.parametrize(("b", "per_token", "gnmt"), [(-1.2, LONG, LONG), (-1.6, LONG, SHORT),
                                                      (-2.2, SHORT, SHORT)])
def test_length_normalisations(b: float, per_token: list[int], gnmt: list[int]) -> None:
    table = chains(-1.0, b, LOSSY)
    assert beam(table, length_norm="length") == padded(per_token, 5)
    assert beam(table, length_norm="gnmt") == padded(gnmt, 5)
    for norm in ("length", "gnmt"):  # alpha = 0: the raw sum, the short one
        assert beam(table, length_norm=norm, length_penalty=0.0) == padded(SHORT, 5)


def test_stop_all_runs_until_every_beam_finished_and_best_once_the_best_one_did() -> None:
    table = chains(-1.0, -1.6, LOSSY)  # the sink beam never finishes
    assert beam(table, stop="all") == padded(LONG, 5)  # ran to max_steps; the long one ranks first
    assert beam(table, stop="best") == SHORT  # the best beam finished at step 2: no longer wait
    done = chains(-1.0, -1.6, LOSSY)
    done[BOS_ID, 8] = -1e4  # no sink: both beams have finished by step 4
    assert beam(done, stop="all", steps=8, beam_size=2) == padded(SHORT, 4)


def test_stop_best_prefers_finished_beams_unless_none_finished() -> None:
    table = chains(-1.0, -1.6, STICKY)  # the open sink beam stays best, by sum and per token
    assert beam(table, stop="all", steps=4) == [8, 8, 8, 8]
    assert beam(table, stop="best", steps=4) == LONG  # the best finished beam, per token
    assert beam(table, stop="best", steps=1) == [8]  # nothing finished: the best open beam


@pytest.mark.parametrize(("table", "expected"), [(chains(-0.5, -1.6, LOSSY), SHORT),
                                               (chains(-1.0, -1.6, STICKY), [8] * 5)])
def test_a_beam_of_one_is_greedy(table: Tensor, expected: list[int]) -> None:
    assert greedy(Toy(table), memory(), 5)[0][0].tolist() == expected
    for norm in ("length", "gnmt"):
        for stop in ("all", "best"):
            assert beam(table, beam_size=1, length_norm=norm, stop=stop)[:len(expected)] == expected


def test_wider_beams_find_what_greedy_misses() -> None:
    table = chains(-1.0, -1.6, LOSSY)
    assert greedy(Toy(table), memory(), 5)[0][0].tolist() == [8, 9, 9, 9, 9]  # the likeliest first token
    assert beam(table, length_penalty=0.0) == padded(SHORT, 5)  # log p -1; greedy's about -5.4


def test_beams_are_kept_per_input() -> None:
    mem = memory(3)
    mem["bias"][1, 5] = 3.0  # only row 1 prefers the long chain
    table = chains(-1.0, -1.6, LOSSY)
    ids = beam_search(Toy(table), mem, 5, beam_size=3, length_penalty=0.0, length_norm="length", stop="all")
    assert ids.tolist() == [padded(SHORT, 5), padded(LONG, 5), padded(SHORT, 5)]


@pytest.mark.parametrize(("option", "value"), [
    ("beam_size", 0), ("beam_size", True), ("beam_size", 2.0), ("length_penalty", -0.5),
    ("length_penalty", float("nan")), ("length_penalty", "0.6"), ("length_norm", "mean"),
    ("length_norm", None), ("stop", "first"), ("stop", ["all"]), ("max_steps", -1), ("max_steps", 2.5)])
def test_bad_options_are_refused_by_name(option: str, value: object) -> None:
    options = {"beam_size": 2, "length_penalty": 0.6, "length_norm": "gnmt", "stop": "best", "max_steps": 3,
               option: value}
    steps = options.pop("max_steps")
    with pytest.raises(ValueError, match=rf"^{option} must be .*, got {re.escape(repr(value))}$"):
        beam_search(Toy(chains(-1.0, -1.6, LOSSY)), memory(), steps, **options)
    if option == "max_steps":
        with pytest.raises(ValueError, match=r"^max_steps must be"):
            greedy(Toy(chains(-1.0, -1.6, LOSSY)), memory(), value)
