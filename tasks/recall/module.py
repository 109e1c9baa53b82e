"""The recall LightningModule: cross-entropy and accuracy on the answer positions only.

Items for the paired bootstrap are sequences: each one's share of correctly answered queries.
Every sequence has ``data.num_queries`` answers, so their mean is the accuracy over all answers
(``test/acc``), which ``item_kind = "mean"`` reproduces.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from tasks._base import TaskModule, log_train_step
from tasks._text import Vocab

from .data import IGNORE
from .model import RecallDecoder, RecallLSTM


class RecallModule(TaskModule):
    size_key = "ids"

    def __init__(self, *, model: RecallDecoder | RecallLSTM, vocab: Vocab, variant: str, lr: float,
                 weight_decay: float) -> None:
        super().__init__(lr=lr, weight_decay=weight_decay)
        self.model, self.vocab, self.variant = model, vocab, variant

    def _loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE)

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        loss = self._loss(self.model(batch["ids"])[0], batch["targets"])
        log_train_step(self, {"train/loss": loss}, batch_size=self.samples_in(batch), prog_bar=True)
        return loss

    def evaluate(self, batch: dict, stage: str) -> None:
        logits, _ = self.model(batch["ids"])  # (B, L, V)
        targets, size = batch["targets"], self.samples_in(batch)
        answers = targets != IGNORE  # (B, L)
        correct = (logits.argmax(-1) == targets) & answers
        shares = correct.sum(1) / answers.sum(1).clamp(min=1)  # per sequence
        # The batch mean of equal-count shares, weighted by sequences: the epoch value is the
        # accuracy over every answer.
        self.log(f"{stage}/loss", self._loss(logits, targets), batch_size=size)
        self.log(f"{stage}/acc", shares.mean(), batch_size=size, prog_bar=stage == "val")
        values = shares.tolist()
        if stage == "val":
            self.add_val_items(values)
        if stage == "test":
            self.add_test_items(values, batch["ids"].tolist())  # a sequence names itself

    def attention_weights(self, batch: dict) -> dict:
        """The last block's causal self-attention of ``batch`` (B, L, L), averaged over heads, with the
        tokens, answer positions and predictions; a variant that forms no weights raises
        ``attention.NotSupportedError``, ``none`` (no attention) ValueError."""
        if not isinstance(self.model, RecallDecoder):
            raise ValueError(f"variant {self.variant!r} has no attention weights (the LSTM baseline)")
        ids = batch["ids"].to(self.device)
        with self.evaluating():
            logits, weights = self.model(ids, need_weights=True)
        answers = [row.nonzero().flatten().tolist() for row in (batch["targets"] != IGNORE)]
        tokens = [[self.vocab.itos[i] for i in row] for row in ids.tolist()]
        return {"weights": weights.cpu(), "tokens": tokens, "answers": answers,
                "prediction": logits.argmax(-1).cpu()}
