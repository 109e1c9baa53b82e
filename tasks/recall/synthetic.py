"""The embedded recall data: multi-query associative recall (MQAR).

Paper: Arora et al., "Zoology: Measuring and Improving Recall in Efficient Language Models",
arXiv 2312.04927, 2023 (section 3, MQAR). A sequence of ``seq_len`` tokens first lists
``num_pairs`` key-value pairs, then asks ``num_queries`` of those keys again, each followed by its
value, with filler tokens between the queries:

    k3 v7 k0 v2 k5 v7 k1 v4 | _ _ k5 v7 _ k0 v2 _ _ _ k1 v4 _ _
    context (2 * num_pairs)  | query region: a queried key, then its value (the answer), fillers

Keys are distinct within a sequence, drawn from ``key_vocab`` keys; values are drawn (with
repeats) from ``value_vocab`` values. Read as next-token prediction, the token after each queried
key is its value: the model must find the key's earlier occurrence in the context and copy the
token after it. Only those predictions are scored (``answers``: the positions of the queried keys);
the context and the fillers are not predictable.

Where this differs from Zoology's generator: the queried keys are a random subset of the context's
keys (``num_queries`` <= ``num_pairs``; Zoology queries all of them), placed at uniformly drawn
2-token slots of the query region (Zoology draws the gaps from a power law that favours slots near
the context), and each answer is also in the input after its key, as in text. The filler is one
token (Zoology's default ``0``). Every sequence has exactly ``num_queries`` answers, so the mean of
the per-sequence accuracies is the accuracy over all answers.

Token ids: the text specials of ``tasks._text`` (0..3, unused except as padding id), the filler
``_``, the keys ``k0 ..``, the values ``v0 ..``.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, fields

from tasks._text import SPECIALS

GENERATOR_VERSION = 1
FILLER = "_"
FILLER_ID = len(SPECIALS)


@dataclass(frozen=True)
class RecallSpec:
    """Parameters of the generated sequences (all of them key the cache); see the module docstring."""

    seed: int = 0
    n_train: int = 4000
    n_val: int = 500
    n_test: int = 1000
    seq_len: int = 64
    num_pairs: int = 8
    num_queries: int = 8
    key_vocab: int = 32
    value_vocab: int = 32

    def __post_init__(self) -> None:
        for f in fields(self):
            value, least = getattr(self, f.name), 0 if f.name == "seed" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"{f.name} must be an integer >= {least}, got {value!r}")
        if self.num_pairs > self.key_vocab:
            raise ValueError(f"num_pairs={self.num_pairs} distinct keys need key_vocab >= num_pairs, "
                             f"got key_vocab={self.key_vocab}")
        if self.num_queries > self.num_pairs:
            raise ValueError(f"num_queries={self.num_queries} must be <= num_pairs={self.num_pairs} "
                             "(each query asks a distinct key of the context)")
        if 2 * (self.num_pairs + self.num_queries) > self.seq_len:
            raise ValueError(f"seq_len={self.seq_len} cannot hold {self.num_pairs} pairs and "
                             f"{self.num_queries} queries (needs 2 * (num_pairs + num_queries) = "
                             f"{2 * (self.num_pairs + self.num_queries)})")

    def tokens(self) -> list[str]:
        """The vocabulary, in id order."""
        return [*SPECIALS, FILLER, *(f"k{i}" for i in range(self.key_vocab)),
                *(f"v{i}" for i in range(self.value_vocab))]

    def key_id(self, i: int) -> int:
        return FILLER_ID + 1 + i

    def value_id(self, i: int) -> int:
        return FILLER_ID + 1 + self.key_vocab + i


SPEC_KEYS = tuple(f.name for f in fields(RecallSpec))


def sequence(rng: random.Random, spec: RecallSpec) -> tuple[list[int], list[int]]:
    """(ids, answers): ``seq_len`` token ids and the positions of the queried keys (ascending); the
    answer to the query at position p is ``ids[p + 1]``."""
    n, context = spec.num_pairs, 2 * spec.num_pairs
    keys = [spec.key_id(i) for i in rng.sample(range(spec.key_vocab), n)]
    values = [spec.value_id(rng.randrange(spec.value_vocab)) for _ in range(n)]
    ids = [token for pair in zip(keys, values, strict=True) for token in pair]
    ids += [FILLER_ID] * (spec.seq_len - context)
    slots = sorted(rng.sample(range((spec.seq_len - context) // 2), spec.num_queries))
    asked = rng.sample(range(n), spec.num_queries)  # which pairs, in the order they are asked
    answers = [context + 2 * slot for slot in slots]
    for at, pair in zip(answers, asked, strict=True):
        ids[at], ids[at + 1] = keys[pair], values[pair]
    return ids, answers


def generate_sequences(spec: RecallSpec) -> dict[str, list[list[list[int]]]]:
    """``{"train"|"val"|"test": [[ids, answers], ...]}``, deterministic for ``spec``."""
    rng = random.Random(spec.seed)
    rows = [list(sequence(rng, spec)) for _ in range(spec.n_train + spec.n_val + spec.n_test)]
    a, b = spec.n_train, spec.n_train + spec.n_val
    return {"train": rows[:a], "val": rows[a:b], "test": rows[b:]}


def cache_params(spec: RecallSpec) -> dict:
    return {"generator": "recall-mqar", "version": GENERATOR_VERSION, **asdict(spec)}
