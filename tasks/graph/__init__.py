"""Graph node classification: GAT's transductive benchmark for any graph attention variant.

Variants: the graph attention layers (``gat``, ``gatv2``, ``dot``) inside GAT's two-layer network,
and the baselines ``none`` (GCN aggregation) and ``mlp`` (no graph); see ``model.py`` (the
networks) and ``module.py`` (training and metrics). Data: an
embedded contextual stochastic block model (``csbm.py``) or Planetoid raw files
(``--data FOLDER`` holding ``ind.<data.name>.*``; ``planetoid.py``). Training is full batch:
one step per epoch over the whole graph, scored on the stage's nodes.
"""

from .task import GraphTask

TASK = GraphTask()

__all__ = ["TASK", "GraphTask"]
