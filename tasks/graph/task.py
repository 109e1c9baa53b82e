"""The graph task for the runner: which variants apply, and building data and model."""

from __future__ import annotations

from typing import ClassVar

import attention
from tasks._base import RUNNER_OPTIM_KEYS, Task

from .data import GraphDataModule, load_graph
from .model import BASELINES
from .module import NodeClassifier

MODEL_KEYS = ("hidden", "heads", "out_heads", "dropout", "attn_dropout", "add_self_loops")
OPTIM_KEYS = ("lr", "weight_decay")


def _section(config: dict, name: str, keys: tuple[str, ...], runner_keys: tuple[str, ...] = ()) -> dict:
    """The section's own keys (exactly ``keys``, besides the ``runner_keys`` the runner reads)."""
    if set(keys) - set(config[name]) or set(config[name]) - set(keys) - set(runner_keys):
        raise ValueError(f"{name} config: expected the keys {sorted(keys)}, got {sorted(config[name])}")
    return {key: config[name][key] for key in keys}


class GraphTask(Task):
    name = "graph"
    monitor = "val/acc"
    baselines: ClassVar[tuple[str, ...]] = BASELINES
    learning_baseline: ClassVar[str] = "mlp"  # GCN (``none``) also aggregates neighbours

    def variant_reasons(self, variant: str, config: dict | None = None) -> list[str]:
        if variant in self.baselines:
            return []
        if variant not in attention.REGISTRY:
            return [f"unknown variant {variant!r}; graph variants: "
                    f"{', '.join(self.graph_variants())}, baselines: {', '.join(self.baselines)}"]
        if not issubclass(attention.REGISTRY[variant], attention.GraphAttention):
            return [f"{variant!r} is dense attention over (B, H, L, D) sequences; node classification "
                    f"attends over each node's graph neighbours (an edge list), which only the graph "
                    f"variants ({', '.join(self.graph_variants())}) take"]
        return []

    @staticmethod
    def graph_variants() -> list[str]:
        return [n for n, cls in attention.REGISTRY.items() if issubclass(cls, attention.GraphAttention)]

    def build(self, config: dict, variant: str, data: str | None, seed: int
              ) -> tuple[GraphDataModule, NodeClassifier]:
        reasons = self.variant_reasons(variant)
        if reasons:
            raise ValueError("; ".join(reasons))
        model = _section(config, "model", MODEL_KEYS)
        optim = _section(config, "optim", OPTIM_KEYS, RUNNER_OPTIM_KEYS)
        graph = load_graph(config["data"], data)
        module = NodeClassifier(variant=variant, in_dim=graph.x.shape[1], num_classes=graph.num_classes,
                                **model, **optim)
        return GraphDataModule(graph), module

