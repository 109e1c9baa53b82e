"""The graph task for the runner: which variants apply, and building data and model."""

from __future__ import annotations

from typing import ClassVar

import attention
from tasks._base import RUNNER_OPTIM_KEYS, Task

from .data import GraphDataModule, load_graph
from .model import BASELINES
from .module import NodeClassifier

MODEL_KEYS = ("hidden", "heads", "out_heads", "dropout", "attn_dropout", "add_self_loops")
# optional: per-variant constructor arguments, and first-layer heads per variant (the parameter budget)
MODEL_OPTIONAL = ("variant_kwargs", "variant_heads")
OPTIM_KEYS = ("lr", "weight_decay")


def _section(config: dict, name: str, keys: tuple[str, ...], runner_keys: tuple[str, ...] = ()) -> dict:
    """The section's own keys (exactly ``keys``, besides the ``runner_keys`` the runner reads)."""
    if set(keys) - set(config[name]) or set(config[name]) - set(keys) - set(runner_keys):
        raise ValueError(f"{name} config: expected the keys {sorted(keys)}, got {sorted(config[name])}")
    return {key: config[name][key] for key in keys}


def _variant_kwargs(config: dict, variant: str) -> dict:
    """``model.variant_kwargs[variant]``, checked by building one layer with them."""
    kwargs = (config["model"].get("variant_kwargs") or {}).get(variant) or {}
    if kwargs and variant not in BASELINES:
        try:
            attention.build(variant, in_dim=4, out_dim=2, heads=1, **kwargs)
        except (TypeError, ValueError) as err:
            raise ValueError(f"model.variant_kwargs for {variant!r} ({kwargs}): {err}") from err
    return kwargs


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
        if config is not None:
            _variant_kwargs(config, variant)  # bad constructor arguments: an error before any training
        return []

    @staticmethod
    def graph_variants() -> list[str]:
        return [n for n, cls in attention.REGISTRY.items() if issubclass(cls, attention.GraphAttention)]

    def build(self, config: dict, variant: str, data: str | None, seed: int
              ) -> tuple[GraphDataModule, NodeClassifier]:
        reasons = self.variant_reasons(variant)
        if reasons:
            raise ValueError("; ".join(reasons))
        model = _section(config, "model", MODEL_KEYS, MODEL_OPTIONAL)
        kwargs = _variant_kwargs(config, variant)
        heads = (config["model"].get("variant_heads") or {}).get(variant)
        if heads is not None:
            model["heads"] = heads
        optim = _section(config, "optim", OPTIM_KEYS, RUNNER_OPTIM_KEYS)
        graph = load_graph(config["data"], data)
        module = NodeClassifier(variant=variant, in_dim=graph.x.shape[1], num_classes=graph.num_classes,
                                variant_kwargs=kwargs, **model, **optim)
        return GraphDataModule(graph), module

