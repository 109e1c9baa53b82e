"""``xformers``: ``xformers.ops.memory_efficient_attention`` (CUDA kernels only).

Paper: Rabe & Staats, "Self-attention Does Not Need O(n^2) Memory", 2021; kernels from the
xformers project (CUTLASS, and FlashAttention where it dispatches to it).

    softmax(Q K^T * scale + bias) V, computed in tiles without forming Q K^T

Complexity: O(B H Lq Lk D) time, O(B H Lq D) extra memory.

Limits: CUDA only (xformers has no CPU operator: on CPU this variant reports why and refuses);
no attention weights. Inputs are handed over in xformers' (B, L, H, D) layout as transposed
views. Boolean masks are turned into additive biases; a tensor bias is laid out with its last
stride padded to a multiple of 8 elements, which the kernels require. ``is_causal`` alone uses
``LowerTriangularMask`` (top-left aligned, as torch); with a mask, causal is merged into the bias.

xformers' extension links ``libcudart.so.12``; CUDA-13 torch wheels lack it, so the probe
loads it from the ``nvidia-cuda-runtime-cu12`` package first (a dependency of attnbench on
Linux; without that library the extension fails to load and xformers refuses every operator). If
the extension still cannot load, every request is refused with the import error as the reason.

Args: none.
Shapes: query (B, H, Lq, D), key (B, H, Lk, D), value (B, H, Lk, Dv) -> (B, H, Lq, Dv).
"""

from __future__ import annotations

import ctypes
import functools
import glob
import importlib
import os

import torch
from torch import Tensor

from ._base import AttentionOutput, Capabilities, DenseAttention
from ._masks import additive_bias

ALIGN = 8


@functools.cache
def probe() -> tuple[object | None, str]:
    """(the ``xformers.ops`` module or None, the xformers version or why it cannot be used)."""
    _preload_cudart12()
    try:
        ops = importlib.import_module("xformers.ops")
        version = importlib.import_module("xformers").__version__
    except (ImportError, OSError, RuntimeError) as err:  # reported as the refusal reason
        return None, f"xformers cannot be imported: {type(err).__name__}: {err}"
    if not hasattr(ops, "memory_efficient_attention"):
        return None, f"xformers {version} has no ops.memory_efficient_attention"
    return ops, version


def _preload_cudart12() -> None:
    """Load libcudart.so.12 from nvidia-cuda-runtime-cu12 when torch ships a newer CUDA runtime."""
    if not (torch.version.cuda or "").startswith("13"):
        return
    try:
        nvidia = importlib.import_module("nvidia")
    except ImportError:
        return  # the probe's import error then says what is missing
    for root in nvidia.__path__:
        for path in sorted(glob.glob(os.path.join(root, "*", "lib", "libcudart.so.12*"))):
            ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            return


class XFormersAttention(DenseAttention):
    name = "xformers"
    capabilities = Capabilities(
        devices=frozenset({"cuda"}),
        dtypes=frozenset({torch.float16, torch.bfloat16, torch.float32}),
        weights=False,
        notes=("CUDA only; memory-efficient fused kernel",),
    )

    def _extra_reasons(self, query: Tensor, key: Tensor, attn_mask: Tensor | None, *,
                       is_causal: bool) -> list[str]:
        ops, detail = probe()
        return [] if ops is not None else [detail]

    def _attend(self, query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None, *,
                is_causal: bool, dropout_p: float, scale: float, need_weights: bool
                ) -> AttentionOutput:
        ops, _ = probe()
        b, h, lq, lk = query.shape[0], query.shape[1], query.shape[2], key.shape[2]
        if attn_mask is None and is_causal:
            bias = ops.LowerTriangularMask()
        elif attn_mask is None:
            bias = None
        else:
            dense = additive_bias(attn_mask, is_causal, lq, lk, query.dtype, query.device)
            bias = _aligned(dense, (b, h, lq, lk))
        q, k, v = (t.transpose(1, 2) for t in (query, key, value))  # (B, L, H, D) views
        out = ops.memory_efficient_attention(q, k, v, attn_bias=bias, p=dropout_p, scale=scale)
        return AttentionOutput(out.transpose(1, 2), None)


def _aligned(bias: Tensor, shape: tuple[int, int, int, int]) -> Tensor:
    """``bias`` broadcast to ``shape`` with every stride but the last a multiple of ALIGN."""
    while bias.dim() < 4:
        bias = bias.unsqueeze(0)
    lk = shape[-1]
    padded = -(-lk // ALIGN) * ALIGN
    store = bias.new_zeros(bias.shape[:-2] + (shape[2], padded))
    store[..., :lk] = bias
    return store[..., :lk].expand(shape)
