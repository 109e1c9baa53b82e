"""``local`` (sliding, local-m, local-p) against dense float64 oracles written plainly here."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from attention import NotSupportedError
from attention.local import LocalAttention
from attention.reference import ReferenceAttention

from ._kit import (
    B,
    D,
    assert_close_with_grads,
    banded_peaks,
    dropout_outputs,
    probe_grads,
    qkv,
    user_mask,
    with_pattern,
)

# isort: split
from ._kit import small_blocks  # noqa: F401  (autouse fixture: pytest collects it from this module)

REF = ReferenceAttention()
SHAPES = [(13, 13), (13, 17), (17, 9)]
# local-p without the Gaussian gives its predictor no gradient: unused inputs get zeros
grads = partial(probe_grads, allow_unused=True)


def window_keep(mode: str, lq: int, lk: int, window: int) -> torch.Tensor:
    """(Lq, Lk) bool: the window, restated with loops."""
    keep = torch.zeros(lq, lk, dtype=torch.bool)
    for i in range(lq):
        centre = i if mode == "sliding" else min(i, lk - 1)
        for j in range(lk):
            keep[i, j] = abs(j - centre) <= window
    return keep


@pytest.mark.parametrize("lq,lk", [*SHAPES, (1, 9), (131, 140)])  # a decoder step; two query blocks
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
    torch.testing.assert_close(weights, ref_weights)
    assert_close_with_grads(out, ref_out, (q, k, v), grads, finite=True)


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
    torch.testing.assert_close(weights, ref_weights)
    assert (weights.sum(-1) < 1).any()  # the Gaussian breaks normalisation, as in Luong
    assert_close_with_grads(out, ref_out, (q, k, v), grads)


def local_p_oracle(attn: LocalAttention, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                   mask: torch.Tensor | None, gaussian: bool, *, causal: bool = False
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    lk, w = k.shape[-2], attn.window
    span = torch.tensor(float(lk)) if mask is None or causal else (  # S: one past each row's last allowed key
        (mask.expand(*q.shape[:-1], lk) * torch.arange(1, lk + 1)).amax(-1).to(q.dtype))
    centre = span * torch.sigmoid(torch.tanh(q @ attn.w_p.weight.T) @ attn.v_p.weight.T)[..., 0]  # (B, H, Lq)
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
                                    torch.ones(17, 17, dtype=torch.bool).tril(), True, causal=True)
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
    assert_close_with_grads(out, ref_out, (q, k, v), grads)


def test_dropout_is_unbiased_on_window_weights() -> None:
    torch.manual_seed(0)
    clean, runs = dropout_outputs(LocalAttention(window=2))
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


@pytest.mark.parametrize("grad,fraction", [(False, 1 / 8), (True, 1 / 3)])
def test_memory_grows_linearly_and_never_forms_lq_by_lk(monkeypatch: pytest.MonkeyPatch, grad: bool,
                                                        fraction: float) -> None:
    peaks = banded_peaks(monkeypatch, lambda q, k, v: LocalAttention()(q, k, v, is_causal=True), grad=grad)
    scores_bytes = 4 * 2 * 2048 ** 2  # one float32 (B, H, L, L) score tensor; reference keeps several
    assert peaks[2048] < scores_bytes * fraction
    assert peaks[2048] < 2.5 * peaks[1024]
