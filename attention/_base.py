"""The attention interface: capabilities as data, one dense signature, readable refusals.

Every dense variant takes ``(B, H, L, D)`` tensors like
``torch.nn.functional.scaled_dot_product_attention`` and returns ``AttentionOutput(output,
weights)``. What a variant can do is declared once, in its ``capabilities``; the shared
:func:`capability_reasons` turns a request into readable "not supported because" lines, and
:meth:`DenseAttention.forward` raises :class:`NotSupportedError` with them. Nothing ever falls
back to another kernel.

Grouped-query attention (Ainslie et al. 2023; multi-query: Shazeer 2019): keys and values may have
Hkv heads for H query heads (H a multiple of Hkv), query head h reading key/value head h // (H /
Hkv), as SDPA's ``enable_gqa`` does, where a variant declares ``capabilities.gqa``; others refuse
such a request with the reason.

Mask convention (the SDPA one): a boolean ``attn_mask`` is True where a query may attend a key;
a floating mask is added to the scores. Masks broadcast to ``(B, H, Lq, Lk)``. ``is_causal`` may
be combined with a mask (both apply); causal is top-left aligned as in torch (query i sees keys
j <= i). A query row with no key left to attend yields zeros (output and weights), never NaN.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

import torch
from torch import Tensor, nn

FLOAT_DTYPES = frozenset({torch.float16, torch.bfloat16, torch.float32, torch.float64})
ALL_MASKS = frozenset({"key_padding", "boolean", "additive"})
CONTEXT_KEYS = frozenset({"head_dim", "num_heads", "max_len"})


class NotSupportedError(RuntimeError):
    """An explicit request that a variant cannot serve; ``reasons`` says why, line by line."""

    def __init__(self, variant: str, reasons: list[str]) -> None:
        self.variant = variant
        self.reasons = list(reasons)
        lines = "\n".join(f"  - {r}" for r in self.reasons)
        super().__init__(f"attention variant '{variant}' cannot run this request because:\n{lines}")


class AttentionOutput(NamedTuple):
    output: Tensor  # (B, H, Lq, Dv) for dense, (N, H * C) or (N, C) for graph
    weights: Tensor | None  # (B, H, Lq, Lk) for dense, (E, H) for graph; None unless asked


@dataclass(frozen=True)
class Capabilities:
    """What a variant supports, as data. Tests, the CLI table and refusals all read this."""

    devices: frozenset[str] = frozenset({"cpu", "cuda"})
    dtypes: frozenset[torch.dtype] = FLOAT_DTYPES
    masks: frozenset[str] = ALL_MASKS  # subset of ALL_MASKS; "boolean" implies "key_padding"
    causal: bool = True
    cross: bool = True  # Lq may differ from Lk
    dropout: bool = True
    weights: bool = True  # can return the attention weights
    exact: bool = True  # computes softmax(QK^T * scale) V itself (the oracle's math)
    gqa: bool = False  # keys / values may have fewer heads than the queries (grouped-query attention)
    # a decoder may call it one new query at a time over its cached keys (a query's output depends on
    # the keys it sees, not on its position): False for windows and patterns placed by position
    decode: bool = True
    needs: frozenset[str] = frozenset()  # build-time context (subset of CONTEXT_KEYS)
    head_dims: tuple[int, int] | None = None  # inclusive (min, max) head dim, None = any
    notes: tuple[str, ...] = field(default=())


class LimitCase(NamedTuple):
    """Where an approximate variant computes the oracle exactly (its tests are generated from it).

    ``kwargs(lq, lk, head_dim)`` returns the constructor keyword arguments of the limit case
    for that shape (for example a window covering the sequence, or rank = Lk).
    """

    kwargs: Callable[[int, int, int], dict]
    masks: frozenset[str]  # mask kinds for which the limit holds
    causal: bool
    description: str


def mask_kind(attn_mask: Tensor | None) -> str:
    """Classify a mask: 'none', 'key_padding' (bool, one row for all queries), 'boolean', 'additive'."""
    if attn_mask is None:
        return "none"
    if attn_mask.dtype == torch.bool:
        return "key_padding" if attn_mask.dim() >= 2 and attn_mask.shape[-2] == 1 else "boolean"
    return "additive"


def capability_reasons(
    name: str,
    caps: Capabilities,
    query: Tensor,
    key: Tensor,
    attn_mask: Tensor | None,
    *,
    is_causal: bool,
    dropout_p: float,
    need_weights: bool,
) -> list[str]:
    """Readable reasons why ``caps`` cannot serve this request (empty list: it can)."""
    reasons = []
    if query.device.type not in caps.devices:
        reasons.append(f"device={query.device.type} (supported: {sorted(caps.devices)})")
    if query.dtype not in caps.dtypes:
        names = sorted(str(d).removeprefix("torch.") for d in caps.dtypes)
        reasons.append(f"dtype={str(query.dtype).removeprefix('torch.')} (supported: {names})")
    kind = mask_kind(attn_mask)
    allowed = caps.masks | ({"key_padding"} if "boolean" in caps.masks else set())
    if kind != "none" and kind not in allowed:
        reasons.append(f"attn_mask kind '{kind}' (supported: {sorted(allowed) or 'none'})")
    if is_causal and not caps.causal:
        reasons.append(f"{name} has no causal form")
    if key.shape[1] != query.shape[1] and not caps.gqa:
        reasons.append(f"grouped-query request: {query.shape[1]} query heads over {key.shape[1]} key/value "
                       f"heads ({name} needs one key/value head per query head; repeat them first, as "
                       "MultiHeadAttention(num_kv_heads=...) does)")
    if query.shape[-2] != key.shape[-2] and not caps.cross:
        reasons.append(f"Lq={query.shape[-2]} != Lk={key.shape[-2]} (self-attention only)")
    if dropout_p > 0 and not caps.dropout:
        reasons.append(f"dropout_p={dropout_p} (no attention-weight dropout: weights never formed)")
    if need_weights and not caps.weights:
        reasons.append("need_weights=True (this variant does not form the attention weights)")
    if caps.head_dims is not None:
        lo, hi = caps.head_dims
        if not lo <= query.shape[-1] <= hi:
            reasons.append(f"head dim {query.shape[-1]} outside [{lo}, {hi}]")
    return reasons


def check_dense_inputs(
    query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None, dropout_p: float,
    scale: float | None,
) -> None:
    """Raise ValueError naming the argument when shapes, dtypes or devices do not fit."""
    for arg, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise ValueError(f"{arg} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 4:
            raise ValueError(f"{arg} must have shape (B, H, L, D), got {tuple(t.shape)}")
        if not t.is_floating_point():
            raise ValueError(f"{arg} must be a floating tensor, got dtype {t.dtype}")
    b, h, _, d = query.shape
    if key.shape[0] != b or key.shape[-1] != d or not 1 <= key.shape[1] <= h or h % key.shape[1]:
        raise ValueError(f"key must have shape ({b}, Hkv, Lk, {d}) with the {h} query heads a multiple of "
                         f"Hkv (Hkv = {h} without grouped-query attention), got {tuple(key.shape)}")
    if value.shape[:3] != key.shape[:3]:
        raise ValueError(
            f"value must have shape {tuple(key.shape[:3])} + (Dv,) to match key, got {tuple(value.shape)}"
        )
    if key.dtype != query.dtype or value.dtype != query.dtype:
        raise ValueError(f"query, key, value dtypes differ: {query.dtype}, {key.dtype}, {value.dtype}")
    if key.device != query.device or value.device != query.device:
        raise ValueError(f"query, key, value devices differ: {query.device}, {key.device}, {value.device}")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"dropout_p must be in [0, 1), got {dropout_p}")
    if scale is not None and not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive finite number or None, got {scale}")
    if attn_mask is not None:
        _check_mask(attn_mask, query, key)


def _check_mask(attn_mask: Tensor, query: Tensor, key: Tensor) -> None:
    target = (query.shape[0], query.shape[1], query.shape[2], key.shape[2])
    if not isinstance(attn_mask, Tensor):
        raise ValueError(f"attn_mask must be a Tensor or None, got {type(attn_mask).__name__}")
    if attn_mask.dtype != torch.bool and attn_mask.dtype != query.dtype:
        raise ValueError(f"attn_mask must be bool or {query.dtype} (additive), got {attn_mask.dtype}")
    if attn_mask.device != query.device:
        raise ValueError(f"attn_mask is on {attn_mask.device}, query on {query.device}")
    try:
        torch.broadcast_shapes(attn_mask.shape, target)
        ok = attn_mask.dim() <= 4
    except RuntimeError:
        ok = False
    if not ok:
        raise ValueError(
            f"attn_mask shape {tuple(attn_mask.shape)} does not broadcast to (B, H, Lq, Lk) = {target}"
        )


class DenseAttention(nn.Module, ABC):
    """Base class of dense variants: validates, refuses with reasons, then calls ``_attend``."""

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    limit_case: ClassVar[LimitCase | None] = None  # set by approximate variants

    def covers_every_key(self, lq: int, lk: int) -> bool:
        """Whether, with its configuration, every call of up to ``lq`` queries over up to ``lk`` keys
        lets each query see every key (with plain softmax weights): it then computes ``reference``
        exactly, and a comparison at those lengths measures nothing of its own. False unless a variant
        knows better (window and pattern variants)."""
        return False

    def forward(
        self,
        query: Tensor,  # (B, H, Lq, D)
        key: Tensor,  # (B, H, Lk, D)
        value: Tensor,  # (B, H, Lk, Dv)
        attn_mask: Tensor | None = None,
        *,
        is_causal: bool = False,
        dropout_p: float = 0.0,
        scale: float | None = None,
        need_weights: bool = False,
    ) -> AttentionOutput:
        check_dense_inputs(query, key, value, attn_mask, dropout_p, scale)
        reasons = self.not_supported_reasons(
            query, key, attn_mask, is_causal=is_causal, dropout_p=dropout_p, need_weights=need_weights
        )
        if reasons:
            raise NotSupportedError(self.name, reasons)
        scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
        return self._attend(
            query, key, value, attn_mask,
            is_causal=is_causal, dropout_p=dropout_p, scale=scale, need_weights=need_weights,
        )

    def not_supported_reasons(
        self,
        query: Tensor,
        key: Tensor,
        attn_mask: Tensor | None = None,
        *,
        is_causal: bool = False,
        dropout_p: float = 0.0,
        need_weights: bool = False,
    ) -> list[str]:
        """Why this request cannot run here (capabilities first, then the variant's own checks)."""
        reasons = capability_reasons(
            self.name, self.capabilities, query, key, attn_mask,
            is_causal=is_causal, dropout_p=dropout_p, need_weights=need_weights,
        )
        return reasons + self._extra_reasons(query, key, attn_mask, is_causal=is_causal)

    def _extra_reasons(
        self, query: Tensor, key: Tensor, attn_mask: Tensor | None, *, is_causal: bool
    ) -> list[str]:
        return []

    @abstractmethod
    def _attend(
        self, query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None, *,
        is_causal: bool, dropout_p: float, scale: float, need_weights: bool,
    ) -> AttentionOutput:
        """The variant's computation; inputs are already validated and ``scale`` resolved."""


def require_positive_int(arg: str, value: object, *, minimum: int = 1) -> int:
    """Constructor helper: a clear ValueError for a bad integer argument."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{arg} must be an integer >= {minimum}, got {value!r}")
    return value


def require_choice(arg: str, value: object, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{arg} must be one of {list(choices)}, got {value!r}")
    return value  # type: ignore[return-value]
