"""The ListOps LightningModule: cross-entropy over the 10 values, accuracy (micro), [CLS] attention."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics.classification import MulticlassAccuracy

from tasks._base import TaskModule, log_train_step
from tasks._text import BOS_ID, PAD_ID, Vocab

from .model import ListOpsModel
from .synthetic import NUM_CLASSES

CLS = "[CLS]"  # how the leading <bos> shows in attention examples


class ListOpsModule(TaskModule):
    size_key = "label"

    def __init__(self, *, model: ListOpsModel, vocab: Vocab, variant: str, lr: float,
                 weight_decay: float) -> None:
        super().__init__(lr=lr, weight_decay=weight_decay)
        self.model, self.vocab, self.variant = model, vocab, variant
        # One metric object per stage: Lightning accumulates them over the epoch.
        self.acc = torch.nn.ModuleDict({s: MulticlassAccuracy(NUM_CLASSES, average="micro")
                                        for s in ("val", "test")})

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        loss = F.cross_entropy(self.model(batch["ids"]), batch["label"])
        log_train_step(self, {"train/loss": loss}, batch_size=self.samples_in(batch), prog_bar=True)
        return loss

    def evaluate(self, batch: dict, stage: str) -> None:
        logits = self.model(batch["ids"])
        size = self.samples_in(batch)
        self.log(f"{stage}/loss", F.cross_entropy(logits, batch["label"]), batch_size=size)
        self.acc[stage](logits, batch["label"])
        self.log(f"{stage}/acc", self.acc[stage], batch_size=size, prog_bar=stage == "val")
        correct = (logits.argmax(-1) == batch["label"]).float().tolist()  # per expression (acc: their mean)
        if stage == "val":
            self.add_val_items(correct)
        if stage == "test":
            keys = [[label, [i for i in row if i != PAD_ID]] for label, row in
                    zip(batch["label"].tolist(), batch["ids"].tolist(), strict=True)]
            self.add_test_items(correct, keys)

    def attention_weights(self, batch: dict) -> dict:
        """The [CLS] query's weights in the last block for heatmaps: ``weights`` (B, L) over the positions
        ([CLS] first, zeros at padding), ``tokens`` and the predicted value per expression. ``none`` raises
        ValueError; a variant that does not form weights ``attention.NotSupportedError``."""
        with self.evaluating():
            logits, weights = self.model.cls_attention(batch["ids"].to(self.device))
        tokens = [[CLS if i == BOS_ID else self.vocab.itos[i] for i in row if i != PAD_ID]
                  for row in batch["ids"].tolist()]
        return {"weights": weights.cpu(), "tokens": tokens, "prediction": logits.argmax(-1).tolist()}
