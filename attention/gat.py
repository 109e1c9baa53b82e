"""``gat``: graph attention with a shared linear map and a LeakyReLU-scored concatenation.

Paper: Velickovic, Cucurull, Casanova, Romero, Lio, Bengio, "Graph Attention Networks",
ICLR 2018 (eqs. 1-5).

    e_ij     = LeakyReLU(a^T [W h_i || W h_j])          (slope 0.2; i target, j source)
    alpha_ij = softmax_{j in N(i)} e_ij
    h'_i     = ||_k sum_j alpha^k_ij W^k h_j   (heads concatenated) or their mean, plus bias

a = [a_dst || a_src] splits into a target and a source half, so a^T [W h_i || W h_j] =
a_dst . W h_i + a_src . W h_j: both terms are computed once per node and gathered per edge.
The scores are "static" (Brody et al. 2022): the ranking of neighbours j is the same for
every target i; ``gatv2`` removes that limit.

Complexity: O(N * F_in * H * C + E * H * C) time, O(E * H * C) memory for the messages;
no N x N matrix.

Limits: self-attention on one node set (no bipartite graphs), no edge features. Parameter
names follow torch_geometric's ``GATConv`` (``lin.weight``, ``att_src``, ``att_dst``,
``bias``), so its weights copy over one to one.

Args:
    in_dim: node feature size F_in.
    out_dim: output size C per head.
    heads: number of attention heads H.
    concat: concatenate the heads (output H * C) if True, else average them (output C).
    negative_slope: LeakyReLU slope of the scores.
    dropout: dropout probability on the attention weights (training only).
    add_self_loops: replace the input's self loops by exactly one per node.
    bias: learn an additive output bias.

Shapes: x (N, F_in), edge_index (2, E) long -> output (N, H * C) or (N, C); weights (E', H)
aligned with ``attended_edges(edge_index, N)``.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ._graph import GraphAttention, require_slope


class GATAttention(GraphAttention):
    """GAT layer (Velickovic et al. 2018): static LeakyReLU edge scores, softmax over in-edges."""

    name = "gat"

    def __init__(self, *, in_dim: int, out_dim: int, heads: int = 1, concat: bool = True,
                 negative_slope: float = 0.2, dropout: float = 0.0, add_self_loops: bool = True,
                 bias: bool = True) -> None:
        super().__init__(in_dim=in_dim, out_dim=out_dim, heads=heads, concat=concat, dropout=dropout,
                         add_self_loops=add_self_loops, bias=bias)
        self.negative_slope = require_slope("negative_slope", negative_slope)
        self.lin = nn.Linear(in_dim, heads * out_dim, bias=False)
        self.att_src = nn.Parameter(self.lin.weight.new_empty(heads, out_dim))
        self.att_dst = nn.Parameter(self.lin.weight.new_empty(heads, out_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for p in (self.lin.weight, self.att_src, self.att_dst):
            nn.init.xavier_uniform_(p)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def _edge_scores_and_messages(self, x: Tensor, src: Tensor, dst: Tensor) -> tuple[Tensor, Tensor]:
        wh = self.lin(x).view(-1, self.heads, self.out_dim)  # (N, H, C)
        s_src = (wh * self.att_src).sum(-1)  # (N, H)
        s_dst = (wh * self.att_dst).sum(-1)  # (N, H)
        scores = F.leaky_relu(s_dst[dst] + s_src[src], self.negative_slope)  # (E, H)
        return scores, wh[src]  # (E, H), (E, H, C)
