"""The VQA LightningModule: soft-target cross-entropy, VQA accuracy overall and per question type.

Logged metrics (percent): ``<stage>/acc`` (the VQA accuracy of ``tasks.metrics.vqa_accuracy``;
exact match when a question has one answer, as in the embedded data), ``<stage>/acc_<type>``
per question type and, for Sort-of-CLEVR, ``<stage>/acc_relational`` and
``<stage>/acc_non_relational``. ``val/acc`` is the monitored metric.
"""

from __future__ import annotations

import re
from collections import defaultdict

import torch
from torch import Tensor, nn

from tasks._base import TaskModule, log_train_step
from tasks.metrics import vqa_accuracy

from .sortofclevr import NON_RELATIONAL, RELATIONAL

GROUPS = {"relational": RELATIONAL, "non_relational": NON_RELATIONAL}


def metric_name(kind: str) -> str:
    """A question type as a metric key: "yes/no" -> "yes_no"."""
    return re.sub(r"[^0-9a-zA-Z]+", "_", kind).strip("_").lower() or "other"


class VQAModule(TaskModule):
    size_key = "question"
    item_scale = 100.0  # test items: each question's VQA accuracy in [0, 1]; test/acc is in percent

    def __init__(self, *, model: nn.Module, answer_list: list[str], lr: float, weight_decay: float) -> None:
        super().__init__(lr=lr, weight_decay=weight_decay)
        self.model, self.answer_list = model, list(answer_list)
        self._scores: dict[str, list[float]] = defaultdict(list)

    def forward(self, batch: dict, need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        return self.model(batch["images"], batch["image_row"], batch["question"], batch["lengths"],
                          need_weights=need_weights)

    def _loss(self, logits: Tensor, target: Tensor) -> Tensor:
        # Soft targets (rows sum to 1; an unanswerable evaluation row is all zero and adds 0).
        return -(target * torch.log_softmax(logits, dim=-1)).sum(-1).mean()

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        logits, _ = self(batch)
        loss = self._loss(logits, batch["target"])
        log_train_step(self, {"train/loss": loss}, batch_size=self.samples_in(batch), prog_bar=True)
        return loss

    def evaluate(self, batch: dict, stage: str) -> None:
        logits, _ = self(batch)
        self.log(f"{stage}/loss", self._loss(logits, batch["target"]), batch_size=self.samples_in(batch))
        preds = [self.answer_list[i] for i in logits.argmax(-1).tolist()]
        scores = [vqa_accuracy(pred, answers) for pred, answers in zip(preds, batch["answers"], strict=True)]
        for score, kind in zip(scores, batch["types"], strict=True):
            self._scores[kind].append(score)
        if stage == "val":
            self.add_val_items(scores)
        if stage == "test":
            keys = [[int(i), list(a), k] for i, a, k in zip(batch["image_index"].tolist(), batch["answers"],
                                                             batch["types"], strict=True)]
            self.add_test_items(scores, keys)

    def _log_scores(self, stage: str) -> None:
        scores, self._scores = self._scores, defaultdict(list)
        if not scores:
            return
        every = [s for values in scores.values() for s in values]
        self.log(f"{stage}/acc", 100.0 * sum(every) / len(every))
        if len(scores) > 1:
            for kind, values in sorted(scores.items()):
                self.log(f"{stage}/acc_{metric_name(kind)}", 100.0 * sum(values) / len(values))
        for group, kinds in GROUPS.items():
            values = [s for kind in kinds for s in scores.get(kind, [])]
            if values:
                self.log(f"{stage}/acc_{group}", 100.0 * sum(values) / len(values))

    def on_validation_epoch_end(self) -> None:
        self._log_scores("val")

    def on_test_epoch_end(self) -> None:
        self._log_scores("test")

    def attention_maps(self, batch: dict) -> dict:
        """Where each hop looked, for overlays on the images.

        Returns ``weights`` (B, hops, grid, grid) (row-major regions, rows sum to 1), the
        predicted ``answers`` and ``image_index`` (each question's image in its split). ``none``
        has no attention (ValueError); a variant that does not form weights raises
        ``attention.NotSupportedError``.
        """
        if self.model.hops == 0:
            raise ValueError("variant 'none' has no attention maps (it answers from the mean-pooled image)")
        with self.evaluating():
            batch = {k: v.to(self.device) if isinstance(v, Tensor) else v for k, v in batch.items()}
            logits, weights = self(batch, need_weights=True)
        grid = self.model.encoder.grid
        return {"weights": weights.view(weights.shape[0], weights.shape[1], grid, grid).cpu(),
                "answers": [self.answer_list[i] for i in logits.argmax(-1).tolist()],
                "image_index": batch["image_index"].cpu()}
