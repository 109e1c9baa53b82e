"""Graph attention over an edge list: the shared base class and its sparse softmax machinery.

Graph layers take node features ``x`` (N, F_in) and an edge list ``edge_index`` (2, E) whose
row 0 holds sources j and row 1 targets i; messages flow j -> i and each target's softmax runs
over its incoming edges only. Nothing N x N is ever formed: time and memory are O(E * H * C).

Edge order of the returned weights: with ``add_self_loops=True`` the layer first drops every
self loop of the input, then appends one loop per node in node order; the weights (E', H) are
aligned with ``with_self_loops(edge_index, N)`` (for an input without self loops: the input
edges, then the N loops). With ``add_self_loops=False`` they are aligned with ``edge_index``.
``GraphAttention.attended_edges`` returns that list. A node with no incoming edge aggregates
nothing: its attention output is zero (plus the bias), never NaN.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._base import (
    AttentionOutput,
    Capabilities,
    NotSupportedError,
    capability_reasons,
    require_positive_int,
)
from ._math import LOW_PRECISION

GRAPH_CAPABILITIES = Capabilities(
    masks=frozenset(), causal=False, cross=False, exact=False, weights=True, dropout=True,
    notes=("graph attention over an edge list: softmax over each node's incoming edges",),
)


def require_bool(arg: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{arg} must be a bool, got {value!r}")
    return value


def require_probability(arg: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{arg} must be a number in [0, 1), got {value!r}")
    return float(value)


def require_slope(arg: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
        math.isfinite(value) and value >= 0
    ):
        raise ValueError(f"{arg} must be a finite number >= 0, got {value!r}")
    return float(value)


def with_self_loops(edge_index: Tensor, num_nodes: int) -> Tensor:
    """Drop the self loops of ``edge_index`` (2, E) and append one per node, in node order."""
    keep = edge_index[0] != edge_index[1]  # (E,)
    loops = torch.arange(num_nodes, dtype=edge_index.dtype, device=edge_index.device)
    return torch.cat([edge_index[:, keep], loops.expand(2, num_nodes)], dim=1)  # (2, E')


def segment_softmax(scores: Tensor, index: Tensor, num_nodes: int) -> Tensor:
    """Softmax of ``scores`` (E, H) over the edges sharing a target ``index`` (E,).

    Half-precision scores are normalised in float32 and cast back, as the dense variants do.
    """
    work = scores.float() if scores.dtype in LOW_PRECISION else scores
    h = work.shape[1]
    idx = index.unsqueeze(1).expand_as(work)  # (E, H)
    # Shift by each target's max for stability; the shift cancels in the softmax, so it is
    # detached and costs no backward through scatter_reduce.
    peak = work.new_full((num_nodes, h), float("-inf"))
    peak = peak.scatter_reduce(0, idx, work.detach(), reduce="amax", include_self=True)  # (N, H)
    exp = (work - peak[index]).exp()  # (E, H); each target's largest term is exp(0) = 1
    denom = work.new_zeros(num_nodes, h).index_add_(0, index, exp)  # (N, H), >= 1 where used
    return (exp / denom[index]).to(scores.dtype)


def check_graph_inputs(x: Tensor, edge_index: Tensor, in_dim: int, param_dtype: torch.dtype) -> None:
    """Raise ValueError naming the argument when shapes, dtypes or devices do not fit."""
    if not isinstance(x, Tensor) or x.dim() != 2 or not x.is_floating_point():
        got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x must be a 2-D floating tensor (N, F_in), got {got}")
    if x.shape[1] != in_dim:
        raise ValueError(f"x must have shape (N, in_dim={in_dim}), got {tuple(x.shape)}")
    if x.dtype != param_dtype:
        raise ValueError(f"x has dtype {x.dtype} but the layer's parameters are {param_dtype}")
    if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.shape[0] != 2:
        got = tuple(edge_index.shape) if isinstance(edge_index, Tensor) else type(edge_index).__name__
        raise ValueError(f"edge_index must have shape (2, E), got {got}")
    if edge_index.dtype != torch.long:
        raise ValueError(f"edge_index must have dtype torch.int64 (long), got {edge_index.dtype}")
    if edge_index.device != x.device:
        raise ValueError(f"edge_index is on {edge_index.device}, x on {x.device}")


def check_index_range(edge_index: Tensor, num_nodes: int) -> None:
    """Raise ValueError naming the first index outside [0, N) (reads the indices: a sync on GPU)."""
    bad = (edge_index < 0) | (edge_index >= num_nodes)  # (2, E)
    if bool(bad.any()):
        row, col = (int(v) for v in bad.nonzero()[0])
        raise ValueError(
            f"edge_index[{row}, {col}] = {int(edge_index[row, col])} is outside [0, N) with N = {num_nodes}"
        )


class GraphAttention(nn.Module, ABC):
    """Base class of graph variants: validates, refuses with reasons, softmax-aggregates over edges.

    Subclasses implement ``_edge_scores_and_messages`` and may add a per-node ``_root`` term.
    """

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities] = GRAPH_CAPABILITIES

    def __init__(self, *, in_dim: int, out_dim: int, heads: int, concat: bool, dropout: float,
                 add_self_loops: bool, bias: bool) -> None:
        super().__init__()
        self.in_dim = require_positive_int("in_dim", in_dim)
        self.out_dim = require_positive_int("out_dim", out_dim)
        self.heads = require_positive_int("heads", heads)
        self.concat = require_bool("concat", concat)
        self.dropout = require_probability("dropout", dropout)
        self.add_self_loops = require_bool("add_self_loops", add_self_loops)
        width = heads * out_dim if concat else out_dim
        self.bias = nn.Parameter(torch.zeros(width)) if require_bool("bias", bias) else None

    def extra_repr(self) -> str:
        return (f"in_dim={self.in_dim}, out_dim={self.out_dim}, heads={self.heads}, concat={self.concat}, "
                f"dropout={self.dropout}, add_self_loops={self.add_self_loops}")

    def attended_edges(self, edge_index: Tensor, num_nodes: int) -> Tensor:
        """The (2, E') edge list that the returned weights are aligned with."""
        return with_self_loops(edge_index, num_nodes) if self.add_self_loops else edge_index

    def not_supported_reasons(self, x: Tensor, *, return_weights: bool = False) -> list[str]:
        dropout_p = self.dropout if self.training else 0.0
        return capability_reasons(self.name, self.capabilities, x, x, None, is_causal=False,
                                  dropout_p=dropout_p, need_weights=return_weights)

    def forward(
        self,
        x: Tensor,  # (N, F_in)
        edge_index: Tensor,  # (2, E) long: row 0 source j, row 1 target i
        *,
        return_weights: bool = False,
    ) -> AttentionOutput:
        param = next(self.parameters())
        check_graph_inputs(x, edge_index, self.in_dim, param.dtype)
        reasons = self.not_supported_reasons(x, return_weights=return_weights)
        if reasons:
            raise NotSupportedError(self.name, reasons)
        n = x.shape[0]
        check_index_range(edge_index, n)
        src, dst = self.attended_edges(edge_index, n)  # (E',), (E',)
        scores, messages = self._edge_scores_and_messages(x, src, dst)  # (E', H), (E', H, C)
        weights = segment_softmax(scores, dst, n)  # (E', H)
        dropped = F.dropout(weights, p=self.dropout, training=self.training)
        out = x.new_zeros(n, self.heads, self.out_dim)
        out = out.index_add_(0, dst, messages * dropped.unsqueeze(-1))  # (N, H, C)
        out = out.reshape(n, -1) if self.concat else out.mean(dim=1)  # (N, H * C) or (N, C)
        root = self._root(x)
        if root is not None:
            out = out + root
        if self.bias is not None:
            out = out + self.bias
        return AttentionOutput(out, weights if return_weights else None)

    def _root(self, x: Tensor) -> Tensor | None:
        """An optional per-node term added to the aggregated output (none by default)."""
        return None

    @abstractmethod
    def _edge_scores_and_messages(self, x: Tensor, src: Tensor, dst: Tensor) -> tuple[Tensor, Tensor]:
        """Scores (E, H) of edges src -> dst before the softmax, and their messages (E, H, C)."""
