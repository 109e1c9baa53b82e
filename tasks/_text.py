"""Text utilities shared by the text tasks (translation, sentiment).

- ``tokenize``: a word-level tokenizer (lower-cased words, numbers and single punctuation marks);
  ``detokenize`` joins tokens with spaces (BLEU then re-tokenises with sacreBLEU's 13a rules).
- ``Vocab``: built from the training split only; ids 0..3 are ``<pad> <unk> <bos> <eos>``.
- ``read_lines``: one item per line, errors name the file and the line number.
- ``pad``, ``LengthBatchSampler``: padding and length-bucketed batches (less padding per batch).
- ``dense_variant_reasons``: why a dense attention variant cannot serve a task's uses, from the
  variant's declared capabilities and the refusals of the instance the run would build (never a
  hard-coded list); ``forms_weights`` and ``run_device`` read the same capability data and config.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import ClassVar, NamedTuple

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)
PAD_ID, UNK_ID, BOS_ID, EOS_ID = range(4)

# A word (letters/digits, with inner apostrophes or hyphens kept: "don't", "well-made"), or any
# other single non-space character (punctuation is a token of its own).
_TOKEN = re.compile(r"[^\W_]+(?:['\-][^\W_]+)*|[^\w\s]|_", re.UNICODE)


def tokenize(text: str, *, lowercase: bool = True) -> list[str]:
    """Split ``text`` into word and punctuation tokens: "Great, isn't it?" -> great , isn't it ?"""
    return _TOKEN.findall(text.lower() if lowercase else text)


def detokenize(tokens: Iterable[str]) -> str:
    return " ".join(tokens)


class Vocab:
    """Token <-> id mapping; specials first, then tokens by decreasing count (ties: alphabetical)."""

    def __init__(self, tokens: Sequence[str]) -> None:
        if tuple(tokens[:len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a vocabulary must start with the specials {SPECIALS}, got {tuple(tokens[:4])}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("vocabulary tokens must be unique")
        self.itos = list(tokens)
        self.stoi = {tok: i for i, tok in enumerate(self.itos)}

    @classmethod
    def build(cls, sentences: Iterable[Sequence[str]], *, min_freq: int = 1,
              max_size: int | None = None) -> Vocab:
        """From tokenised training sentences: tokens seen at least ``min_freq`` times, at most
        ``max_size`` of them (None: no limit)."""
        if isinstance(min_freq, bool) or not isinstance(min_freq, int) or min_freq < 1:
            raise ValueError(f"min_freq must be an integer >= 1, got {min_freq!r}")
        if max_size is not None and (isinstance(max_size, bool) or not isinstance(max_size, int)
                                     or max_size < 1):
            raise ValueError(f"max_size must be a positive integer or None, got {max_size!r}")
        counts = Counter(tok for sentence in sentences for tok in sentence)
        ranked = sorted((tok for tok, n in counts.items() if n >= min_freq and tok not in SPECIALS),
                        key=lambda tok: (-counts[tok], tok))
        return cls([*SPECIALS, *ranked[:max_size]])

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: Iterable[str]) -> list[int]:
        return [self.stoi.get(tok, UNK_ID) for tok in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens of ``ids`` up to the first ``<eos>``, without ``<pad>``/``<bos>``."""
        out = []
        for i in ids:
            if i == EOS_ID:
                break
            if i not in (PAD_ID, BOS_ID):
                out.append(self.itos[i])
        return out


def read_lines(path: str | Path, *, what: str = "one sentence per line") -> list[str]:
    """The lines of a UTF-8 text file (without line ends); an empty or undecodable line raises
    ValueError naming the file and the 1-based line number."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: file not found (expected {what})")
    lines = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as err:
                raise ValueError(f"{path}:{number}: not UTF-8 text ({err.reason})") from err
            if not line.strip():
                raise ValueError(f"{path}:{number}: empty line (expected {what})")
            lines.append(line)
    if not lines:
        raise ValueError(f"{path}: the file is empty (expected {what})")
    return lines


def pad(sequences: Sequence[Sequence[int]], *, pad_id: int = PAD_ID) -> Tensor:
    """Right-pad id lists to one (B, L) LongTensor (L = longest)."""
    longest = max((len(s) for s in sequences), default=0)
    out = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
    for row, seq in enumerate(sequences):
        out[row, :len(seq)] = torch.as_tensor(seq, dtype=torch.long)
    return out


class LengthBatchSampler(torch.utils.data.Sampler):
    """Batches of similar lengths: shuffle, sort within pools of ``pool`` batches, shuffle batches.

    Deterministic: epoch e uses ``torch.Generator().manual_seed(seed + e)``. With
    ``shuffle=False`` the batches follow the dataset order (evaluation).
    """

    def __init__(self, lengths: Sequence[int], *, batch_size: int, shuffle: bool, seed: int,
                 pool: int = 32) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.lengths = list(lengths)
        self.batch_size, self.shuffle, self.seed, self.pool = batch_size, shuffle, seed, pool
        self.epoch = 0

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        n, size = len(self.lengths), self.batch_size
        if not self.shuffle:
            yield from (list(range(i, min(i + size, n))) for i in range(0, n, size))
            return
        gen = torch.Generator().manual_seed(self.seed + self.epoch)
        self.epoch += 1
        order = torch.randperm(n, generator=gen).tolist()
        span = size * self.pool
        batches = []
        for start in range(0, n, span):
            chunk = sorted(order[start:start + span], key=self.lengths.__getitem__)
            batches += [chunk[i:i + size] for i in range(0, len(chunk), size)]
        yield from (batches[i] for i in torch.randperm(len(batches), generator=gen).tolist())


class BucketedTextData(L.LightningDataModule):
    """The loaders every variable-length text task shares: training batches of similar lengths
    (``LengthBatchSampler``, reshuffled each epoch from the run's seed) and evaluation in order.

    A subclass sets ``collate`` (its batch function), fills ``self.sets`` ({train, val, test}
    datasets) and calls ``set_loading(batch_size, eval_batch_size, seed)``; ``train_lengths`` gives
    each training example's length (default: ``len`` of the training set's ``ids``).
    """

    collate: ClassVar[Callable[[list], dict]]
    sets: dict

    def set_loading(self, batch_size: int, eval_batch_size: int, seed: int) -> None:
        self.batch_size, self.eval_batch_size, self.seed = batch_size, eval_batch_size, seed

    def train_lengths(self) -> list[int]:
        return [len(ids) for ids in self.sets["train"].ids]

    def train_dataloader(self) -> DataLoader:
        sampler = LengthBatchSampler(self.train_lengths(), batch_size=self.batch_size, shuffle=True,
                                     seed=self.seed)
        return DataLoader(self.sets["train"], batch_sampler=sampler, collate_fn=type(self).collate)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.sets["val"], batch_size=self.eval_batch_size, collate_fn=type(self).collate)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.sets["test"], batch_size=self.eval_batch_size, collate_fn=type(self).collate)


class AttentionUse(NamedTuple):
    """One place where a task calls a dense variant, described by what it asks of it."""

    where: str  # e.g. "decoder self-attention"
    lq: int
    lk: int
    key_padding: bool  # a boolean key-padding mask is passed
    causal: bool
    dropout_p: float = 0.0
    need_weights: bool = False
    head_dim: int = 8  # what the model builds the variant with (some variants check it)
    num_heads: int = 1
    additive: bool = False  # a float mask is added to the scores (ALiBi's biases: model.positions)


def dense_variant_reasons(variant: str, uses: Sequence[AttentionUse], *, device: str = "cpu",
                          baselines: Sequence[str] = ("none",), kwargs: dict | None = None) -> list[str]:
    """Why ``variant`` cannot serve every use ([] = it can): its declared capabilities, then the
    refusals of the instance the model would build (``kwargs``: its constructor arguments from
    ``model.variant_kwargs``), such as an explicit sdpa backend or an xformers extension that cannot
    load. Constructor arguments it rejects raise ValueError: that is a config error, not a refusal."""
    import attention

    if variant in baselines:
        return []
    if variant not in attention.REGISTRY:
        return [f"unknown variant {variant!r} (valid: {', '.join((*baselines, *attention.VARIANTS))})"]
    cls = attention.REGISTRY[variant]
    if not issubclass(cls, attention.DenseAttention):
        return [f"{variant} is graph attention (node features and an edge list); this task attends "
                "over token sequences and needs a dense variant"]
    reasons = []
    for use in uses:
        # Tiny tensors on the run's device: the checks read devices, shapes, head dims and masks.
        query = torch.zeros(1, use.num_heads, use.lq, use.head_dim, device=device)
        key = torch.zeros(1, use.num_heads, use.lk, use.head_dim, device=device)
        mask = torch.ones(1, 1, 1, use.lk, dtype=torch.bool, device=device) if use.key_padding else None
        if use.additive:
            mask = torch.zeros(1, use.num_heads, use.lq, use.lk, device=device)
        request = {"is_causal": use.causal, "dropout_p": use.dropout_p, "need_weights": use.need_weights}
        found = attention.capability_reasons(variant, cls.capabilities, query, key, mask, **request)
        if not found:
            found = _instance(variant, use, kwargs).not_supported_reasons(query, key, mask, **request)
        reasons += [f"{use.where}: {r}" for r in found]
    return reasons


def covers_every_call(variant: str, uses: Sequence[AttentionUse], kwargs: dict | None) -> str | None:
    """Why ``variant`` (built with ``kwargs``) computes exactly ``reference`` at every one of ``uses``
    (their longest lengths; shorter calls and masks included), or None when it may not: a variant
    that does not say so (``DenseAttention.covers_every_key``), or attention-weight dropout, whose
    draws it need not share with reference."""
    import attention

    cls = attention.REGISTRY.get(variant)
    if variant == "reference" or cls is None or not issubclass(cls, attention.DenseAttention) or not uses:
        return None
    if any(use.dropout_p > 0 for use in uses):
        return None
    built = [_instance(variant, use, kwargs) for use in uses]
    if not all(attn.covers_every_key(use.lq, use.lk) for attn, use in zip(built, uses, strict=True)):
        return None
    calls = "; ".join(f"{use.where}: {use.lq} quer{'y' if use.lq == 1 else 'ies'} over up to {use.lk} keys"
                      for use in uses)
    return (f"{variant} ({built[0].extra_repr()}) lets every query see every key at this task's lengths "
            f"({calls}), so it computes reference exactly")


def _instance(variant: str, use: AttentionUse, kwargs: dict | None):
    import attention

    try:
        return attention.build_in_context(variant, head_dim=use.head_dim, num_heads=use.num_heads,
                                          max_len=use.lk, **(kwargs or {}))
    except (TypeError, ValueError) as err:
        raise ValueError(f"model.variant_kwargs for {variant!r} ({kwargs or {}}): {err}") from err


def forms_weights(variant: str) -> bool:
    """Whether ``variant`` is a registered attention variant that can return its weights."""
    import attention

    cls = attention.REGISTRY.get(variant)
    return cls is not None and cls.capabilities.weights


def spread(n: int, k: int) -> list[int]:
    """``k`` indices spread evenly over range(n), first and last included (all of them if n <= k)."""
    if n <= k:
        return list(range(n))
    return [round(i * (n - 1) / (k - 1)) for i in range(k)] if k > 1 else [0]


def run_device(trainer: dict) -> str:
    """The device type a Lightning Trainer built from the config's ``trainer`` section will use."""
    accelerator = str(trainer.get("accelerator", "auto"))
    if accelerator in ("gpu", "cuda"):
        return "cuda"
    if accelerator == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return accelerator
