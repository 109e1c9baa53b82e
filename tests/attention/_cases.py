"""Shared builders for the attention tests: inputs, masks of every kind, tolerances, the oracle,
and recorders of the shapes and memory a call produces."""

from __future__ import annotations

import torch
from torch.autograd.profiler import profile
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

import attention
from attention import DenseAttention

MASK_KINDS = ("none", "key_padding", "boolean", "additive", "causal", "causal+key_padding")
DTYPES = (torch.float64, torch.float32, torch.bfloat16, torch.float16)
# (B, H, Lq, Lk, D, Dv): square, cross with Lq > Lk and odd lengths, Lq < Lk with another head dim
SHAPES = ((2, 2, 6, 6, 8, 8), (1, 3, 7, 5, 16, 8), (2, 1, 9, 13, 4, 6))
# (atol, rtol) for outputs and for gradients, against the float64 oracle on the same inputs
TOLERANCES = {
    torch.float64: ((1e-10, 1e-8), (1e-9, 1e-7)),
    torch.float32: ((2e-5, 1e-4), (1e-4, 1e-3)),
    torch.bfloat16: ((4e-2, 4e-2), (1e-1, 6e-2)),
    torch.float16: ((5e-3, 5e-3), (2e-2, 1e-2)),
}

DENSE = tuple(n for n, c in attention.REGISTRY.items() if issubclass(c, DenseAttention))


def shape_id(shape: tuple[int, ...]) -> str:
    b, h, lq, lk, d, dv = shape
    return f"B{b}H{h}q{lq}k{lk}d{d}v{dv}"


def make_qkv(shape: tuple[int, ...], dtype: torch.dtype, seed: int = 0):
    """q, k, v drawn in float64 then rounded to ``dtype`` (the oracle sees the rounded values)."""
    b, h, lq, lk, d, dv = shape
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(b, h, lq, d, generator=gen, dtype=torch.float64)
    k = torch.randn(b, h, lk, d, generator=gen, dtype=torch.float64)
    v = torch.randn(b, h, lk, dv, generator=gen, dtype=torch.float64)
    return tuple(t.to(dtype) for t in (q, k, v))


def make_mask(kind: str, shape: tuple[int, ...], dtype: torch.dtype, seed: int = 1):
    """(attn_mask, is_causal) for a mask kind; boolean masks include one fully masked row."""
    b, h, lq, lk, _, _ = shape
    gen = torch.Generator().manual_seed(seed)
    causal = kind.startswith("causal")
    if kind in ("none", "causal"):
        return None, causal
    if kind in ("key_padding", "causal+key_padding"):
        keep = torch.ones(b, 1, 1, lk, dtype=torch.bool)
        keep[0, ..., -2:] = False  # padding at the end of the first sequence
        return keep, causal
    if kind == "boolean":
        keep = torch.rand(b, 1, lq, lk, generator=gen) > 0.3
        keep[..., 0] = True
        keep[0, 0, 1, :] = False  # a query with nothing to attend: defined as zeros
        return keep, False
    bias = 0.5 * torch.randn(b, h, lq, lk, generator=gen, dtype=torch.float64)
    blocked = torch.rand(b, h, lq, lk, generator=gen) > 0.7
    blocked[..., 0] = False
    return bias.masked_fill(blocked, float("-inf")).to(dtype), False


def context_kwargs(name: str, shape: tuple[int, ...]) -> dict:
    """The build-time context a variant declares it needs, for tensors of ``shape``."""
    _, h, _, lk, d, _ = shape
    context = {"head_dim": d, "num_heads": h, "max_len": lk}
    return {key: context[key] for key in attention.REGISTRY[name].capabilities.needs}


def oracle(q, k, v, attn_mask, is_causal, *, scale=None):
    """float64 reference output and weights for the (possibly low-precision) inputs."""
    q64, k64, v64 = (t.detach().double().requires_grad_() for t in (q, k, v))
    mask64 = attn_mask if attn_mask is None or attn_mask.dtype == torch.bool else attn_mask.double()
    out, weights = attention.ReferenceAttention()(q64, k64, v64, mask64, is_causal=is_causal,
                                                  scale=scale, need_weights=True)
    return (q64, k64, v64), out, weights


class RecordShapes(TorchDispatchMode):
    """Records the shape of every tensor an aten op returns."""

    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[int, ...]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.shapes += [tuple(t.shape) for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
        return out


def peak_cpu_bytes(fn) -> int:
    """Peak of the running sum of allocations minus frees recorded by torch's profiler."""
    with profile(profile_memory=True) as prof:
        fn()
    live = peak = 0
    for event in sorted(prof.function_events, key=lambda e: e.time_range.start):
        live += event.self_cpu_memory_usage
        peak = max(peak, live)
    return peak
