"""One node-classification graph: features, an undirected edge list, labels and the three splits."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Graph:
    """A transductive node-classification dataset.

    Shapes: x (N, F) float32, edge_index (2, E) long (both directions of every undirected edge,
    no self loops, no duplicates; row 0 source, row 1 target), y (N,) long with -1 for
    unlabelled nodes, train/val/test_index disjoint long node ids.
    """

    x: Tensor
    edge_index: Tensor
    y: Tensor
    train_index: Tensor
    val_index: Tensor
    test_index: Tensor
    num_classes: int
    name: str

    def __post_init__(self) -> None:
        n = self.x.shape[0]
        if self.x.ndim != 2 or self.y.shape != (n,):
            raise ValueError(f"{self.name}: x must be (N, F) and y (N,), got {tuple(self.x.shape)} and "
                             f"{tuple(self.y.shape)}")
        if self.edge_index.ndim != 2 or self.edge_index.shape[0] != 2:
            raise ValueError(f"{self.name}: edge_index must be (2, E), got {tuple(self.edge_index.shape)}")
        splits = torch.cat([self.train_index, self.val_index, self.test_index])
        if splits.unique().numel() != splits.numel():
            raise ValueError(f"{self.name}: the train, val and test node sets overlap")
        if splits.numel() and (splits.min() < 0 or splits.max() >= n or (self.y[splits] < 0).any()):
            raise ValueError(f"{self.name}: every split node must be a labelled node id in [0, {n})")

    @property
    def num_nodes(self) -> int:
        return self.x.shape[0]

    def split(self, stage: str) -> Tensor:
        """Node ids of ``stage`` (train, val or test)."""
        return {"train": self.train_index, "val": self.val_index, "test": self.test_index}[stage]

    def batch(self, stage: str) -> dict[str, Tensor]:
        """The whole graph as one full-batch step; ``index`` holds the nodes scored in ``stage``."""
        return {"x": self.x, "edge_index": self.edge_index, "y": self.y, "index": self.split(stage)}


def coalesce_undirected(edge_index: Tensor, num_nodes: int) -> Tensor:
    """Both directions of every edge, self loops and duplicates dropped, sorted by (target, source)."""
    both = torch.cat([edge_index, edge_index.flip(0)], dim=1)  # (2, 2E)
    both = both[:, both[0] != both[1]]
    key = torch.unique(both[1] * num_nodes + both[0])  # sorted, so the order is deterministic
    return torch.stack([key % num_nodes, key // num_nodes])  # (2, E')


def planetoid_style_split(y: Tensor, num_classes: int, *, train_per_class: int, num_val: int,
                          num_test: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """Planetoid's public-split shape: ``train_per_class`` random nodes per class, then ``num_val``
    and ``num_test`` random nodes from the rest."""
    order = torch.randperm(len(y), generator=generator)
    train = torch.cat([order[y[order] == c][:train_per_class] for c in range(num_classes)])
    if len(train) != train_per_class * num_classes:
        raise ValueError(f"train_per_class={train_per_class}: some class has fewer nodes than that")
    rest = order[~torch.isin(order, train)]
    if num_val + num_test > len(rest):
        raise ValueError(f"num_val={num_val} + num_test={num_test} exceed the {len(rest)} nodes left "
                         f"after the training nodes")
    return train.sort().values, rest[:num_val].sort().values, rest[num_val:num_val + num_test].sort().values
