"""``sdpa``: PyTorch's ``F.scaled_dot_product_attention``, with its backend chosen explicitly.

Paper: the same math as ``reference``; fused kernels from Dao et al., "FlashAttention",
NeurIPS 2022 (``flash``), Rabe & Staats, "Self-attention Does Not Need O(n^2) Memory", 2021
(``efficient``), and NVIDIA cuDNN (``cudnn``).

    softmax(Q K^T * scale + M) V, computed by torch's dispatcher

Complexity: O(B H Lq Lk D) time; the fused backends need O(B H Lq D) extra memory instead of
the O(B H Lq Lk) score matrix.

Args:
    backend: ``auto`` (torch chooses among all), or exactly one of ``math``, ``flash``,
        ``efficient``, ``cudnn``. An explicit backend that cannot run this request raises
        ``NotSupportedError`` with torch's reasons; it never runs another backend.

Limits: no attention weights. Grouped-query keys and values go to torch with ``enable_gqa``.
On CPU torch has ``math`` and ``flash`` only; ``efficient`` and ``cudnn`` are CUDA kernels. When
both ``attn_mask`` and ``is_causal`` are given they are merged into one boolean/additive mask
first (torch accepts only one of them).

Shapes: query (B, H, Lq, D), key (B, H, Lk, D), value (B, H, Lk, Dv) -> (B, H, Lq, Dv).
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.attention import SDPBackend, sdpa_kernel

from ._base import AttentionOutput, Capabilities, DenseAttention, NotSupportedError, require_choice
from ._masks import additive_bias, keep_mask

BACKENDS = {
    "math": SDPBackend.MATH,
    "flash": SDPBackend.FLASH_ATTENTION,
    "efficient": SDPBackend.EFFICIENT_ATTENTION,
    "cudnn": SDPBackend.CUDNN_ATTENTION,
}
CUDA_ONLY = frozenset({"efficient", "cudnn"})


class SDPAAttention(DenseAttention):
    name = "sdpa"
    capabilities = Capabilities(weights=False, gqa=True, notes=("torch fused kernels; backend selectable",))

    def __init__(self, *, backend: str = "auto") -> None:
        super().__init__()
        self.backend = require_choice("backend", backend, ("auto", *BACKENDS))

    def extra_repr(self) -> str:
        return f"backend={self.backend}"

    def _extra_reasons(self, query: Tensor, key: Tensor, attn_mask: Tensor | None, *,
                       is_causal: bool) -> list[str]:
        if self.backend in CUDA_ONLY and query.device.type != "cuda":
            return [f"backend '{self.backend}' is a CUDA kernel; torch has no {query.device.type} "
                    "implementation"]
        return []

    def _attend(self, query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None, *,
                is_causal: bool, dropout_p: float, scale: float, need_weights: bool
                ) -> AttentionOutput:
        if attn_mask is not None and is_causal:  # torch takes one or the other: merge them
            lq, lk = query.shape[-2], key.shape[-2]
            if attn_mask.dtype == torch.bool:
                attn_mask = keep_mask(attn_mask, True, lq, lk, query.device)
            else:
                attn_mask = additive_bias(attn_mask, True, lq, lk, query.dtype, query.device)
            is_causal = False
        args = (query, key, value)
        kwargs = dict(attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, scale=scale)
        if key.shape[1] != query.shape[1]:
            kwargs["enable_gqa"] = True  # an explicit backend without it refuses below, with torch's reason
        if self.backend == "auto":
            return AttentionOutput(F.scaled_dot_product_attention(*args, **kwargs), None)
        with warnings.catch_warnings(record=True) as caught, sdpa_kernel([BACKENDS[self.backend]]):
            warnings.simplefilter("always")
            try:
                out = F.scaled_dot_product_attention(*args, **kwargs)
            except RuntimeError as err:
                if "No viable backend" not in str(err) and "No available kernel" not in str(err):
                    raise
                reasons = [str(w.message) for w in caught] or [str(err).splitlines()[0]]
                raise NotSupportedError(f"sdpa[{self.backend}]", reasons) from err
        return AttentionOutput(out, None)
