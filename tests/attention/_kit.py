"""Helpers shared by the tests of two variant families: the feature-map and low-rank variants
(linear, linformer, performer) and the banded ones on ``attention._banded`` (local, sparse)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

import attention._banded as banded

from ._cases import RecordShapes, peak_cpu_bytes

# --- feature-map and low-rank variants -------------------------------------------------------

# Requests that neither ``linear`` nor ``performer`` serves: a boolean and an additive attention
# mask, dropout, weights.
UNSUPPORTED_REQUESTS = [
    {"attn_mask": torch.ones(6, 6, dtype=torch.bool)},
    {"attn_mask": torch.zeros(2, 1, 6, 6)},
    {"dropout_p": 0.1},
    {"need_weights": True},
]
# (dtype, tolerance) of the half-precision runs against the same variant in float32
HALF_PRECISION = [(torch.float16, 1e-2), (torch.bfloat16, 5e-2)]


def inputs(lq: int, lk: int, b: int = 2, h: int = 2, d: int = 5, dv: int = 6,
           dtype: torch.dtype = torch.float64, seed: int = 0, magnitude: float = 1.0,
           grad: bool = True) -> tuple[torch.Tensor, ...]:
    """q (b, h, lq, d), k (b, h, lk, d), v (b, h, lk, dv) drawn directly in ``dtype`` (q and k times
    ``magnitude``), as leaves that require grad when ``grad``."""
    gen = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(b, h, n, e, generator=gen, dtype=dtype) for n, e in ((lq, d), (lk, d), (lk, dv)))
    return (q * magnitude).requires_grad_(grad), (k * magnitude).requires_grad_(grad), v.requires_grad_(grad)


def padding(b: int, lk: int, masked) -> torch.Tensor:
    """(B, 1, 1, Lk) key padding: batch 0 keeps everything, the others drop the positions in ``masked``."""
    keep = torch.ones(b, 1, 1, lk, dtype=torch.bool)
    keep[1:, ..., masked] = False
    return keep


def grads(out: torch.Tensor, tensors, seed: int = 1) -> tuple[torch.Tensor, ...]:
    """Gradients of ``out`` against a seeded random cotangent."""
    cotangent = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=out.dtype)
    return torch.autograd.grad(out, tensors, cotangent)


def assert_half_matches_float32(attn, q, k, v, dtype: torch.dtype, tol: float, **kwargs) -> None:
    """``attn`` on ``dtype`` copies of float32 q, k, v returns ``dtype``, within ``tol`` of its output
    on the float32 ones."""
    want = attn(q, k, v, **kwargs).output
    out = attn(q.to(dtype), k.to(dtype), v.to(dtype), **kwargs).output
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), want, rtol=tol, atol=tol)


def shapes_formed(attn, q, k, v, *, params=(), **kwargs) -> list[tuple[int, ...]]:
    """Shapes of every tensor that a forward of ``attn`` (key 3 padded in batch 1) and a backward to
    q, k, v and ``params`` produce."""
    with RecordShapes() as rec:
        out = attn(q, k, v, padding(q.shape[0], k.shape[-2], [3]), **kwargs).output
        grads(out, (q, k, v, *params))
    return rec.shapes


# --- banded variants (local, sparse) ----------------------------------------------------------

B, H, D = 2, 2, 8  # batch, heads and head (and value) dim of the banded tests' tensors


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of 4 queries and chunks of a few blocks, so tiny lengths cross several blocks and
    chunks (and end in partial ones). Autouse in the modules that import it."""
    monkeypatch.setattr(banded, "QUERY_BLOCK", 4)
    monkeypatch.setattr(banded, "CHUNK_ELEMENTS", 2000)


def qkv(lq: int, lk: int, *, grad: bool = False, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """float64 q (B, H, lq, D), k and v (B, H, lk, D)."""
    return inputs(lq, lk, b=B, h=H, d=D, dv=D, seed=seed, grad=grad)


def user_mask(kind: str, lq: int, lk: int) -> torch.Tensor | None:
    gen = torch.Generator().manual_seed(1)
    if kind == "key_padding":
        mask = torch.ones(B, 1, 1, lk, dtype=torch.bool)
        mask[0, ..., lk - 3:] = False
        mask[1, ..., :2] = False
        return mask
    if kind == "boolean":
        return torch.rand(B, 1, lq, lk, generator=gen) > 0.3
    if kind == "boolean2d":
        return torch.rand(lq, lk, generator=gen) > 0.3
    if kind == "additive":
        mask = torch.randn(B, H, lq, lk, generator=gen, dtype=torch.float64)
        return mask.masked_fill(torch.rand(B, H, lq, lk, generator=gen) > 0.7, float("-inf"))
    return None


def with_pattern(mask: torch.Tensor | None, keep: torch.Tensor) -> torch.Tensor:
    """The oracle's mask: the pattern AND the user mask (boolean), or added as -inf (additive)."""
    if mask is None or mask.dtype == torch.bool:
        return keep if mask is None else keep & mask
    return mask + torch.zeros(keep.shape, dtype=mask.dtype).masked_fill(~keep, float("-inf"))


def probe_grads(out: torch.Tensor, inputs: tuple[torch.Tensor, ...], *,
                allow_unused: bool = False) -> tuple[torch.Tensor, ...]:
    """Gradients of ``out`` against a fixed linspace probe; with ``allow_unused``, inputs that do not
    reach ``out`` get zeros instead of an error."""
    probe = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    return torch.autograd.grad((out * probe).sum(), inputs, allow_unused=allow_unused,
                               materialize_grads=allow_unused)


def assert_close_with_grads(out: torch.Tensor, want: torch.Tensor, inputs: tuple[torch.Tensor, ...], grads,
                            *, finite: bool = False) -> None:
    """``out`` and its gradients (by ``grads``) to ``inputs`` equal ``want``'s at the default
    tolerances; with ``finite``, ``out``'s gradients are also checked to be finite."""
    torch.testing.assert_close(out, want)
    for got, exp in zip(grads(out, inputs), grads(want, inputs), strict=True):
        if finite:
            assert torch.isfinite(got).all()
        torch.testing.assert_close(got, exp)


def dropout_outputs(attn, n: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    """``attn``'s output on qkv(9, 9) without dropout, and ``n`` outputs with dropout_p=0.5 stacked."""
    q, k, v = qkv(9, 9)
    clean = attn(q, k, v).output
    return clean, torch.stack([attn(q, k, v, dropout_p=0.5).output for _ in range(n)])


def banded_peaks(monkeypatch: pytest.MonkeyPatch, call: Callable[..., object], *,
                 grad: bool) -> dict[int, int]:
    """Peak profiled CPU bytes of ``call(q, k, v)`` for float32 (1, 2, L, 16) inputs at L = 1024, 2048.

    At this small L the default chunk would hold the whole call; a small chunk shows the steady
    state that long sequences reach with the default."""
    monkeypatch.setattr(banded, "QUERY_BLOCK", 128)
    monkeypatch.setattr(banded, "CHUNK_ELEMENTS", 1 << 18)
    peaks = {}
    for length in (1024, 2048):
        q, k, v = (torch.randn(1, 2, length, 16, requires_grad=grad) for _ in range(3))
        peaks[length] = peak_cpu_bytes(lambda: call(q, k, v))  # noqa: B023
    return peaks
