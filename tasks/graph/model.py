"""Two-layer node classifiers: GAT's network with any graph attention variant, and two baselines.

Network (Velickovic et al., "Graph Attention Networks", ICLR 2018, transductive setup):

    h   = ELU(layer_1(dropout(x)))              layer_1: F -> heads * hidden (heads concatenated)
    out = layer_2(dropout(h))                   layer_2: heads * hidden -> classes (out_heads averaged)

With ``gat``, ``gatv2`` or ``dot`` both layers are that graph attention (``attention.build``),
with ``attn_dropout`` on the attention weights. The baselines keep the network and swap the
layers:

- ``none``: GCN (Kipf & Welling, ICLR 2017): h'_i = sum_{j in N(i) + i} x_j W / sqrt(d_i d_j), a
  fixed symmetric-normalised mean over the neighbours and the node itself (d counts the loop);
  the first layer is heads * hidden wide, so only attention differs from the GAT network.
- ``mlp``: the same widths with ``nn.Linear``: no graph at all.

Loss: cross-entropy on the nodes of the step's split; Adam with L2 ``weight_decay`` on every
parameter, as in the GAT paper. Accuracy is micro-averaged over the split's nodes.
"""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.functional.classification import multiclass_accuracy

import attention
from tasks._base import log_train_step

BASELINES = ("none", "mlp")


def feature_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """``F.dropout(x, p)`` drawing the mask only at the nonzero entries of ``x``.

    The same distribution as ``F.dropout`` (a zero stays zero whether dropped or kept), but
    bag-of-words features such as Cora's are ~1% nonzero: drawing 3.9M Bernoulli samples per
    step was most of a GAT step on Cora.
    """
    if not training or p == 0.0:
        return x
    rows, cols = x.nonzero(as_tuple=True)  # (nnz,), (nnz,)
    keep = torch.rand(rows.shape, device=x.device) >= p  # (nnz,)
    rows, cols = rows[keep], cols[keep]
    out = torch.zeros_like(x)
    out[rows, cols] = x[rows, cols] / (1.0 - p)
    return out


class GCNLayer(nn.Module):
    """One GCN propagation step, aggregated with ``index_add_`` over the edge list (no N x N matrix)."""

    def __init__(self, *, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.lin = nn.Linear(in_dim, out_dim, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_dim))
        nn.init.xavier_uniform_(self.lin.weight)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        n = x.shape[0]
        loops = torch.arange(n, device=x.device)
        src = torch.cat([edge_index[0], loops])  # (E + N,)
        dst = torch.cat([edge_index[1], loops])  # (E + N,)
        ones = torch.ones_like(dst, dtype=x.dtype)
        degree = torch.zeros(n, device=x.device, dtype=x.dtype).index_add_(0, dst, ones)  # (N,) with loop
        norm = (degree[src] * degree[dst]).rsqrt()  # (E + N,)
        h = self.lin(x)  # (N, C)
        out = torch.zeros_like(h).index_add_(0, dst, h[src] * norm.unsqueeze(1))  # (N, C)
        return out + self.bias


class NodeLinear(nn.Linear):
    """``nn.Linear`` with the graph layers' call signature; the edges are ignored (MLP baseline)."""

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return super().forward(x)


def build_layer(variant: str, *, in_dim: int, out_dim: int, heads: int, concat: bool,
                attn_dropout: float, add_self_loops: bool) -> nn.Module:
    """One layer of the network for ``variant``; the baselines' layer is ``heads * out_dim`` wide
    when ``concat`` (matching the attention layer), else ``out_dim``."""
    if variant in BASELINES:
        width = heads * out_dim if concat else out_dim
        return GCNLayer(in_dim=in_dim, out_dim=width) if variant == "none" else NodeLinear(in_dim, width)
    return attention.build(variant, in_dim=in_dim, out_dim=out_dim, heads=heads, concat=concat,
                           dropout=attn_dropout, add_self_loops=add_self_loops)


class NodeClassifier(L.LightningModule):
    """Full-batch transductive node classification (module docstring); one step = the whole graph."""

    def __init__(self, *, variant: str, in_dim: int, num_classes: int, hidden: int, heads: int,
                 out_heads: int, dropout: float, attn_dropout: float, add_self_loops: bool,
                 lr: float, weight_decay: float) -> None:
        super().__init__()
        for name, value in (("hidden", hidden), ("heads", heads), ("out_heads", out_heads)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"model.{name} must be a positive integer, got {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"model.dropout must be in [0, 1), got {dropout!r}")
        if lr <= 0 or weight_decay < 0:
            raise ValueError(f"optim.lr must be > 0 and optim.weight_decay >= 0, got {lr!r} and "
                             f"{weight_decay!r}")
        self.save_hyperparameters()
        self.variant = variant
        common = {"attn_dropout": attn_dropout, "add_self_loops": add_self_loops}
        self.layers = nn.ModuleList([
            build_layer(variant, in_dim=in_dim, out_dim=hidden, heads=heads, concat=True, **common),
            build_layer(variant, in_dim=heads * hidden, out_dim=num_classes, heads=out_heads, concat=False,
                        **common),
        ])
        self.dropout, self.lr, self.weight_decay = dropout, lr, weight_decay

    def _layer(self, layer: nn.Module, h: Tensor, edge_index: Tensor) -> Tensor:
        if isinstance(layer, attention.GraphAttention):
            return layer(h, edge_index).output
        return layer(h, edge_index)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        h = feature_dropout(x, self.dropout, self.training)  # (N, F)
        h = F.elu(self._layer(self.layers[0], h, edge_index))  # (N, heads * hidden)
        h = F.dropout(h, self.dropout, self.training)
        return self._layer(self.layers[1], h, edge_index)  # (N, classes)

    @torch.no_grad()
    def attention_weights(self, batch: dict[str, Tensor]) -> list[tuple[Tensor, Tensor]]:
        """Per layer: the attended edges (2, E') and their weights (E', H), in eval mode.

        Row 0 of the edges is the source j, row 1 the target i; weights of one target sum to 1
        per head. The baselines have no attention: an empty list.
        """
        if self.variant in BASELINES:
            return []
        was_training = self.training
        self.eval()
        try:
            h, result = batch["x"], []
            edge_index, n = batch["edge_index"], batch["x"].shape[0]
            for depth, layer in enumerate(self.layers):
                out = layer(h, edge_index, return_weights=True)
                result.append((layer.attended_edges(edge_index, n), out.weights))
                h = F.elu(out.output) if depth == 0 else out.output
            return result
        finally:
            self.train(was_training)

    def samples_in(self, batch: dict[str, Tensor]) -> int:
        return int(batch["index"].numel())

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
        return loss

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
