"""The graph LightningModule: full-batch transductive node classification with GAT's network.

Loss: cross-entropy on the nodes of the step's split; Adam with L2 ``weight_decay`` on every
parameter, as in the GAT paper. Accuracy is micro-averaged over the split's nodes. One step is the
whole graph, scored on the stage's nodes.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.functional.classification import multiclass_accuracy

import attention
from tasks._base import TaskModule, log_train_step

from .model import BASELINES, build_layer, feature_dropout


class NodeClassifier(TaskModule):
    """Full-batch transductive node classification (module docstring); one step = the whole graph."""

    size_key = "index"  # the nodes of the step's split
    optimizer: ClassVar[type[torch.optim.Optimizer]] = torch.optim.Adam  # L2 decay, as in the GAT paper

    def __init__(self, *, variant: str, in_dim: int, num_classes: int, hidden: int, heads: int,
                 out_heads: int, dropout: float, attn_dropout: float, add_self_loops: bool,
                 lr: float, weight_decay: float, variant_kwargs: dict | None = None) -> None:
        for name, value in (("hidden", hidden), ("heads", heads), ("out_heads", out_heads)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"model.{name} must be a positive integer, got {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"model.dropout must be in [0, 1), got {dropout!r}")
        if lr <= 0 or weight_decay < 0:
            raise ValueError(f"optim.lr must be > 0 and optim.weight_decay >= 0, got {lr!r} and "
                             f"{weight_decay!r}")
        super().__init__(lr=lr, weight_decay=weight_decay)
        self.variant = variant
        common = {"attn_dropout": attn_dropout, "add_self_loops": add_self_loops, **(variant_kwargs or {})}
        self.layers = nn.ModuleList([
            build_layer(variant, in_dim=in_dim, out_dim=hidden, heads=heads, concat=True, **common),
            build_layer(variant, in_dim=heads * hidden, out_dim=num_classes, heads=out_heads, concat=False,
                        **common),
        ])
        self.dropout = dropout

    def _layer(self, layer: nn.Module, h: Tensor, edge_index: Tensor) -> Tensor:
        if isinstance(layer, attention.GraphAttention):
            return layer(h, edge_index).output
        return layer(h, edge_index)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        h = feature_dropout(x, self.dropout, self.training)  # (N, F)
        h = F.elu(self._layer(self.layers[0], h, edge_index))  # (N, heads * hidden)
        h = F.dropout(h, self.dropout, self.training)
        return self._layer(self.layers[1], h, edge_index)  # (N, classes)

    def attention_weights(self, batch: dict[str, Tensor]) -> list[tuple[Tensor, Tensor]]:
        """Per layer: the attended edges (2, E') and their weights (E', H), in eval mode.

        Row 0 of the edges is the source j, row 1 the target i; weights of one target sum to 1
        per head. The baselines have no attention: an empty list.
        """
        if self.variant in BASELINES:
            return []
        with self.evaluating():
            h, result = batch["x"], []
            edge_index, n = batch["edge_index"], batch["x"].shape[0]
            for depth, layer in enumerate(self.layers):
                out = layer(h, edge_index, return_weights=True)
                result.append((layer.attended_edges(edge_index, n), out.weights))
                h = F.elu(out.output) if depth == 0 else out.output
        return result

    def _step(self, batch: dict[str, Tensor], stage: str) -> Tensor:
        index = batch["index"]
        logits = self(batch["x"], batch["edge_index"])[index]  # (S, classes)
        target = batch["y"][index]  # (S,)
        loss = F.cross_entropy(logits, target)
        acc = multiclass_accuracy(logits.argmax(-1), target, num_classes=self.hparams.num_classes,
                                  average="micro")
        # One step holds the whole split; batch_size=1 saves Lightning guessing it from the dict.
        if stage == "train":
            log_train_step(self, {"train/loss": loss, "train/acc": acc}, batch_size=1)
        else:
            self.log(f"{stage}/loss", loss, batch_size=1, prog_bar=stage == "val")
            self.log(f"{stage}/acc", acc, batch_size=1, prog_bar=True)
        if stage != "train":  # per node: correct or not (acc is their mean)
            correct = (logits.argmax(-1) == target).float().tolist()
            if stage == "val":
                self.add_val_items(correct)
        if stage == "test":
            self.add_test_items(correct, [list(pair) for pair in zip(index.tolist(), target.tolist(),
                                                                    strict=True)])
        return loss

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def evaluate(self, batch: dict[str, Tensor], stage: str) -> None:
        self._step(batch, stage)
