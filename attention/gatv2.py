"""``gatv2``: dynamic graph attention, the LeakyReLU applied before the attention vector.

Paper: Brody, Alon, Yahav, "How Attentive are Graph Attention Networks?", ICLR 2022 (eq. 7).

    e_ij     = a^T LeakyReLU(W_s h_j + W_t h_i)         (slope 0.2; i target, j source)
    alpha_ij = softmax_{j in N(i)} e_ij
    h'_i     = ||_k sum_j alpha^k_ij W^k_s h_j   (heads concatenated) or their mean, plus bias

Because the nonlinearity sits between W and a, the ranking of neighbours can depend on the
target ("dynamic" attention), which GAT's a^T [W h_i || W h_j] cannot express.

Complexity: O(N * F_in * H * C + E * H * C) time, O(E * H * C) memory (the per-edge
LeakyReLU input and the messages); no N x N matrix.

Limits: self-attention on one node set, no edge features. The paper's W_s, W_t carry no bias;
torch_geometric's ``GATv2Conv`` adds one to ``lin_l``/``lin_r`` when ``bias=True`` (set them to
zero to compare). Parameter names: ``lin_src`` (W_s, PyG ``lin_l``), ``lin_dst`` (W_t, PyG
``lin_r``; the same module when ``share_weights``), ``att``, ``bias``.

Args:
    in_dim: node feature size F_in.
    out_dim: output size C per head.
    heads: number of attention heads H.
    concat: concatenate the heads (output H * C) if True, else average them (output C).
    negative_slope: LeakyReLU slope.
    dropout: dropout probability on the attention weights (training only).
    add_self_loops: replace the input's self loops by exactly one per node.
    bias: learn an additive output bias.
    share_weights: use one matrix for W_s and W_t.

Shapes: x (N, F_in), edge_index (2, E) long -> output (N, H * C) or (N, C); weights (E', H)
aligned with ``attended_edges(edge_index, N)``.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ._graph import GraphAttention, require_bool, require_slope


class GATv2Attention(GraphAttention):
    """GATv2 layer (Brody et al. 2022): dynamic scores a^T LeakyReLU(W_s h_j + W_t h_i)."""

    name = "gatv2"

    def __init__(self, *, in_dim: int, out_dim: int, heads: int = 1, concat: bool = True,
                 negative_slope: float = 0.2, dropout: float = 0.0, add_self_loops: bool = True,
                 bias: bool = True, share_weights: bool = False) -> None:
        super().__init__(in_dim=in_dim, out_dim=out_dim, heads=heads, concat=concat, dropout=dropout,
                         add_self_loops=add_self_loops, bias=bias)
        self.negative_slope = require_slope("negative_slope", negative_slope)
        self.share_weights = require_bool("share_weights", share_weights)
        self.lin_src = nn.Linear(in_dim, heads * out_dim, bias=False)
        self.lin_dst = self.lin_src if share_weights else nn.Linear(in_dim, heads * out_dim, bias=False)
        self.att = nn.Parameter(self.lin_src.weight.new_empty(heads, out_dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for p in (self.lin_src.weight, self.lin_dst.weight, self.att):
            nn.init.xavier_uniform_(p)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def _edge_scores_and_messages(self, x: Tensor, src: Tensor, dst: Tensor) -> tuple[Tensor, Tensor]:
        shape = (-1, self.heads, self.out_dim)
        x_src = self.lin_src(x).view(shape)  # (N, H, C)
        x_dst = x_src if self.share_weights else self.lin_dst(x).view(shape)  # (N, H, C)
        messages = x_src[src]  # (E, H, C)
        hidden = F.leaky_relu(messages + x_dst[dst], self.negative_slope)  # (E, H, C)
        return (hidden * self.att).sum(-1), messages  # (E, H), (E, H, C)
