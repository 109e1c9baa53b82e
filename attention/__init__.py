"""attnbench attention variants: one interface, one explicit registry, one file per variant.

    import attention
    attn = attention.build("linformer", head_dim=64, max_len=512, rank=64)
    out, weights = attn(q, k, v, attn_mask=None, is_causal=False, need_weights=True)

``attention.VARIANTS`` lists every registered name; ``attention.REGISTRY`` maps it to its class.
"""

from __future__ import annotations

from ._base import (
    ALL_MASKS,
    CONTEXT_KEYS,
    AttentionOutput,
    Capabilities,
    DenseAttention,
    LimitCase,
    NotSupportedError,
    capability_reasons,
    mask_kind,
)
from ._graph import GraphAttention
from .additive import AdditiveAttention
from .gat import GATAttention
from .gatv2 import GATv2Attention
from .graph_dot import GraphDotAttention
from .hard import HardAttention
from .linear import LinearAttention
from .linformer import LinformerAttention
from .local import LocalAttention
from .luong import LuongAttention
from .memory import MemoryAttention
from .multihead import MultiHeadAttention
from .performer import PerformerAttention
from .reference import ReferenceAttention
from .sdpa import SDPAAttention
from .sparse import SparseAttention
from .uniform import UniformAttention
from .xformers_mea import XFormersAttention

REGISTRY: dict[str, type] = {
    "reference": ReferenceAttention,
    "sdpa": SDPAAttention,
    "xformers": XFormersAttention,
    "additive": AdditiveAttention,
    "luong": LuongAttention,
    "local": LocalAttention,
    "sparse": SparseAttention,
    "linformer": LinformerAttention,
    "performer": PerformerAttention,
    "linear": LinearAttention,
    "memory": MemoryAttention,
    "hard": HardAttention,
    "uniform": UniformAttention,
    "gat": GATAttention,
    "gatv2": GATv2Attention,
    "dot": GraphDotAttention,
}
VARIANTS: tuple[str, ...] = tuple(REGISTRY)


def build(name: str, **kwargs: object):
    """Build the variant registered under ``name`` with its keyword arguments."""
    if name not in REGISTRY:
        raise ValueError(f"unknown attention variant {name!r}; valid names: {', '.join(VARIANTS)}")
    return REGISTRY[name](**kwargs)


def build_in_context(name: str, *, head_dim: int, num_heads: int, max_len: int | None = None,
                     **kwargs: object):
    """Build a dense variant for a model: pass it the context it declares in ``capabilities.needs``.

    A model knows its head dim, head count and longest key sequence; only the variants that
    need them (e.g. ``additive`` needs head_dim, ``linformer`` max_len) receive them.
    """
    if name not in REGISTRY:
        raise ValueError(f"unknown attention variant {name!r}; valid names: {', '.join(VARIANTS)}")
    if not issubclass(REGISTRY[name], DenseAttention):
        raise ValueError(f"variant {name!r} is graph attention (node features and edges), not dense")
    needs = REGISTRY[name].capabilities.needs
    if "max_len" in needs and max_len is None:
        raise ValueError(f"variant {name!r} needs max_len (the longest key sequence), got None")
    context = {"head_dim": head_dim, "num_heads": num_heads, "max_len": max_len}
    return build(name, **{**{key: context[key] for key in needs}, **kwargs})  # explicit kwargs win


__all__ = [
    "ALL_MASKS", "CONTEXT_KEYS", "REGISTRY", "VARIANTS", "AttentionOutput", "Capabilities",
    "DenseAttention", "GraphAttention", "LimitCase", "MultiHeadAttention", "NotSupportedError", "build",
    "build_in_context",
    "capability_reasons", "mask_kind",
]
