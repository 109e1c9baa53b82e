"""``local`` (sliding, local-m, local-p) against dense float64 oracles written plainly here."""

from __future__ import annotations

import pytest
import torch
from torch.autograd.profiler import profile

import attention._banded as banded
from attention import NotSupportedError
from attention.local import LocalAttention
from attention.reference import ReferenceAttention

B, H, D = 2, 2, 8
REF = ReferenceAttention()
SHAPES = [(13, 13), (13, 17), (17, 9)]


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of 4 queries and chunks of a few blocks, so tiny lengths cross several blocks and
    chunks (and end in partial ones)."""
    monkeypatch.setattr(banded, "QUERY_BLOCK", 4)
    monkeypatch.setattr(banded, "CHUNK_ELEMENTS", 2000)


def qkv(lq: int, lk: int, *, grad: bool = False, seed: int = 0) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    shapes = ((B, H, lq, D), (B, H, lk, D), (B, H, lk, D))
    return tuple(torch.randn(s, generator=gen, dtype=torch.float64, requires_grad=grad) for s in shapes)


def window_keep(mode: str, lq: int, lk: int, window: int) -> torch.Tensor:
    """(Lq, Lk) bool: the window, restated with loops."""
    keep = torch.zeros(lq, lk, dtype=torch.bool)
    for i in range(lq):
        centre = i if mode == "sliding" else min(i, lk - 1)
        for j in range(lk):
            keep[i, j] = abs(j - centre) <= window
    return keep


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
    """The oracle's mask: the window AND the user mask (boolean), or added as -inf (additive)."""
    if mask is None or mask.dtype == torch.bool:
        return keep if mask is None else keep & mask
    return mask + torch.zeros(keep.shape, dtype=mask.dtype).masked_fill(~keep, float("-inf"))


def grads(out: torch.Tensor, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    probe = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    return torch.autograd.grad((out * probe).sum(), inputs, allow_unused=True, materialize_grads=True)


@pytest.mark.parametrize("lq,lk", SHAPES)
@pytest.mark.parametrize("mode,window", [("sliding", 0), ("sliding", 2), ("local-m", 3)])
@pytest.mark.parametrize("kind", ["none", "key_padding", "boolean", "boolean2d", "additive"])
@pytest.mark.parametrize("causal", [False, True])
def test_window_matches_masked_reference(lq: int, lk: int, mode: str, window: int, kind: str,
                                         causal: bool) -> None:
    q, k, v = qkv(lq, lk, grad=True)
    mask = user_mask(kind, lq, lk)
    attn = LocalAttention(mode=mode, window=window)
    out, weights = attn(q, k, v, mask, is_causal=causal, need_weights=True)
    ref_mask = with_pattern(mask, window_keep(mode, lq, lk, window))
    ref_out, ref_weights = REF(q, k, v, ref_mask, is_causal=causal, need_weights=True)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(weights, ref_weights)
    for got, want in zip(grads(out, (q, k, v)), grads(ref_out, (q, k, v)), strict=True):
        assert torch.isfinite(got).all()
        torch.testing.assert_close(got, want)


def gaussian_oracle(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, keep: torch.Tensor,
                    centre: torch.Tensor, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Luong's local attention, densely: softmax over the window, times the Gaussian."""
    scores = (q @ k.transpose(-2, -1)) / D ** 0.5
    scores = scores.masked_fill(~keep, float("-inf"))
    alive = keep.any(-1, keepdim=True)
    weights = torch.softmax(scores.masked_fill(~alive, 0.0), -1).masked_fill(~alive, 0.0)
    s = torch.arange(k.shape[-2], dtype=q.dtype)
    weights = weights * torch.exp(-((s - centre[..., None]) ** 2) / (2 * sigma ** 2))
    return weights @ v, weights


@pytest.mark.parametrize("lq,lk", SHAPES)
@pytest.mark.parametrize("causal", [False, True])
def test_local_m_gaussian(lq: int, lk: int, causal: bool) -> None:
    q, k, v = qkv(lq, lk, grad=True)
    out, weights = LocalAttention(mode="local-m", window=3, gaussian=True)(q, k, v, is_causal=causal,
                                                                          need_weights=True)
    keep = window_keep("local-m", lq, lk, 3)
    if causal:
        keep = keep & torch.ones(lq, lk, dtype=torch.bool).tril()
    centre = torch.arange(lq, dtype=torch.float64).clamp(max=lk - 1)
    ref_out, ref_weights = gaussian_oracle(q, k, v, keep, centre, 1.5)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(weights, ref_weights)
    assert (weights.sum(-1) < 1).any()  # the Gaussian breaks normalisation, as in Luong
    for got, want in zip(grads(out, (q, k, v)), grads(ref_out, (q, k, v)), strict=True):
        torch.testing.assert_close(got, want)


def local_p_oracle(attn: LocalAttention, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                   mask: torch.Tensor | None, gaussian: bool) -> tuple[torch.Tensor, torch.Tensor]:
    lk, w = k.shape[-2], attn.window
    centre = lk * torch.sigmoid(torch.tanh(q @ attn.w_p.weight.T) @ attn.v_p.weight.T)[..., 0]  # (B, H, Lq)
    j = torch.arange(lk)
    keep = (j - centre.detach().round()[..., None]).abs() <= w  # (B, H, Lq, Lk)
    if mask is not None:
        keep = keep & mask
    if gaussian:
        return gaussian_oracle(q, k, v, keep, centre, w / 2)
    out, weights = REF(q, k, v, keep, need_weights=True)
    return out, weights


@pytest.mark.parametrize("lq,lk", SHAPES)
@pytest.mark.parametrize("gaussian", [True, False])
def test_local_p_matches_restatement(lq: int, lk: int, gaussian: bool) -> None:
    torch.manual_seed(0)
    attn = LocalAttention(mode="local-p", window=2, gaussian=gaussian, head_dim=D, predictor_dim=5).double()
    q, k, v = qkv(lq, lk, grad=True)
    mask = user_mask("key_padding", lq, lk)
    out, weights = attn(q, k, v, mask, need_weights=True)
    ref_out, ref_weights = local_p_oracle(attn, q, k, v, mask, gaussian)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(weights, ref_weights)
    inputs = (q, k, v, attn.w_p.weight, attn.v_p.weight)
    got, want = grads(out, inputs), grads(ref_out, inputs)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w)
    assert (got[3].abs().sum() > 0) == gaussian  # W_p learns through the Gaussian only


def test_local_p_causal_and_float32() -> None:
    torch.manual_seed(0)
    attn = LocalAttention(mode="local-p", window=3, head_dim=D)
    q, k, v = (t.detach().float() for t in qkv(17, 17))
    out = attn(q, k, v, is_causal=True).output
    with torch.no_grad():
        ref_out, _ = local_p_oracle(attn.double(), q.double(), k.double(), v.double(),
                                    torch.ones(17, 17, dtype=torch.bool).tril(), True)
    torch.testing.assert_close(out, ref_out.float(), atol=1e-5, rtol=1e-4)


def test_fully_masked_rows_give_zeros_and_finite_grads() -> None:
    q, k, v = qkv(13, 5, grad=True)  # sliding, cross: queries past Lk + window have no key
    mask = torch.ones(B, 1, 1, 5, dtype=torch.bool)
    mask[1] = False  # the whole second batch row is padding
    out, weights = LocalAttention(window=2)(q, k, v, mask, need_weights=True)
    assert torch.isfinite(out).all()
    assert out[1].abs().max() == 0 and out[0, :, 7:].abs().max() == 0
    assert weights[1].abs().max() == 0
    assert all(torch.isfinite(g).all() for g in grads(out, (q, k, v)))


def test_keys_outside_the_window_do_not_matter() -> None:
    q, k, v = qkv(17, 17)
    out = LocalAttention(window=2)(q, k, v).output
    k2, v2 = k.clone(), v.clone()
    k2[..., 10:, :] += 100.0
    v2[..., 10:, :] -= 100.0
    out2 = LocalAttention(window=2)(q, k2, v2).output
    torch.testing.assert_close(out2[..., :8, :], out[..., :8, :], rtol=0, atol=0)
    assert not torch.allclose(out2[..., 8:, :], out[..., 8:, :])


@pytest.mark.parametrize("kind", ["none", "key_padding", "boolean", "additive"])
@pytest.mark.parametrize("causal", [False, True])
def test_limit_case_is_the_oracle(kind: str, causal: bool) -> None:
    lc = LocalAttention.limit_case
    assert kind in lc.masks
    q, k, v = qkv(13, 17, grad=True)
    mask = user_mask(kind, 13, 17)
    out = LocalAttention(**lc.kwargs(13, 17, D))(q, k, v, mask, is_causal=causal).output
    ref_out = REF(q, k, v, mask, is_causal=causal).output
    torch.testing.assert_close(out, ref_out)
    for got, want in zip(grads(out, (q, k, v)), grads(ref_out, (q, k, v)), strict=True):
        torch.testing.assert_close(got, want)


def test_dropout_is_unbiased_on_window_weights() -> None:
    torch.manual_seed(0)
    q, k, v = qkv(9, 9)
    attn = LocalAttention(window=2)
    clean = attn(q, k, v).output
    runs = torch.stack([attn(q, k, v, dropout_p=0.5).output for _ in range(200)])
    assert not torch.equal(runs[0], clean)
    stderr = runs.std(0) / len(runs) ** 0.5
    assert ((runs.mean(0) - clean).abs() <= 5 * stderr + 1e-12).all()


@pytest.mark.parametrize("kwargs", [
    {"mode": "global"}, {"window": -1}, {"window": 1.5}, {"window": True},
    {"mode": "sliding", "gaussian": True}, {"mode": "local-m", "gaussian": "yes"},
    {"mode": "local-m", "window": 0, "gaussian": True}, {"mode": "local-p"},
    {"mode": "local-p", "head_dim": 0}, {"mode": "sliding", "predictor_dim": 4},
    {"mode": "local-p", "head_dim": 8, "predictor_dim": 0},
])
def test_bad_arguments_raise_value_error(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        LocalAttention(**kwargs)


def test_local_p_refuses_another_head_dim() -> None:
    q, k, v = (torch.randn(1, 1, 5, 4) for _ in range(3))
    with pytest.raises(NotSupportedError, match="head_dim=8"):
        LocalAttention(mode="local-p", head_dim=8)(q, k, v)


def peak_cpu_bytes(fn) -> int:
    """Peak of the running sum of allocations minus frees recorded by torch's profiler."""
    with profile(profile_memory=True) as prof:
        fn()
    live = peak = 0
    for event in sorted(prof.function_events, key=lambda e: e.time_range.start):
        live += event.self_cpu_memory_usage
        peak = max(peak, live)
    return peak


@pytest.mark.parametrize("grad,fraction", [(False, 1 / 8), (True, 1 / 3)])
def test_memory_grows_linearly_and_never_forms_lq_by_lk(monkeypatch: pytest.MonkeyPatch, grad: bool,
                                                        fraction: float) -> None:
    # At this small L the default chunk would hold the whole call; a small chunk shows the
    # steady state that long sequences reach with the default.
    monkeypatch.setattr(banded, "QUERY_BLOCK", 128)
    monkeypatch.setattr(banded, "CHUNK_ELEMENTS", 1 << 18)
    peaks = {}
    for length in (1024, 2048):
        q, k, v = (torch.randn(1, 2, length, 16, requires_grad=grad) for _ in range(3))
        peaks[length] = peak_cpu_bytes(lambda: LocalAttention()(q, k, v, is_causal=True))  # noqa: B023
    scores_bytes = 4 * 2 * 2048 ** 2  # one float32 (B, H, L, L) score tensor; reference keeps several
    assert peaks[2048] < scores_bytes * fraction
    assert peaks[2048] < 2.5 * peaks[1024]
