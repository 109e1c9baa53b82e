"""The sentiment LightningModule: cross-entropy, accuracy (micro) and F1 (macro), pooling weights."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from tasks._base import TaskModule, log_train_step
from tasks._text import Vocab

from .model import SentimentModel


class SentimentModule(TaskModule):
    size_key = "label"

    def __init__(self, *, model: SentimentModel, vocab: Vocab, num_classes: int, variant: str, lr: float,
                 weight_decay: float) -> None:
        super().__init__(lr=lr, weight_decay=weight_decay)
        self.model, self.vocab, self.variant = model, vocab, variant
        # One metric object per stage: Lightning accumulates them over the epoch.
        stages = ("val", "test")
        self.acc = torch.nn.ModuleDict({s: MulticlassAccuracy(num_classes, average="micro") for s in stages})
        self.f1 = torch.nn.ModuleDict({s: MulticlassF1Score(num_classes, average="macro") for s in stages})

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        loss = F.cross_entropy(self.model(batch["ids"]), batch["label"])
        log_train_step(self, {"train/loss": loss}, batch_size=self.samples_in(batch), prog_bar=True)
        return loss

    def evaluate(self, batch: dict, stage: str) -> None:
        logits = self.model(batch["ids"])
        size = self.samples_in(batch)
        self.log(f"{stage}/loss", F.cross_entropy(logits, batch["label"]), batch_size=size)
        self.acc[stage](logits, batch["label"])
        self.f1[stage](logits, batch["label"])
        self.log(f"{stage}/acc", self.acc[stage], batch_size=size, prog_bar=stage == "val")
        self.log(f"{stage}/f1", self.f1[stage], batch_size=size)
        correct = (logits.argmax(-1) == batch["label"]).float().tolist()  # per review (acc: their mean)
        if stage == "val":
            self.add_val_items(correct)
        if stage == "test":
            keys = [[label, [i for i in row if i]] for label, row in
                    zip(batch["label"].tolist(), batch["ids"].tolist(), strict=True)]
            self.add_test_items(correct, keys)

    def attention_weights(self, batch: dict) -> dict:
        """Pooling weights of ``batch`` for heatmaps: ``weights`` (B, L) over the token positions
        (zeros at padding), ``tokens`` and the predicted class per review. ``none`` has no
        pooling attention (ValueError); a variant that does not form weights raises
        ``attention.NotSupportedError``."""
        if self.model.pool is None:
            raise ValueError(f"variant {self.variant!r} has no attention pooling weights "
                             "(final-state pooling)")
        with self.evaluating():
            pooled, weights = self.model.pooled(batch["ids"].to(self.device), need_weights=True)
            prediction = self.model.classify(pooled).argmax(-1)
        tokens = [[self.vocab.itos[i] for i in row if i] for row in batch["ids"].tolist()]
        return {"weights": weights.cpu(), "tokens": tokens, "prediction": prediction.tolist()}
