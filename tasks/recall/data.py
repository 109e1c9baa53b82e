"""Recall data: the embedded MQAR sequences (``synthetic.py``) as next-token targets on the answers.

A batch holds ``ids`` (B, L), the tokens, and ``targets`` (B, L): at a queried key's position the
next token (its value), ``IGNORE`` everywhere else, so loss and accuracy count the answers only.
The task is synthetic by design (recall is measured on sequences whose answers are known), so it
has no real-format loader: ``--data`` is refused.
"""

from __future__ import annotations

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from tasks._cache import cached_json
from tasks._text import Vocab

from .synthetic import SPEC_KEYS, RecallSpec, cache_params, generate_sequences

SPLITS = ("train", "val", "test")
IGNORE = -100  # F.cross_entropy's ignore_index: not an answer


def targets_of(ids: Tensor, answers: list[list[int]]) -> Tensor:
    """(B, L) next-token targets at the answer positions, IGNORE elsewhere."""
    targets = torch.full_like(ids, IGNORE)
    for row, positions in enumerate(answers):
        at = torch.as_tensor(positions, dtype=torch.long)
        targets[row, at] = ids[row, at + 1]
    return targets


class RecallSet(torch.utils.data.Dataset):
    def __init__(self, rows: list[list[list[int]]]) -> None:
        self.ids = torch.tensor([ids for ids, _ in rows], dtype=torch.long)  # (N, L)
        self.targets = targets_of(self.ids, [answers for _, answers in rows])

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {"ids": self.ids[i], "targets": self.targets[i]}


class RecallData(L.LightningDataModule):
    """Splits, vocabulary and loaders; generates (or reads the cache) eagerly, so bad knobs raise here."""

    def __init__(self, *, spec: RecallSpec, batch_size: int, eval_batch_size: int, seed: int) -> None:
        super().__init__()
        for name, value in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        raw = cached_json("recall", cache_params(spec), lambda: generate_sequences(spec))
        self.spec, self.vocab = spec, Vocab(spec.tokens())
        self.sets = {split: RecallSet(raw[split]) for split in SPLITS}
        self.max_len = spec.seq_len
        self.batch_size, self.eval_batch_size, self.seed = batch_size, eval_batch_size, seed

    def train_dataloader(self) -> DataLoader:
        order = torch.Generator().manual_seed(self.seed)  # the run's seed orders the batches
        return DataLoader(self.sets["train"], batch_size=self.batch_size, shuffle=True, generator=order)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.sets["val"], batch_size=self.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.sets["test"], batch_size=self.eval_batch_size)


def build_data(cfg: dict, data: str | None, seed: int) -> RecallData:
    """The data section's sequences (``generator_seed`` and the ``RecallSpec`` knobs)."""
    if data is not None:
        raise ValueError(f"--data {data}: the recall task has embedded data only (MQAR sequences generated "
                         "from data.generator_seed); drop --data and set the data section's knobs")
    spec = RecallSpec(seed=cfg["generator_seed"], **{k: cfg[k] for k in SPEC_KEYS if k != "seed"})
    return RecallData(spec=spec, batch_size=cfg["batch_size"], eval_batch_size=cfg["eval_batch_size"],
                      seed=seed)
