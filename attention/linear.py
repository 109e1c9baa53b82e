"""``linear``: linear attention with the elu + 1 feature map.

Paper: Katharopoulos et al., "Transformers are RNNs: Fast Autoregressive Transformers with
Linear Attention", ICML 2020 (eqs. 4-6 and 9-12).

    phi(x) = elu(x) + 1
    out_i = phi(q_i)^T sum_j phi(k_j) v_j^T / (phi(q_i)^T sum_j phi(k_j))

``scale`` is ignored: the paper applies phi to q and k as given and has no temperature (a
scaled q would change the feature map, not just sharpen it). Passing any ``scale`` therefore
gives the same output as ``scale=None``.

Complexity: O(B H (Lq + Lk) D Dv) time and O(B H (Lq + Lk) D + D Dv) memory; causal runs as
chunked prefix sums (see ``_kernelized``). Nothing of size Lq x Lk is formed, except for
so few queries and keys that phi(Q) phi(K)^T is the cheaper route (see ``_kernelized``).

Limits: a different similarity from softmax, hence no exact limit. Masks: key padding only
(masked keys get phi(k) = 0); causal and cross attention yes; no dropout (weights are never
formed), no weights. Half-precision inputs are computed in float32 and cast back. A query with
no kept key gives zeros.

Args:
    chunk_size: query positions per chunk of the causal prefix sums (default 128).

Shapes: query (B, H, Lq, D), key (B, H, Lk, D), value (B, H, Lk, Dv) -> (B, H, Lq, Dv).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ._base import AttentionOutput, Capabilities, DenseAttention, require_positive_int
from ._kernelized import DEFAULT_CHUNK, kernel_attention, work_dtype
from ._masks import key_padding_keep


class LinearAttention(DenseAttention):
    name = "linear"
    capabilities = Capabilities(
        masks=frozenset({"key_padding"}),
        dropout=False,
        weights=False,
        exact=False,
        notes=("elu(x) + 1 feature map; scale is ignored",),
    )
    limit_case = None

    def __init__(self, *, chunk_size: int = DEFAULT_CHUNK) -> None:
        super().__init__()
        self.chunk_size = require_positive_int("chunk_size", chunk_size)

    def extra_repr(self) -> str:
        return f"chunk_size={self.chunk_size}"

    def _attend(self, query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None, *,
                is_causal: bool, dropout_p: float, scale: float, need_weights: bool
                ) -> AttentionOutput:
        work = work_dtype(query.dtype)
        q_feat = F.elu(query.to(work)) + 1.0  # (B, H, Lq, D)
        k_feat = F.elu(key.to(work)) + 1.0  # (B, H, Lk, D)
        keep = key_padding_keep(attn_mask, query.shape[0], key.shape[-2])  # (B|1, H|1, Lk)
        out = kernel_attention(q_feat, k_feat, value.to(work), keep, is_causal=is_causal,
                               chunk_size=self.chunk_size)
        return AttentionOutput(out.to(query.dtype), None)
