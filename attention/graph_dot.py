"""``dot``: scaled dot-product attention restricted to a graph's edges.

Paper: Shi, Huang, Feng, Zhong, Wang, Sun, "Masked Label Prediction: Unified Message Passing
Model for Semi-Supervised Classification", IJCAI 2021 (the graph transformer layer, eqs. 3-5;
torch_geometric's ``TransformerConv``).

    e_ij     = (W_q h_i) . (W_k h_j) / sqrt(C)          (i target, j source)
    alpha_ij = softmax_{j in N(i)} e_ij
    h'_i     = ||_k sum_j alpha^k_ij W^k_v h_j   (heads concatenated) or their mean
               [+ W_r h_i if root_weight] + bias

This is the dense ``reference`` softmax(QK^T / sqrt(d)) V with every non-edge masked out,
computed edge by edge.

Complexity: O(N * F_in * H * C + E * H * C) time, O(E * H * C) memory; no N x N matrix.

Limits: self-attention on one node set, no edge features, no gated residual (the paper's
beta). Unlike ``TransformerConv`` it adds self loops by default (like ``gat``/``gatv2``) and
its projections carry no bias; with ``add_self_loops=False``, ``root_weight=True``,
``bias=False`` it computes ``TransformerConv(..., bias=False)``. Parameter names:
``lin_query``, ``lin_key``, ``lin_value``, ``lin_root`` (PyG ``lin_skip``), ``bias``.

Args:
    in_dim: node feature size F_in.
    out_dim: output size C per head.
    heads: number of attention heads H.
    concat: concatenate the heads (output H * C) if True, else average them (output C).
    dropout: dropout probability on the attention weights (training only).
    add_self_loops: replace the input's self loops by exactly one per node.
    bias: learn an additive output bias.
    root_weight: add the skip term W_r h_i to each node's output.

Shapes: x (N, F_in), edge_index (2, E) long -> output (N, H * C) or (N, C); weights (E', H)
aligned with ``attended_edges(edge_index, N)``.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from ._graph import GraphAttention, require_bool


class GraphDotAttention(GraphAttention):
    """Scaled dot-product attention over edges (Shi et al. 2021, TransformerConv)."""

    name = "dot"

    def __init__(self, *, in_dim: int, out_dim: int, heads: int = 1, concat: bool = True,
                 dropout: float = 0.0, add_self_loops: bool = True, bias: bool = True,
                 root_weight: bool = False) -> None:
        super().__init__(in_dim=in_dim, out_dim=out_dim, heads=heads, concat=concat, dropout=dropout,
                         add_self_loops=add_self_loops, bias=bias)
        width = heads * out_dim
        self.lin_query = nn.Linear(in_dim, width, bias=False)
        self.lin_key = nn.Linear(in_dim, width, bias=False)
        self.lin_value = nn.Linear(in_dim, width, bias=False)
        root = require_bool("root_weight", root_weight)
        self.lin_root = nn.Linear(in_dim, width if concat else out_dim, bias=False) if root else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for lin in (self.lin_query, self.lin_key, self.lin_value, self.lin_root):
            if lin is not None:
                nn.init.xavier_uniform_(lin.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def _edge_scores_and_messages(self, x: Tensor, src: Tensor, dst: Tensor) -> tuple[Tensor, Tensor]:
        shape = (-1, self.heads, self.out_dim)
        q = self.lin_query(x).view(shape)  # (N, H, C)
        k = self.lin_key(x).view(shape)  # (N, H, C)
        v = self.lin_value(x).view(shape)  # (N, H, C)
        scores = (q[dst] * k[src]).sum(-1) / math.sqrt(self.out_dim)  # (E, H)
        return scores, v[src]  # (E, H), (E, H, C)

    def _root(self, x: Tensor) -> Tensor | None:
        return None if self.lin_root is None else self.lin_root(x)
