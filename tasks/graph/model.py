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

Training and metrics: ``module.py``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

import attention

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
                attn_dropout: float, add_self_loops: bool, **kwargs) -> nn.Module:
    """One layer of the network for ``variant`` (``kwargs``: its constructor arguments); the baselines'
    layer is ``heads * out_dim`` wide when ``concat`` (matching the attention layer), else ``out_dim``."""
    if variant in BASELINES:
        width = heads * out_dim if concat else out_dim
        return GCNLayer(in_dim=in_dim, out_dim=width) if variant == "none" else NodeLinear(in_dim, width)
    return attention.build(variant, in_dim=in_dim, out_dim=out_dim, heads=heads, concat=concat,
                           dropout=attn_dropout, add_self_loops=add_self_loops, **kwargs)
