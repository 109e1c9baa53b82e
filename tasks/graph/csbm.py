"""The embedded default data: a contextual stochastic block model (CSBM) with a Planetoid-style split.

Model: Deshpande, Sen, Montanari, Mossel, "Contextual Stochastic Block Models", NeurIPS 2018,
with C classes as in Fountoulakis et al., "Graph Attention Retrospective", JMLR 2023:

    y_i  ~ balanced over C classes
    x_i  = s * mu_{y_i} + eps_i,    mu_c unit vectors (random directions), eps_i ~ N(0, I_F)
    edge i - j: a fraction h (homophily) of the edges join nodes of the same class, the rest
                join different classes; the mean degree is d

``feature_signal`` s sets how well the features alone separate the classes (the MLP
baseline), ``homophily`` h how much averaging over neighbours helps (GCN), and the gap between
them is where attention can help: features can tell a node which of its edges cross classes.

Edges are sampled, not tested pairwise, so generation is O(N F + E): N * d / 2 draws of a
uniform source and a target drawn uniformly from the source's class (probability h) or from
a uniformly chosen other class; self loops and repeated pairs are then dropped, so the mean
degree ends slightly below d on small dense graphs.

Generated graphs are kept in the embedded-data cache (``tasks._cache``: ``$ATTNBENCH_CACHE/graph/``,
else ``~/.cache/attnbench/graph/``), keyed by every parameter and written atomically; a cache hit
returns exactly the generated tensors.
"""

from __future__ import annotations

import json

import torch
from torch import Tensor

from configs.atomic import atomic_write
from tasks._cache import cache_file

from .graph import Graph, coalesce_undirected, planetoid_style_split

GENERATOR_VERSION = 1  # bump when the sampling changes, so old cache entries are not reused


def _require_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return value


def _require_number(name: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}")
    return float(value)


def _edges(y: Tensor, num_classes: int, num_edges: int, homophily: float, gen: torch.Generator) -> Tensor:
    members = torch.argsort(y, stable=True)  # node ids grouped by class
    counts = torch.bincount(y, minlength=num_classes)
    offsets = torch.cumsum(counts, 0) - counts
    src = torch.randint(len(y), (num_edges,), generator=gen)
    same = torch.rand(num_edges, generator=gen) < homophily
    shift = torch.randint(1, num_classes, (num_edges,), generator=gen)  # another class, uniformly
    target_class = torch.where(same, y[src], (y[src] + shift) % num_classes)
    pick = (torch.rand(num_edges, generator=gen) * counts[target_class]).long()
    dst = members[offsets[target_class] + pick]
    return coalesce_undirected(torch.stack([src, dst]), len(y))


def generate_csbm(*, num_nodes: int, num_classes: int, avg_degree: float, homophily: float,
                  feature_dim: int, feature_signal: float, train_per_class: int, num_val: int,
                  num_test: int, seed: int) -> Graph:
    """Sample a CSBM graph (module docstring) and its Planetoid-style split; deterministic in ``seed``."""
    _require_int("num_nodes", num_nodes, 2)
    _require_int("num_classes", num_classes, 2)
    if num_classes > num_nodes:
        raise ValueError(f"num_classes={num_classes} exceeds num_nodes={num_nodes}")
    _require_number("avg_degree", avg_degree, 0.0, float(num_nodes - 1))
    _require_number("homophily", homophily, 0.0, 1.0)
    _require_int("feature_dim", feature_dim, 1)
    _require_number("feature_signal", feature_signal, 0.0, float("inf"))
    for name, value in (("train_per_class", train_per_class), ("num_val", num_val), ("num_test", num_test)):
        _require_int(name, value, 1)
    _require_int("seed", seed, 0)
    gen = torch.Generator().manual_seed(seed)
    y = torch.randperm(num_nodes, generator=gen) % num_classes  # (N,) balanced classes
    means = torch.nn.functional.normalize(torch.randn(num_classes, feature_dim, generator=gen), dim=1)
    x = feature_signal * means[y] + torch.randn(num_nodes, feature_dim, generator=gen)  # (N, F)
    edge_index = _edges(y, num_classes, round(num_nodes * avg_degree / 2), homophily, gen)
    train, val, test = planetoid_style_split(y, num_classes, train_per_class=train_per_class,
                                             num_val=num_val, num_test=num_test, generator=gen)
    return Graph(x=x, edge_index=edge_index, y=y, train_index=train, val_index=val, test_index=test,
                 num_classes=num_classes, name="csbm")


def cached_csbm(**params: object) -> Graph:
    """``generate_csbm(**params)``, read from or written to the cache (module docstring)."""
    keyed = {"version": GENERATOR_VERSION, **params}
    key = json.dumps(keyed, sort_keys=True)
    path = cache_file("graph", keyed, prefix="csbm-", suffix=".pt")
    if path.is_file():
        stored = torch.load(path, weights_only=True)
        if stored.get("key") == key:  # guards against a truncated-hash collision
            return Graph(**stored["graph"])
    graph = generate_csbm(**params)
    fields = {name: getattr(graph, name) for name in Graph.__dataclass_fields__}
    with atomic_write(path, "wb") as handle:
        torch.save({"key": key, "graph": fields}, handle)
    return graph
