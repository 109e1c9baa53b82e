"""The contract, generated from each variant's declared capabilities.

Every registered dense variant is run for every mask kind x shape x dtype. Where its
capabilities say it cannot serve the request, it must refuse with reasons. Where they say it
can, an exact variant must match the float64 oracle (outputs, weights, gradients); an
approximate one is built at its declared limit case and must match it there. A new variant is
tested the moment it is registered.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

import attention
from attention import NotSupportedError

from ._cases import (
    DENSE,
    DTYPES,
    MASK_KINDS,
    SHAPES,
    TOLERANCES,
    context_kwargs,
    make_mask,
    make_qkv,
    oracle,
    shape_id,
)


def _build_for_oracle(name: str, shape: tuple[int, ...]):
    """The variant as the oracle comparison needs it: as built, or at its limit case."""
    cls = attention.REGISTRY[name]
    _, _, lq, lk, d, _ = shape
    if cls.capabilities.exact:
        return attention.build(name, **context_kwargs(name, shape)), None
    return attention.build(name, **cls.limit_case.kwargs(lq, lk, d)), cls.limit_case


def _cases():
    for name, kind, shape, dtype in itertools.product(DENSE, MASK_KINDS, SHAPES, DTYPES):
        cls = attention.REGISTRY[name]
        if not cls.capabilities.exact and cls.limit_case is None:
            continue  # no oracle to compare with: test_variant_without_oracle_limit_... covers it
        marks = []
        if "cpu" not in attention.REGISTRY[name].capabilities.devices:
            marks.append(pytest.mark.cuda)
        yield pytest.param(name, kind, shape, dtype, marks=marks,
                           id=f"{name}-{kind}-{shape_id(shape)}-{str(dtype)[6:]}")


def _device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


@pytest.mark.parametrize(("name", "kind", "shape", "dtype"), list(_cases()))
def test_matches_oracle_or_refuses(name: str, kind: str, shape: tuple, dtype: torch.dtype) -> None:
    variant, limit = _build_for_oracle(name, shape)
    device = _device()
    if device not in variant.capabilities.devices:
        pytest.skip(f"{name} runs on {sorted(variant.capabilities.devices)} only; this machine has no CUDA")
    variant = variant.to(device=device, dtype=dtype).eval()
    q, k, v = (t.to(device).requires_grad_() for t in make_qkv(shape, dtype))
    mask, causal = make_mask(kind, shape, dtype)
    mask = None if mask is None else mask.to(device)
    need_weights = variant.capabilities.weights
    reasons = variant.not_supported_reasons(q, k, mask, is_causal=causal, need_weights=need_weights)
    if reasons:
        with pytest.raises(NotSupportedError) as err:
            variant(q, k, v, mask, is_causal=causal, need_weights=need_weights)
        assert err.value.reasons == reasons
        return
    mask_name = kind.replace("causal+", "").replace("causal", "none")
    if limit is not None and (mask_name not in limit.masks or (causal and not limit.causal)):
        pytest.skip(f"{name}'s limit case ({limit.description}) does not cover mask {kind!r}")
    _compare(variant, q, k, v, mask, causal, need_weights, dtype)


def _compare(variant, q, k, v, mask, causal, need_weights, dtype) -> None:
    (out_tol, grad_tol) = TOLERANCES[dtype]
    out, weights = variant(q, k, v, mask, is_causal=causal, need_weights=need_weights)
    inputs64, out64, weights64 = oracle(q.cpu(), k.cpu(), v.cpu(),
                                        None if mask is None else mask.cpu(), causal)
    assert out.dtype == dtype and out.shape == out64.shape
    torch.testing.assert_close(out.cpu().double(), out64.detach(), atol=out_tol[0], rtol=out_tol[1])
    if need_weights:
        torch.testing.assert_close(weights.cpu().double(), weights64.detach(), atol=out_tol[0],
                                   rtol=out_tol[1])
    upstream = torch.randn(out64.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    grads = torch.autograd.grad(out, (q, k, v), upstream.to(out.device, dtype))
    grads64 = torch.autograd.grad(out64, inputs64, upstream)
    for arg, g, g64 in zip("qkv", grads, grads64, strict=True):
        assert torch.isfinite(g).all(), f"non-finite gradient for {arg}"
        torch.testing.assert_close(g.cpu().double(), g64, atol=grad_tol[0], rtol=grad_tol[1],
                                   msg=lambda m, a=arg: f"gradient of {a}: {m}")


@pytest.mark.parametrize("name", DENSE)
def test_variant_without_oracle_limit_has_its_own_equation_test(name: str) -> None:
    cls = attention.REGISTRY[name]
    if cls.capabilities.exact or cls.limit_case is not None:
        return
    own = Path(__file__).with_name(f"test_{name}.py")
    assert own.exists(), f"{name} has no oracle limit, so {own.name} must test its equation"


def _default_variant(name: str, shape: tuple[int, ...]):
    variant = attention.build(name, **context_kwargs(name, shape)).double().eval()
    return None if "cpu" not in variant.capabilities.devices else variant


@pytest.mark.parametrize("kind", ["key_padding", "boolean", "additive", "causal"])
@pytest.mark.parametrize("name", DENSE)
def test_masked_keys_and_values_do_not_matter(name: str, kind: str) -> None:
    shape = SHAPES[0]
    variant = _default_variant(name, shape)
    if variant is None:
        pytest.skip(f"{name} has no CPU kernel")
    q, k, v = make_qkv(shape, torch.float64)
    mask, causal = make_mask(kind, shape, torch.float64)
    if variant.not_supported_reasons(q, k, mask, is_causal=causal):
        pytest.skip(f"{name} does not support mask kind {kind!r} (declared)")
    keep = attention._masks.keep_mask(mask, causal, shape[2], shape[3], q.device)
    keep = keep.expand(shape[0], shape[1], shape[2], shape[3])  # (B, H, Lq, Lk)
    torch.manual_seed(0)
    out = variant(q, k, v, mask, is_causal=causal).output
    checked = 0
    for i in range(shape[2]):  # per query: the keys blocked for it (causal blocks none for every query)
        blocked = ~keep[:, :, i, :, None]  # (B, H, Lk, 1)
        if not blocked.any():
            continue
        k2 = torch.where(blocked, torch.randn_like(k) * 5, k)
        v2 = torch.where(blocked, torch.randn_like(v) * 5, v)
        torch.manual_seed(0)
        out2 = variant(q, k2, v2, mask, is_causal=causal).output
        torch.testing.assert_close(out2[:, :, i], out[:, :, i], atol=1e-10, rtol=1e-9)
        checked += 1
    assert checked, f"mask kind {kind!r} blocks no key for any query at shape {shape}: nothing was tested"


@pytest.mark.parametrize("name", DENSE)
def test_fully_masked_row_gives_zeros_not_nan(name: str) -> None:
    shape = SHAPES[0]
    variant = _default_variant(name, shape)
    if variant is None:
        pytest.skip(f"{name} has no CPU kernel")
    q, k, v = (t.requires_grad_() for t in make_qkv(shape, torch.float64))
    keep = torch.ones(shape[0], 1, 1, shape[3], dtype=torch.bool)
    keep[1] = False  # every key of the second sequence is padding
    if variant.not_supported_reasons(q, k, keep):
        pytest.skip(f"{name} takes no key-padding mask (declared)")
    out = variant(q, k, v, keep).output
    grads = torch.autograd.grad(out.sum(), (q, k, v), allow_unused=True)  # uniform ignores q
    assert all(torch.isfinite(g).all() for g in grads if g is not None)
    if name == "memory":  # memory slots stay visible: the row is defined by them, not zero
        assert torch.isfinite(out).all()
    else:
        assert torch.equal(out[1], torch.zeros_like(out[1]))
