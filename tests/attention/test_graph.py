"""Graph attention (gat, gatv2, dot) against dense float64 re-statements, PyG, and at scale."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from attention import NotSupportedError
from attention.gat import GATAttention
from attention.gatv2 import GATv2Attention
from attention.graph_dot import GraphDotAttention

F_IN, C = 5, 4


def random_edges(n: int, seed: int, *, isolated: int | None = None, input_loops: int = 2) -> torch.Tensor:
    """Duplicate-free random edges (2, E) in shuffled order; ``isolated`` gets no incoming edge."""
    g = torch.Generator().manual_seed(seed)
    adj = torch.rand(n, n, generator=g) < 0.35  # adj[i, j]: an edge j -> i
    adj.fill_diagonal_(False)
    adj[torch.arange(input_loops), torch.arange(input_loops)] = True  # loops the layer must replace
    if isolated is not None:
        adj[isolated] = False
    tgt, src = adj.nonzero().T
    perm = torch.randperm(src.numel(), generator=g)
    return torch.stack([src[perm], tgt[perm]])


def dense_adjacency(edge_index: torch.Tensor, n: int, add_self_loops: bool) -> torch.Tensor:
    adj = torch.zeros(n, n, dtype=torch.bool)
    adj[edge_index[1], edge_index[0]] = True  # row = target i, column = source j
    if add_self_loops:
        adj.fill_diagonal_(True)
    return adj


# Dense restatements: scores (H, N_i, N_j) and values (N, H, C) of each variant's equation.
def gat_dense(layer, x):
    wh = (x @ layer.lin.weight.T).view(x.shape[0], layer.heads, C)
    a_src = (wh * layer.att_src).sum(-1).T  # (H, N)
    a_dst = (wh * layer.att_dst).sum(-1).T  # (H, N)
    return F.leaky_relu(a_dst[:, :, None] + a_src[:, None, :], layer.negative_slope), wh


def gatv2_dense(layer, x):
    xs = (x @ layer.lin_src.weight.T).view(x.shape[0], layer.heads, C).transpose(0, 1)  # (H, N, C)
    xt = (x @ layer.lin_dst.weight.T).view(x.shape[0], layer.heads, C).transpose(0, 1)
    hidden = F.leaky_relu(xt[:, :, None, :] + xs[:, None, :, :], layer.negative_slope)  # (H, Ni, Nj, C)
    return (hidden * layer.att[:, None, None, :]).sum(-1), xs.transpose(0, 1)


def dot_dense(layer, x):
    def proj(lin):
        return (x @ lin.weight.T).view(x.shape[0], layer.heads, C).transpose(0, 1)  # (H, N, C)

    q, k, v = proj(layer.lin_query), proj(layer.lin_key), proj(layer.lin_value)
    return q @ k.transpose(1, 2) / math.sqrt(C), v.transpose(0, 1)


VARIANTS = {
    "gat": (GATAttention, {}, gat_dense),
    "gatv2": (GATv2Attention, {}, gatv2_dense),
    "gatv2-shared": (GATv2Attention, {"share_weights": True}, gatv2_dense),
    "dot": (GraphDotAttention, {}, dot_dense),
    "dot-root": (GraphDotAttention, {"root_weight": True}, dot_dense),
}
CONFIGS = [  # heads, concat, add_self_loops
    (1, True, True), (3, True, True), (2, False, True), (2, True, False), (2, False, False),
]


def dense_forward(layer, x, adj):
    scores, values = VARIANTS_BY_CLASS[type(layer)](layer, x)
    alive = adj.any(dim=1, keepdim=True)  # (N, 1): targets with at least one incoming edge
    masked = torch.where(alive, scores.masked_fill(~adj, float("-inf")), 0.0)
    p = torch.softmax(masked, dim=-1) * alive  # (H, N, N)
    out = (p @ values.transpose(0, 1)).transpose(0, 1)  # (N, H, C)
    out = out.reshape(x.shape[0], -1) if layer.concat else out.mean(dim=1)
    if getattr(layer, "lin_root", None) is not None:
        out = out + x @ layer.lin_root.weight.T
    return (out if layer.bias is None else out + layer.bias), p


VARIANTS_BY_CLASS = {GATAttention: gat_dense, GATv2Attention: gatv2_dense, GraphDotAttention: dot_dense}


def build(variant: str, heads: int, concat: bool, loops: bool, **extra):
    cls, kwargs, _ = VARIANTS[variant]
    torch.manual_seed(0)
    layer = cls(in_dim=F_IN, out_dim=C, heads=heads, concat=concat, add_self_loops=loops,
                **kwargs, **extra).double()
    if layer.bias is not None:
        torch.nn.init.normal_(layer.bias)
    return layer


@pytest.mark.parametrize("heads,concat,loops", CONFIGS)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_matches_dense_restatement(variant, heads, concat, loops):
    n = 9
    layer = build(variant, heads, concat, loops)
    x = torch.randn(n, F_IN, dtype=torch.float64, requires_grad=True)
    edge_index = random_edges(n, seed=heads + 7 * loops, isolated=4)
    out, weights = layer(x, edge_index, return_weights=True)
    ref, p = dense_forward(layer, x, dense_adjacency(edge_index, n, loops))
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    src, dst = layer.attended_edges(edge_index, n)
    torch.testing.assert_close(weights, p[:, dst, src].T, rtol=1e-10, atol=1e-10)
    cot = torch.randn_like(out)
    inputs = [x, *layer.parameters()]
    got = torch.autograd.grad((out * cot).sum(), inputs)
    want = torch.autograd.grad((ref * cot).sum(), inputs)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_node_without_incoming_edges_gives_zero(variant):
    n = 8
    layer = build(variant, 2, True, False, bias=False)
    if getattr(layer, "lin_root", None) is not None:
        layer.lin_root = None  # the root term is a node's own, not an aggregate
    x = torch.randn(n, F_IN, dtype=torch.float64, requires_grad=True)
    out, _ = layer(x, random_edges(n, seed=3, isolated=5, input_loops=0))
    assert torch.equal(out[5], torch.zeros_like(out[5]))
    assert torch.isfinite(out).all()
    grads = torch.autograd.grad(out.sum(), [x, *layer.parameters()])
    assert all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("variant", ["gat", "dot"])
def test_large_scores_stay_finite(variant):
    n = 9
    layer = build(variant, 2, True, True)
    x = 60 * torch.randn(n, F_IN, dtype=torch.float64)  # scores far beyond float32's exp range
    edge_index = random_edges(n, seed=4)
    ref, _ = dense_forward(layer, x, dense_adjacency(edge_index, n, True))
    out = layer.float()(x.float(), edge_index).output
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.double(), ref, rtol=1e-3, atol=1e-3)


def test_self_loops_replaced_by_one_per_node():
    n = 6
    edge_index = torch.tensor([[0, 1, 2, 3, 5], [1, 1, 0, 3, 4]])  # loops 1->1 and 3->3
    layer = GATAttention(in_dim=F_IN, out_dim=C)
    expected = torch.tensor([[0, 2, 5, 0, 1, 2, 3, 4, 5], [1, 0, 4, 0, 1, 2, 3, 4, 5]])
    assert torch.equal(layer.attended_edges(edge_index, n), expected)
    _, weights = layer(torch.randn(n, F_IN), edge_index, return_weights=True)
    assert weights.shape == (9, 1)


@pytest.mark.parametrize("loops", [True, False])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_weights_sum_to_one_per_target(variant, loops):
    n = 10
    layer = build(variant, 3, True, loops)
    edge_index = random_edges(n, seed=11, isolated=2)
    _, weights = layer(torch.randn(n, F_IN, dtype=torch.float64), edge_index, return_weights=True)
    dst = layer.attended_edges(edge_index, n)[1]
    for i in range(n):
        total = weights[dst == i].sum(dim=0)  # (H,)
        expected = 0.0 if (i == 2 and not loops) else 1.0
        torch.testing.assert_close(total, torch.full((3,), expected, dtype=torch.float64))


def test_dropout_only_in_training():
    n = 10
    layer = GATAttention(in_dim=F_IN, out_dim=C, heads=2, dropout=0.5)
    x, edge_index = torch.randn(n, F_IN), random_edges(n, seed=5)
    layer.eval()
    eval_out, eval_w = layer(x, edge_index, return_weights=True)
    layer.dropout = 0.0
    torch.testing.assert_close(layer(x, edge_index).output, eval_out)
    layer.dropout = 0.5
    layer.train()
    torch.manual_seed(1)
    train_out, train_w = layer(x, edge_index, return_weights=True)
    assert not torch.allclose(train_out, eval_out)
    torch.testing.assert_close(train_w, eval_w)  # weights are reported before dropout


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_close_to_float64(dtype):
    n = 12
    layer = build("gat", 2, True, True)
    x = torch.randn(n, F_IN, dtype=torch.float64)
    edge_index = random_edges(n, seed=2)
    ref = layer(x, edge_index).output
    out = layer.to(dtype)(x.to(dtype), edge_index).output
    assert out.dtype == dtype
    torch.testing.assert_close(out.double(), ref, rtol=0.05, atol=0.05)


# --- torch_geometric cross-checks ------------------------------------------------------------

def pyg_conv(name: str):
    pytest.importorskip("torch_geometric", reason="torch_geometric not installed (test extra)")
    from torch_geometric import nn as pyg_nn

    return getattr(pyg_nn, name)


def compare_with_pyg(ours, theirs, n: int = 11) -> None:
    x = torch.randn(n, F_IN, requires_grad=True)
    edge_index = random_edges(n, seed=8, isolated=3)
    out, weights = ours(x, edge_index, return_weights=True)
    ref, (ref_edges, ref_alpha) = theirs(x, edge_index, return_attention_weights=True)
    torch.testing.assert_close(out, ref)
    assert torch.equal(ours.attended_edges(edge_index, n), ref_edges)
    torch.testing.assert_close(weights, ref_alpha)
    torch.testing.assert_close(torch.autograd.grad(out.sum(), x)[0], torch.autograd.grad(ref.sum(), x)[0])


@pytest.mark.parametrize("concat", [True, False])
def test_gat_matches_pyg_gatconv(concat):
    conv = pyg_conv("GATConv")(F_IN, C, heads=3, concat=concat, negative_slope=0.15)
    ours = GATAttention(in_dim=F_IN, out_dim=C, heads=3, concat=concat, negative_slope=0.15)
    with torch.no_grad():
        torch.nn.init.normal_(conv.bias)
        ours.lin.weight.copy_(conv.lin.weight)
        ours.att_src.copy_(conv.att_src.view(3, C))
        ours.att_dst.copy_(conv.att_dst.view(3, C))
        ours.bias.copy_(conv.bias)
    compare_with_pyg(ours, conv)


@pytest.mark.parametrize("share", [False, True])
def test_gatv2_matches_pyg_gatv2conv(share):
    conv = pyg_conv("GATv2Conv")(F_IN, C, heads=2, share_weights=share)
    ours = GATv2Attention(in_dim=F_IN, out_dim=C, heads=2, share_weights=share)
    with torch.no_grad():
        conv.lin_l.bias.zero_()  # the paper's W_s, W_t have no bias; PyG's lin_l/lin_r do
        conv.lin_r.bias.zero_()
        torch.nn.init.normal_(conv.bias)
        ours.lin_src.weight.copy_(conv.lin_l.weight)
        ours.lin_dst.weight.copy_(conv.lin_r.weight)
        ours.att.copy_(conv.att.view(2, C))
        ours.bias.copy_(conv.bias)
    compare_with_pyg(ours, conv)


def test_dot_matches_pyg_transformerconv():
    conv = pyg_conv("TransformerConv")(F_IN, C, heads=2, bias=False, root_weight=True)
    ours = GraphDotAttention(in_dim=F_IN, out_dim=C, heads=2, add_self_loops=False, bias=False,
                             root_weight=True)
    with torch.no_grad():
        for mine, theirs in (("lin_query", "lin_query"), ("lin_key", "lin_key"),
                             ("lin_value", "lin_value"), ("lin_root", "lin_skip")):
            getattr(ours, mine).weight.copy_(getattr(conv, theirs).weight)
    compare_with_pyg(ours, conv)


# --- scale: memory grows with E, not N^2 -----------------------------------------------------

def test_memory_linear_in_edges():
    n, e = 100_000, 500_000
    torch.manual_seed(0)
    x, edge_index = torch.randn(n, 16), torch.randint(0, n, (2, e))
    layer = GATAttention(in_dim=16, out_dim=8, heads=2)
    with torch.autograd.profiler.profile(profile_memory=True) as prof:
        out, weights = layer(x, edge_index, return_weights=True)
    # Replay every allocator event (+alloc, -free) in time order to get the true peak.
    events = sorted((ev for ev in prof.kineto_results.events() if ev.name() == "[memory]"),
                    key=lambda ev: ev.start_ns())
    assert events, "the profiler recorded no allocations"
    live = peak = 0
    for ev in events:
        live += ev.nbytes()
        peak = max(peak, live)
    assert out.shape == (n, 16) and weights.shape == (e + n - int((edge_index[0] == edge_index[1]).sum()), 2)
    assert peak < 200 * 2**20, f"peak {peak / 2**20:.0f} MiB (N^2 would be {n * n * 4 / 2**30:.0f} GiB)"


# --- validation and refusals -----------------------------------------------------------------

GOOD_EDGES = torch.tensor([[0, 1, 2], [1, 2, 0]])


@pytest.mark.parametrize("x,edge_index,match", [
    (torch.randn(3, F_IN), torch.tensor([[0, 3], [1, 0]]), r"edge_index\[0, 1\] = 3 .*N = 3"),
    (torch.randn(3, F_IN), torch.tensor([[0, 1], [-1, 0]]), r"edge_index\[1, 0\] = -1 .*N = 3"),
    (torch.randn(F_IN), GOOD_EDGES, "x must be a 2-D floating"),
    (torch.randn(2, 3, F_IN), GOOD_EDGES, "x must be a 2-D floating"),
    (torch.ones(3, F_IN, dtype=torch.long), GOOD_EDGES, "x must be a 2-D floating"),
    (torch.randn(3, F_IN + 1), GOOD_EDGES, r"x must have shape \(N, in_dim=5\)"),
    (torch.randn(3, F_IN, dtype=torch.float64), GOOD_EDGES, "x has dtype torch.float64"),
    (torch.randn(3, F_IN), GOOD_EDGES.T, r"edge_index must have shape \(2, E\)"),
    (torch.randn(3, F_IN), GOOD_EDGES[0], r"edge_index must have shape \(2, E\)"),
    (torch.randn(3, F_IN), GOOD_EDGES.float(), "edge_index must have dtype torch.int64"),
    (torch.randn(3, F_IN), GOOD_EDGES.int(), "edge_index must have dtype torch.int64"),
    (torch.randn(3, F_IN, device="meta"), GOOD_EDGES, "edge_index is on cpu, x on meta"),
])
@pytest.mark.parametrize("cls", [GATAttention, GATv2Attention, GraphDotAttention])
def test_bad_inputs_raise_value_error(cls, x, edge_index, match):
    with pytest.raises(ValueError, match=match):
        cls(in_dim=F_IN, out_dim=C)(x, edge_index)


@pytest.mark.parametrize("kwargs,match", [
    ({"in_dim": 0}, "in_dim must be an integer >= 1, got 0"),
    ({"out_dim": -2}, "out_dim must be an integer >= 1, got -2"),
    ({"heads": 1.5}, "heads must be an integer >= 1, got 1.5"),
    ({"concat": "yes"}, "concat must be a bool"),
    ({"dropout": 1.0}, r"dropout must be a number in \[0, 1\), got 1.0"),
    ({"add_self_loops": 1}, "add_self_loops must be a bool"),
    ({"bias": None}, "bias must be a bool"),
])
@pytest.mark.parametrize("cls", [GATAttention, GATv2Attention, GraphDotAttention])
def test_bad_constructor_args(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**{"in_dim": F_IN, "out_dim": C, **kwargs})


@pytest.mark.parametrize("cls,kwargs,match", [
    (GATAttention, {"negative_slope": -0.1}, "negative_slope must be a finite number >= 0"),
    (GATv2Attention, {"negative_slope": float("nan")}, "negative_slope must be a finite number >= 0"),
    (GATv2Attention, {"share_weights": "no"}, "share_weights must be a bool"),
    (GraphDotAttention, {"root_weight": 0}, "root_weight must be a bool"),
])
def test_variant_specific_bad_args(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(in_dim=F_IN, out_dim=C, **kwargs)


@pytest.mark.parametrize("cls", [GATAttention, GATv2Attention, GraphDotAttention])
def test_unsupported_device_refused_with_reason(cls):
    layer = cls(in_dim=F_IN, out_dim=C)
    x, edge_index = torch.randn(3, F_IN, device="meta"), GOOD_EDGES.to("meta")
    with pytest.raises(NotSupportedError, match=r"device=meta \(supported: \['cpu', 'cuda'\]\)"):
        layer(x, edge_index)
