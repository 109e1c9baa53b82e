"""The Lightning data module: one graph, one full batch per stage, from the CSBM or Planetoid files."""

from __future__ import annotations

import re

import lightning as L
from torch.utils.data import DataLoader

from .csbm import cached_csbm
from .graph import Graph
from .planetoid import load_planetoid

CSBM_KEYS = ("num_nodes", "num_classes", "avg_degree", "homophily", "feature_dim", "feature_signal",
             "train_per_class", "num_val", "num_test", "seed")
PLANETOID_KEYS = ("name", "row_normalize")
DATA_KEYS = (*PLANETOID_KEYS, *CSBM_KEYS)


def load_graph(config: dict, data: str | None) -> Graph:
    """The embedded CSBM graph (``data`` None) or the Planetoid dataset ``config['name']`` in ``data``.

    The CSBM keys describe the generated graph, ``name`` and ``row_normalize`` the Planetoid files;
    each source ignores the other's keys. The CSBM seed is ``config['seed']``, not the run seed,
    so that runs with different seeds train on the same graph, as on Cora.
    """
    if set(config) != set(DATA_KEYS):
        raise ValueError(f"data config: expected the keys {sorted(DATA_KEYS)}, got {sorted(config)}")
    if data is None:
        return cached_csbm(**{key: config[key] for key in CSBM_KEYS})
    if not isinstance(config["name"], str) or not re.fullmatch(r"[A-Za-z0-9_-]+", config["name"]):
        raise ValueError(f"data.name must be a Planetoid dataset name such as cora, citeseer or pubmed "
                         f"(files ind.<name>.*), got {config['name']!r}")
    if not isinstance(config["row_normalize"], bool):
        raise ValueError(f"data.row_normalize must be true or false, got {config['row_normalize']!r}")
    return load_planetoid(data, config["name"], row_normalize=config["row_normalize"])


class GraphDataModule(L.LightningDataModule):
    """Every stage yields one batch: the whole graph with the node ids that stage is scored on."""

    def __init__(self, graph: Graph) -> None:
        super().__init__()
        self.graph = graph

    def _loader(self, stage: str) -> DataLoader:
        # batch_size=None: the single dict is the batch, no collation.
        return DataLoader([self.graph.batch(stage)], batch_size=None)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")
