"""``sparse`` (window + global tokens, strided) against the reference run with the dense pattern mask."""

from __future__ import annotations

import pytest
import torch

from attention.reference import ReferenceAttention
from attention.sparse import SparseAttention

from ._kit import B, D, assert_close_with_grads, banded_peaks, dropout_outputs, qkv, user_mask, with_pattern
from ._kit import probe_grads as grads

# isort: split
from ._kit import small_blocks  # noqa: F401  (autouse fixture: pytest collects it from this module)

REF = ReferenceAttention()
SHAPES = [(13, 13), (13, 17), (17, 9)]
PATTERNS = [
    {"pattern": "window_global", "window": 2, "num_global": 2},
    {"pattern": "window_global", "window": 0, "num_global": 0},
    {"pattern": "strided", "block": 4, "num_summary": 1},
    {"pattern": "strided", "block": 5, "num_summary": 2},
]


def naive_pattern(kwargs: dict, lq: int, lk: int) -> torch.Tensor:
    """(Lq, Lk) bool, the pattern restated with loops from the papers' definitions."""
    keep = torch.zeros(lq, lk, dtype=torch.bool)
    for i in range(lq):
        for j in range(lk):
            if kwargs["pattern"] == "window_global":
                g = kwargs["num_global"]
                keep[i, j] = abs(i - j) <= kwargs["window"] or i < g or j < g
            else:
                b, c = kwargs["block"], kwargs["num_summary"]
                keep[i, j] = i // b == j // b or j % b >= b - c
    return keep


@pytest.mark.parametrize("kwargs", PATTERNS + [{"pattern": "window_global", "window": 1, "num_global": 40}])
@pytest.mark.parametrize("lq,lk", SHAPES)
def test_pattern_mask_matches_definition(kwargs: dict, lq: int, lk: int) -> None:
    assert torch.equal(SparseAttention(**kwargs).pattern_mask(lq, lk), naive_pattern(kwargs, lq, lk))


@pytest.mark.parametrize("kwargs", PATTERNS)
@pytest.mark.parametrize("lq,lk", SHAPES)
@pytest.mark.parametrize("kind", ["none", "key_padding", "boolean", "boolean2d", "additive"])
@pytest.mark.parametrize("causal", [False, True])
def test_matches_reference_with_pattern_mask(kwargs: dict, lq: int, lk: int, kind: str, causal: bool) -> None:
    q, k, v = qkv(lq, lk, grad=True)
    mask = user_mask(kind, lq, lk)
    out, weights = SparseAttention(**kwargs)(q, k, v, mask, is_causal=causal, need_weights=True)
    ref_mask = with_pattern(mask, naive_pattern(kwargs, lq, lk))
    ref_out, ref_weights = REF(q, k, v, ref_mask, is_causal=causal, need_weights=True)
    torch.testing.assert_close(weights, ref_weights)
    assert_close_with_grads(out, ref_out, (q, k, v), grads, finite=True)


@pytest.mark.parametrize("causal", [False, True])
def test_every_row_global(causal: bool) -> None:
    q, k, v = qkv(5, 7, grad=True)
    attn = SparseAttention(window=1, num_global=9)
    out, weights = attn(q, k, v, user_mask("key_padding", 5, 7), is_causal=causal, need_weights=True)
    ref_out, ref_weights = REF(q, k, v, user_mask("key_padding", 5, 7), is_causal=causal, need_weights=True)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(weights, ref_weights)


@pytest.mark.parametrize("kwargs", PATTERNS)
def test_fully_masked_rows_give_zeros_and_finite_grads(kwargs: dict) -> None:
    q, k, v = qkv(13, 13, grad=True)
    mask = torch.ones(B, 1, 13, 13, dtype=torch.bool)
    mask[0, :, 3] = False  # query 3 of batch 0 may attend nothing
    mask[1] = False  # nothing at all in batch 1
    out, weights = SparseAttention(**kwargs)(q, k, v, mask, need_weights=True)
    assert torch.isfinite(out).all()
    assert out[0, :, 3].abs().max() == 0 and out[1].abs().max() == 0
    assert weights[0, :, 3].abs().max() == 0 and weights[1].abs().max() == 0
    assert all(torch.isfinite(g).all() for g in grads(out, (q, k, v)))


def test_keys_outside_the_pattern_do_not_matter() -> None:
    q, k, v = qkv(17, 17)
    attn = SparseAttention(pattern="strided", block=4, num_summary=1)
    out = attn(q, k, v).output
    k2, v2 = k.clone(), v.clone()
    k2[..., 4:7, :] += 100.0  # block 1 minus its summary column 7
    v2[..., 4:7, :] -= 100.0
    out2 = attn(q, k2, v2).output
    torch.testing.assert_close(out2[..., 8:, :], out[..., 8:, :], rtol=0, atol=0)
    torch.testing.assert_close(out2[..., :4, :], out[..., :4, :], rtol=0, atol=0)
    assert not torch.allclose(out2[..., 4:8, :], out[..., 4:8, :])


@pytest.mark.parametrize("limit", ["declared", "strided"])
@pytest.mark.parametrize("kind", ["none", "key_padding", "boolean", "additive"])
@pytest.mark.parametrize("causal", [False, True])
def test_limit_cases_are_the_oracle(limit: str, kind: str, causal: bool) -> None:
    lc = SparseAttention.limit_case
    assert kind in lc.masks
    kwargs = lc.kwargs(13, 17, D) if limit == "declared" else {"pattern": "strided", "block": 17}
    q, k, v = qkv(13, 17, grad=True)
    mask = user_mask(kind, 13, 17)
    out = SparseAttention(**kwargs)(q, k, v, mask, is_causal=causal).output
    ref_out = REF(q, k, v, mask, is_causal=causal).output
    assert_close_with_grads(out, ref_out, (q, k, v), grads)


@pytest.mark.parametrize("kwargs", PATTERNS[::2])
def test_dropout_is_unbiased_on_pattern_weights(kwargs: dict) -> None:
    torch.manual_seed(0)
    clean, runs = dropout_outputs(SparseAttention(**kwargs))
    assert not torch.equal(runs[0], clean)
    stderr = runs.std(0) / len(runs) ** 0.5
    assert ((runs.mean(0) - clean).abs() <= 5 * stderr + 1e-12).all()


@pytest.mark.parametrize("kwargs", [
    {"pattern": "dilated"}, {"window": -1}, {"num_global": 1.0}, {"pattern": "strided", "block": 0},
    {"pattern": "strided", "block": 4, "num_summary": 5}, {"pattern": "strided", "window": 3},
    {"pattern": "window_global", "num_summary": 2}, {"pattern": "window_global", "block": 8},
])
def test_bad_arguments_raise_value_error(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        SparseAttention(**kwargs)


@pytest.mark.parametrize("grad,fraction", [(False, 1 / 8), (True, 1 / 3)])
def test_window_global_memory_is_linear(monkeypatch: pytest.MonkeyPatch, grad: bool, fraction: float) -> None:
    peaks = banded_peaks(monkeypatch, lambda q, k, v: SparseAttention()(q, k, v), grad=grad)
    scores_bytes = 4 * 2 * 2048 ** 2  # one float32 (B, H, L, L) score tensor; reference keeps several
    assert peaks[2048] < scores_bytes * fraction
    assert peaks[2048] < 2.5 * peaks[1024]
