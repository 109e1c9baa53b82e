"""Planetoid raw files (``ind.<name>.x, y, tx, ty, allx, ally, graph, test.index``) -> a ``Graph``.

Format: Yang, Cohen, Salakhutdinov, "Revisiting Semi-Supervised Learning with Graph
Embeddings", ICML 2016 (github.com/kimiyoung/planetoid). ``x``/``tx``/``allx`` are scipy CSR
feature matrices of the labelled training, test and all non-test nodes, ``y``/``ty``/``ally``
their one-hot labels (numpy), ``graph`` a ``defaultdict(list)`` of adjacency lists and
``test.index`` the node ids of the test rows, one per line. The standard preprocessing (Kipf &
Welling 2017; Velickovic et al. 2018) gives the public split:

    nodes       = allx rows, then the test ids (sorted); tx/ty rows are placed at their ids
    train       = the first len(y) nodes (20 per class)
    val         = the next 500 nodes
    test        = the test.index ids (1000)

Citeseer's test ids leave gaps (isolated nodes without features or labels in the raw files):
the gaps become nodes with zero features and label -1 that belong to no split.

The files are Python 2 pickles. They are read by ``_RestrictedUnpickler``, which can construct
only numpy arrays and dtypes, a CSR record (an inert holder of ``data/indices/indptr/shape``,
so scipy is not needed and none of its code runs) and ``collections.defaultdict(list)``;
any other global in a file is an error that names the file and the global, never executed.
"""

from __future__ import annotations

import collections
import io
import pickle
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .graph import Graph, coalesce_undirected

PARTS = ("x", "y", "tx", "ty", "allx", "ally", "graph", "test.index")
NUM_VAL = 500


class CSRRecord:
    """The pickled state of a ``scipy.sparse.csr_matrix``, kept as plain arrays."""

    def __setstate__(self, state: object) -> None:
        if not isinstance(state, dict) or not {"data", "indices", "indptr", "_shape"} <= set(state):
            raise pickle.UnpicklingError("csr_matrix state must hold data, indices, indptr and _shape")
        self.data, self.indices, self.indptr = state["data"], state["indices"], state["indptr"]
        self.shape = tuple(int(s) for s in state["_shape"])

    def to_dense(self) -> np.ndarray:
        rows, cols = self.shape
        indptr = np.asarray(self.indptr, dtype=np.int64)
        if indptr.shape != (rows + 1,) or indptr[0] != 0 or np.any(np.diff(indptr) < 0) \
                or indptr[-1] != len(self.indices) or len(self.indices) != len(self.data):
            raise ValueError(f"inconsistent CSR arrays for shape {self.shape}")
        indices = np.asarray(self.indices, dtype=np.int64)
        if len(indices) and (indices.min() < 0 or indices.max() >= cols):
            raise ValueError(f"CSR column index outside [0, {cols})")
        dense = np.zeros(self.shape, dtype=np.float32)
        row_of = np.repeat(np.arange(rows), np.diff(indptr))
        np.add.at(dense, (row_of, indices), np.asarray(self.data, dtype=np.float32))
        return dense


def _numpy_reconstruct():
    # numpy >= 2 moved numpy.core to numpy._core; both names reach the same function.
    core = np._core if hasattr(np, "_core") else np.core
    return core.multiarray._reconstruct


_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
    ("scipy.sparse.csr", "csr_matrix"): lambda: CSRRecord,
    ("scipy.sparse._csr", "csr_matrix"): lambda: CSRRecord,
    ("collections", "defaultdict"): lambda: collections.defaultdict,
    ("__builtin__", "list"): lambda: list,
    ("builtins", "list"): lambda: list,
    # Python 3 writes protocol-2 bytes as _codecs.encode(str, "latin1"): a pure conversion.
    ("_codecs", "encode"): lambda: _latin1_encode,
}


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r} is not allowed")
    return text.encode("latin1")


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, path: Path) -> None:
        super().__init__(io.BytesIO(data), encoding="latin1")
        self.path = path

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _ALLOWED:
            raise ValueError(f"{self.path}: refusing to load {module}.{name}: a Planetoid file may only "
                             f"hold numpy arrays, scipy CSR matrices and a defaultdict(list)")
        return _ALLOWED[(module, name)]()


def load_pickle(path: Path) -> object:
    """Unpickle ``path`` allowing only the Planetoid types (see the module docstring)."""
    try:
        return _RestrictedUnpickler(path.read_bytes(), path).load()
    except ValueError:
        raise
    except Exception as err:  # a truncated or foreign file: say which one, whatever broke
        raise ValueError(f"{path}: not a readable Planetoid pickle ({type(err).__name__}: {err})") from err


def _matrix(obj: object, path: Path, rows: int | None = None) -> np.ndarray:
    """A 2-D float array from a CSR record or an ndarray; ``rows`` checks the row count."""
    try:
        array = obj.to_dense() if isinstance(obj, CSRRecord) else obj
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err
    if not isinstance(array, np.ndarray) or array.ndim != 2 or array.dtype.kind not in "biuf":
        raise ValueError(f"{path}: expected a 2-D numeric matrix, got {type(obj).__name__}")
    if rows is not None and array.shape[0] != rows:
        raise ValueError(f"{path}: expected {rows} rows to match the other files, got {array.shape[0]}")
    return array.astype(np.float32)


def _test_index(path: Path) -> np.ndarray:
    ids = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            if not line.strip().isdigit():
                raise ValueError(f"{path}, line {number}: expected a node id (integer >= 0), got {line!r}")
            ids.append(int(line))
    if not ids or len(set(ids)) != len(ids):
        raise ValueError(f"{path}: expected distinct test node ids, got {len(ids)} ids, "
                         f"{len(ids) - len(set(ids))} repeated")
    return np.asarray(ids, dtype=np.int64)


def _onehot(obj: object, path: Path) -> np.ndarray:
    """One-hot label rows (an all-zero row is an unlabelled node)."""
    onehot = _matrix(obj, path)
    if np.any((onehot != 0) & (onehot != 1)) or np.any(onehot.sum(1) > 1):
        raise ValueError(f"{path}: expected one-hot label rows (0/1, at most one 1 per row)")
    return onehot


def _edges(adjacency: object, path: Path, num_nodes: int) -> Tensor:
    if not isinstance(adjacency, dict):
        raise ValueError(f"{path}: expected a dict of adjacency lists, got {type(adjacency).__name__}")
    src, dst = [], []
    for node, neighbours in adjacency.items():
        if not isinstance(neighbours, list):
            raise ValueError(f"{path}: node {node!r}: expected a list of neighbours")
        src.extend([node] * len(neighbours))
        dst.extend(neighbours)
    try:
        edges = torch.tensor([src, dst], dtype=torch.long).reshape(2, -1)
    except (TypeError, ValueError, OverflowError) as err:
        raise ValueError(f"{path}: node ids must be integers ({err})") from err
    if edges.numel() and (edges.min() < 0 or edges.max() >= num_nodes):
        bad = edges[:, ((edges < 0) | (edges >= num_nodes)).any(0)][:, 0].tolist()
        raise ValueError(f"{path}: edge {bad[0]} -> {bad[1]} points outside the {num_nodes} nodes "
                         f"(ids 0..{num_nodes - 1})")
    return coalesce_undirected(edges, num_nodes)


def _read_parts(prefix: Path) -> dict[str, object]:
    missing = [f"{prefix}.{part}" for part in PARTS if not Path(f"{prefix}.{part}").is_file()]
    if missing:
        raise ValueError(f"missing Planetoid file(s): {', '.join(missing)} (expected ind.<name>.{{"
                         f"{','.join(PARTS)}}})")
    parts = {part: load_pickle(Path(f"{prefix}.{part}")) for part in PARTS if part != "test.index"}
    parts["test.index"] = _test_index(Path(f"{prefix}.test.index"))
    return parts


def load_planetoid(folder: str | Path, name: str, *, row_normalize: bool) -> Graph:
    """Read ``folder/ind.<name>.*`` into a ``Graph`` with the public split (module docstring)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"--data {folder}: expected the folder holding ind.{name}.* (set the dataset "
                         f"with data.name)")
    prefix = folder / f"ind.{name}"
    parts = _read_parts(prefix)
    path = {part: Path(f"{prefix}.{part}") for part in PARTS}
    y, ty, ally = (_onehot(parts[p], path[p]) for p in ("y", "ty", "ally"))
    x = _matrix(parts["x"], path["x"], rows=len(y))
    allx = _matrix(parts["allx"], path["allx"], rows=len(ally))
    tx = _matrix(parts["tx"], path["tx"], rows=len(ty))
    test_ids = parts["test.index"]
    if len(test_ids) != len(tx):
        raise ValueError(f"{path['test.index']}: {len(test_ids)} ids for the {len(tx)} rows of {path['tx']}")
    wholes = {"allx": allx, "ally": ally}
    for other, part in ((x, "x"), (tx, "tx"), (ty, "ty"), (y, "y")):
        whole = "allx" if part in ("x", "tx") else "ally"
        if other.shape[1] != wholes[whole].shape[1]:
            raise ValueError(f"{path[part]}: {other.shape[1]} columns, but {path[whole]} has "
                             f"{wholes[whole].shape[1]}")
    # The labelled training nodes are the first rows of allx/ally (Planetoid's layout).
    if len(y) > len(ally) or not np.array_equal(y, ally[: len(y)]):
        raise ValueError(f"{path['y']}: expected the first {len(y)} rows of {path['ally']}")
    return _assemble(allx, ally, tx, ty, test_ids, len(y), parts["graph"], path, name, row_normalize)


def _assemble(allx: np.ndarray, ally: np.ndarray, tx: np.ndarray, ty: np.ndarray, test_ids: np.ndarray,
              num_train: int, adjacency: object, path: dict[str, Path], name: str,
              row_normalize: bool) -> Graph:
    first, last = int(test_ids.min()), int(test_ids.max())
    if first < len(allx):
        raise ValueError(f"{path['test.index']}: test id {first} overlaps the {len(allx)} rows of "
                         f"{path['allx']}")
    num_nodes = last + 1
    features = np.zeros((num_nodes, allx.shape[1]), dtype=np.float32)
    onehot = np.zeros((num_nodes, ally.shape[1]), dtype=np.float32)
    features[: len(allx)], onehot[: len(ally)] = allx, ally
    # tx/ty row k belongs to node test_ids[k]; ids between the allx rows and the first test id
    # (and Citeseer's gaps) stay zero: nodes without features or labels, in no split.
    features[test_ids], onehot[test_ids] = tx, ty
    if row_normalize:
        sums = features.sum(1, keepdims=True)
        features = np.divide(features, sums, out=np.zeros_like(features), where=sums != 0)
    labels = np.where(onehot.sum(1) > 0, onehot.argmax(1), -1)  # -1: unlabelled
    train = np.arange(num_train)
    val = np.arange(num_train, num_train + NUM_VAL)
    test = np.sort(test_ids)
    if val[-1] >= len(allx) or np.any(labels[np.concatenate([train, val, test])] < 0):
        raise ValueError(f"{path['ally']}: the public split needs labels for the first {num_train + NUM_VAL} "
                         f"nodes and every test node")
    return Graph(x=torch.from_numpy(features), edge_index=_edges(adjacency, path["graph"], num_nodes),
                 y=torch.from_numpy(labels).long(), train_index=torch.from_numpy(train),
                 val_index=torch.from_numpy(val), test_index=torch.from_numpy(test),
                 num_classes=onehot.shape[1], name=name)
