"""The graph task: CSBM generator, Planetoid loader (restricted unpickling), models, runner contract."""

from __future__ import annotations

import collections
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import attention
from bench.train import train_and_test
from reports.records import TRAIN_FIELDS
from tasks import get_task
from tasks._cache import cache_dir
from tasks.graph.csbm import cached_csbm, generate_csbm
from tasks.graph.data import GraphDataModule, load_graph
from tasks.graph.graph import coalesce_undirected
from tasks.graph.model import GCNLayer, feature_dropout
from tasks.graph.module import NodeClassifier
from tasks.graph.planetoid import load_pickle, load_planetoid

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "planetoid"
TASK = get_task("graph")
SMALL = {"num_nodes": 90, "num_classes": 3, "avg_degree": 4.0, "homophily": 0.8, "feature_dim": 8,
         "feature_signal": 2.0, "train_per_class": 4, "num_val": 15, "num_test": 30, "seed": 1}
TINY_OVERRIDES = {f"data.{k}": v for k, v in SMALL.items()} | {
    "model.hidden": 4, "model.heads": 2, "trainer.max_epochs": 3, "trainer.patience": 2}


# ---------------------------------------------------------------- CSBM generator


def test_csbm_is_deterministic_and_split_like_planetoid() -> None:
    a, b = generate_csbm(**SMALL), generate_csbm(**SMALL)
    for name in ("x", "edge_index", "y", "train_index", "val_index", "test_index"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert not torch.equal(a.edge_index, generate_csbm(**{**SMALL, "seed": 2}).edge_index)
    assert torch.bincount(a.y[a.train_index]).tolist() == [4, 4, 4]
    assert (len(a.val_index), len(a.test_index)) == (15, 30)
    splits = torch.cat([a.train_index, a.val_index, a.test_index])
    assert splits.unique().numel() == splits.numel()


def test_csbm_edges_are_undirected_and_follow_the_homophily() -> None:
    g = generate_csbm(**{**SMALL, "num_nodes": 3000, "avg_degree": 10.0, "homophily": 0.3})
    src, dst = g.edge_index
    assert not (src == dst).any()
    forward = set(zip(src.tolist(), dst.tolist(), strict=True))
    assert forward == {(d, s) for s, d in forward} and len(forward) == g.edge_index.shape[1]
    assert g.edge_index.shape[1] / 3000 == pytest.approx(10.0, rel=0.02)
    assert (g.y[src] == g.y[dst]).float().mean().item() == pytest.approx(0.3, abs=0.02)


def test_csbm_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="homophily"):
        generate_csbm(**{**SMALL, "homophily": 1.5})
    with pytest.raises(ValueError, match="num_classes"):
        generate_csbm(**{**SMALL, "num_classes": 1})
    with pytest.raises(ValueError, match="train_per_class=40"):
        generate_csbm(**{**SMALL, "train_per_class": 40})
    with pytest.raises(ValueError, match="num_val"):
        generate_csbm(**{**SMALL, "num_val": 80})


def test_csbm_cache_hit_gives_identical_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ATTNBENCH_CACHE", str(tmp_path))
    first = cached_csbm(**SMALL)
    files = list(cache_dir("graph").glob("csbm-*.pt"))
    assert len(files) == 1 and files[0].parent == tmp_path / "graph"  # the one cache, honouring the variable
    again = cached_csbm(**SMALL)
    assert torch.equal(first.x, again.x) and torch.equal(first.edge_index, again.edge_index)
    assert torch.equal(first.test_index, again.test_index)
    cached_csbm(**{**SMALL, "homophily": 0.5})
    assert len(list(cache_dir("graph").glob("csbm-*.pt"))) == 2  # keyed by every parameter
    assert not list(cache_dir("graph").glob("*.tmp"))


# ---------------------------------------------------------------- Planetoid files


def _csr_pickle(matrix: np.ndarray) -> bytes:
    """A scipy ``csr_matrix`` pickle as Python 2 wrote it, built without scipy."""
    rows, cols = np.nonzero(matrix)
    state = {"format": "csr", "_shape": matrix.shape, "maxprint": 50,
             "indptr": np.concatenate([[0], np.cumsum((matrix != 0).sum(1))]).astype(np.int32),
             "indices": cols.astype(np.int32), "data": matrix[rows, cols].astype(np.float32)}
    inner = pickle.dumps(state, protocol=2)
    return b"\x80\x02cscipy.sparse.csr\ncsr_matrix\n)\x81" + inner[2:-1] + b"b."


def _write_planetoid(folder: Path, *, name: str = "toy", gap: bool = True, **replace: bytes) -> dict:
    """A small Planetoid dataset: 2 classes, 10 labelled + 500 validation rows, 6 test nodes (one
    id left out when ``gap``, like Citeseer's isolated nodes), a ring graph."""
    rng = np.random.default_rng(0)
    n_all, n_train, features = 520, 10, 5
    allx = (rng.random((n_all, features)) < 0.4).astype(np.float32)
    allx[:, 0] = 1.0  # no empty row, so every row normalises
    ally = np.eye(2, dtype=np.float32)[np.arange(n_all) % 2]
    test_ids = [n_all + 3, n_all, n_all + 5, n_all + 1, n_all + 6] + ([] if gap else [n_all + 2])
    tx = np.full((len(test_ids), features), 2.0, dtype=np.float32)
    ty = np.eye(2, dtype=np.float32)[np.arange(len(test_ids)) % 2]
    num_nodes = max(test_ids) + 1
    graph = collections.defaultdict(list, {i: [(i + 1) % num_nodes] for i in range(num_nodes)})
    files = {"x": _csr_pickle(allx[:n_train]), "y": pickle.dumps(ally[:n_train], protocol=2),
             "tx": _csr_pickle(tx), "ty": pickle.dumps(ty, protocol=2), "allx": _csr_pickle(allx),
             "ally": pickle.dumps(ally, protocol=2), "graph": pickle.dumps(graph, protocol=2),
             "test.index": "\n".join(map(str, test_ids)).encode() + b"\n", **replace}
    for part, content in files.items():
        (folder / f"ind.{name}.{part}").write_bytes(content)
    return {"allx": allx, "test_ids": test_ids, "ty": ty, "num_nodes": num_nodes}


def test_planetoid_loader_builds_the_public_split(tmp_path: Path) -> None:
    made = _write_planetoid(tmp_path)
    g = load_planetoid(tmp_path, "toy", row_normalize=False)
    assert g.num_nodes == made["num_nodes"] == 527 and g.num_classes == 2
    assert torch.equal(g.x[:520], torch.from_numpy(made["allx"]))
    assert torch.equal(g.train_index, torch.arange(10)) and torch.equal(g.val_index, torch.arange(10, 510))
    assert g.test_index.tolist() == sorted(made["test_ids"])
    # tx/ty row k belongs to node test_ids[k]
    assert g.y[made["test_ids"]].tolist() == made["ty"].argmax(1).tolist()
    assert g.y[522].item() == -1 and g.x[522].abs().sum().item() == 0.0  # the gap: no label, no features
    assert g.edge_index.shape[1] == 2 * 527  # the ring, both directions


def test_planetoid_row_normalisation(tmp_path: Path) -> None:
    _write_planetoid(tmp_path)
    g = load_planetoid(tmp_path, "toy", row_normalize=True)
    sums = g.x.sum(1)
    assert torch.allclose(sums[g.y >= 0], torch.ones(int((g.y >= 0).sum())))
    assert sums[522].item() == 0.0


def test_planetoid_refuses_unexpected_types_without_running_them(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = (b"\x80\x02cos\nsystem\nX" + len(f"touch {marker}").to_bytes(4, "little")
               + f"touch {marker}".encode() + b"\x85R.")
    _write_planetoid(tmp_path, graph=payload)
    with pytest.raises(ValueError, match=r"ind\.toy\.graph: refusing to load os\.system"):
        load_planetoid(tmp_path, "toy", row_normalize=True)
    assert not marker.exists()
    (tmp_path / "evil").write_bytes(pickle.dumps(collections.OrderedDict(), protocol=2))
    with pytest.raises(ValueError, match="evil: refusing to load collections.OrderedDict"):
        load_pickle(tmp_path / "evil")


@pytest.mark.parametrize(("replace", "message"), [
    ({"test.index": b"520\n521\n522\n"}, r"ind\.toy\.test\.index: 3 ids for the 6 rows"),
    ({"ty": pickle.dumps(np.eye(3, dtype=np.float32), protocol=2)}, r"ind\.toy\.tx: expected 3 rows"),
    ({"x": _csr_pickle(np.ones((10, 4), np.float32))}, r"ind\.toy\.x: 4 columns, but .*ind\.toy\.allx has 5"),
    ({"graph": pickle.dumps({0: [1], 1: [900]}, protocol=2)}, r"ind\.toy\.graph: edge 1 -> 900 points"),
    ({"test.index": b"521\nfoo\n"}, r"ind\.toy\.test\.index, line 2: expected a node id"),
    ({"y": pickle.dumps(np.full((10, 2), 0.5, np.float32), protocol=2)}, r"ind\.toy\.y: expected one-hot"),
    ({"allx": b"\x80\x02garbage"}, r"ind\.toy\.allx: not a readable Planetoid pickle"),
])
def test_planetoid_bad_input_names_the_file(tmp_path: Path, replace: dict, message: str) -> None:
    _write_planetoid(tmp_path, gap=False, **replace)
    with pytest.raises(ValueError, match=message):
        load_planetoid(tmp_path, "toy", row_normalize=True)


def test_planetoid_missing_files_and_folder(tmp_path: Path) -> None:
    _write_planetoid(tmp_path)
    (tmp_path / "ind.toy.ally").unlink()
    with pytest.raises(ValueError, match=r"missing Planetoid file\(s\): .*ind\.toy\.ally"):
        load_planetoid(tmp_path, "toy", row_normalize=True)
    with pytest.raises(ValueError, match="expected the folder"):
        load_planetoid(tmp_path / "ind.toy.x", "toy", row_normalize=True)
    config = TASK.config("quick")["data"]
    with pytest.raises(ValueError, match="data.name must be a Planetoid dataset name"):
        load_graph({**config, "name": "../toy"}, str(tmp_path))
    with pytest.raises(ValueError, match=r"missing Planetoid file\(s\): .*ind\.citeseer\.x"):
        load_graph({**config, "name": "citeseer"}, str(tmp_path))


def test_real_cora_when_present() -> None:
    if not (SHARED / "ind.cora.graph").is_file():
        pytest.skip(f"real Cora files not found in {SHARED} (shared integration data is optional)")
    g = load_graph(TASK.config("full")["data"], str(SHARED))
    assert (g.num_nodes, g.x.shape[1], g.num_classes, g.edge_index.shape[1]) == (2708, 1433, 7, 10556)
    assert torch.bincount(g.y[g.train_index]).tolist() == [20] * 7
    assert (len(g.val_index), len(g.test_index)) == (500, 1000)
    assert torch.allclose(g.x.sum(1), torch.ones(2708))


# ---------------------------------------------------------------- models


def _graph():
    return generate_csbm(**SMALL)


def _model(variant: str, graph, **changes) -> NodeClassifier:
    options = {"hidden": 4, "heads": 2, "out_heads": 1, "dropout": 0.5, "attn_dropout": 0.5,
               "add_self_loops": True, "lr": 0.01, "weight_decay": 5e-4} | changes
    return NodeClassifier(variant=variant, in_dim=graph.x.shape[1], num_classes=graph.num_classes, **options)


@pytest.mark.parametrize("variant", ["gat", "gatv2", "dot", "none", "mlp"])
def test_every_model_family_trains_a_step(variant: str) -> None:
    graph = _graph()
    model = _model(variant, graph)
    batch = graph.batch("train")
    logits = model(batch["x"], batch["edge_index"])
    assert logits.shape == (graph.num_nodes, graph.num_classes)
    torch.nn.functional.cross_entropy(logits[batch["index"]], batch["y"][batch["index"]]).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.samples_in(batch) == 12


@pytest.mark.parametrize("variant", ["gat", "gatv2", "dot"])
def test_attention_weights_per_edge(variant: str) -> None:
    graph = _graph()
    model = _model(variant, graph, out_heads=3).train()
    layers = model.attention_weights(graph.batch("test"))
    assert model.training  # restored
    assert [w.shape[1] for _, w in layers] == [2, 3]
    for edges, weights in layers:
        assert edges.shape == (2, graph.edge_index.shape[1] + graph.num_nodes)  # plus one self loop each
        per_target = torch.zeros(graph.num_nodes, weights.shape[1]).index_add_(0, edges[1], weights)
        assert torch.allclose(per_target, torch.ones_like(per_target), atol=1e-5)
    assert _model("none", graph).attention_weights(graph.batch("test")) == []


def test_gcn_layer_matches_the_dense_formula() -> None:
    torch.manual_seed(0)
    edges = coalesce_undirected(torch.tensor([[0, 1, 2, 3], [1, 2, 0, 0]]), 5)  # node 4 isolated
    layer = GCNLayer(in_dim=3, out_dim=2).double()
    x = torch.randn(5, 3, dtype=torch.float64)
    adjacency = torch.eye(5, dtype=torch.float64)
    adjacency[edges[1], edges[0]] = 1.0
    d = adjacency.sum(1).rsqrt()
    expected = (d[:, None] * adjacency * d[None, :]) @ x @ layer.lin.weight.T + layer.bias
    assert torch.allclose(layer(x, edges), expected)


def test_feature_dropout_only_touches_nonzeros() -> None:
    torch.manual_seed(0)
    x = (torch.rand(200, 50) < 0.1).float() * torch.rand(200, 50)
    out = feature_dropout(x, 0.6, training=True)
    assert (out[x == 0] == 0).all()
    kept = out[x != 0] != 0
    assert torch.allclose(out[x != 0][kept], x[x != 0][kept] / 0.4)
    assert kept.float().mean().item() == pytest.approx(0.4, abs=0.05)
    assert feature_dropout(x, 0.6, training=False) is x


def test_memory_grows_with_edges_not_nodes_squared() -> None:
    """GAT forward on CSBM graphs of 50k and 100k nodes (same mean degree): the tensors kept for
    backward, measured with saved-tensor hooks, double with the edges; N^2 would quadruple."""
    def saved_bytes(num_nodes: int) -> int:
        g = generate_csbm(**SMALL | {"num_nodes": num_nodes, "avg_degree": 4.0, "num_val": 9, "num_test": 9})
        layer = attention.build("gat", in_dim=8, out_dim=4, heads=2, dropout=0.5)
        storages: dict[int, int] = {}

        def keep(t: torch.Tensor) -> torch.Tensor:
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
            layer(g.x, g.edge_index).output.sum().backward()
        return sum(storages.values())

    small, large = saved_bytes(50_000), saved_bytes(100_000)
    assert large / small == pytest.approx(2.0, rel=0.1)
    assert large < 0.01 * 100_000**2 * 4  # under 1% of one dense N x N fp32 matrix (40 GB)


# ---------------------------------------------------------------- task contract


def test_variant_reasons() -> None:
    for usable in ("gat", "gatv2", "dot", "none", "mlp"):
        assert TASK.variant_reasons(usable) == []
    for dense in ("reference", "sdpa", "linformer", "uniform"):
        reasons = TASK.variant_reasons(dense)
        assert reasons and "dense attention" in reasons[0] and "gat, gatv2, dot" in reasons[0]
    assert "unknown variant 'nope'" in TASK.variant_reasons("nope")[0]
    table = TASK.applicable_variants()
    assert set(table) == {"none", "mlp", *attention.VARIANTS}


@pytest.mark.parametrize("preset", ["quick", "full"])
def test_presets_build(preset: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ATTNBENCH_CACHE", str(tmp_path / "cache"))
    config = TASK.config(preset)
    datamodule, module = TASK.build(config, "gat", None, seed=0)
    assert isinstance(datamodule, GraphDataModule) and module.hparams.heads == 8
    (batch,) = list(datamodule.val_dataloader())
    assert torch.equal(batch["index"], datamodule.graph.val_index)
    with pytest.raises(ValueError, match="model config: expected the keys"):
        TASK.build({**config, "model": {**config["model"], "extra": 1}}, "gat", None, seed=0)
    with pytest.raises(ValueError, match="dense attention"):
        TASK.build(config, "reference", None, seed=0)


def test_train_and_test_end_to_end(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ATTNBENCH_CACHE", str(tmp_path / "cache"))
    record = train_and_test("graph", "gatv2", overrides=TINY_OVERRIDES, run_dir=str(tmp_path / "run"),
                            out=str(tmp_path / "record.json"), progress=False, seed=0)
    assert record["status"] == "ok" and set(TRAIN_FIELDS) <= set(record)
    assert record["convergence"]["val_items"] == "match"  # the validation items give val's metric
    assert 0.0 <= record["metrics"]["test/acc"] <= 1.0 and "test/loss" in record["metrics"]
    assert record["samples_per_s"] > 0 and record["params"] > 0
    unsupported = train_and_test("graph", "sdpa", overrides=TINY_OVERRIDES, progress=False)
    assert unsupported["status"] == "unsupported" and "dense attention" in unsupported["reason"]


def test_quick_preset_keeps_every_attention_variant_within_the_parameter_budget() -> None:
    from tasks.graph import TASK as GRAPH

    config = GRAPH.config("quick")
    counts = {}
    for variant in GRAPH.graph_variants():
        _, module = GRAPH.build(config, variant, None, 0)
        counts[variant] = sum(p.numel() for p in module.parameters())
    median = sorted(counts.values())[len(counts) // 2]
    assert all(abs(n / median - 1) <= 0.10 for n in counts.values()), counts
    _, wide = GRAPH.build({**config, "model": {**config["model"], "variant_heads": {}, "variant_kwargs": {}}},
                          "dot", None, 0)
    assert sum(p.numel() for p in wide.parameters()) > 2 * counts["dot"]  # what the settings take away


def test_graph_variant_kwargs_reach_the_layer_and_bad_ones_name_the_variant() -> None:
    from tasks.graph import TASK as GRAPH

    config = GRAPH.config("quick")
    _, module = GRAPH.build(config, "gatv2", None, 0)
    assert module.layers[0].share_weights and module.layers[1].share_weights
    bad = {**config, "model": {**config["model"], "variant_kwargs": {"gat": {"colour": 1}}}}
    with pytest.raises(ValueError, match=r"model.variant_kwargs for 'gat' \({'colour': 1}\).*colour"):
        GRAPH.build(bad, "gat", None, 0)
    with pytest.raises(ValueError, match="model.variant_kwargs for 'gat'"):
        GRAPH.variant_reasons("gat", bad)  # what a suite checks before training
