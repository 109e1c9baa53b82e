"""additive (Bahdanau) and luong's concat score against their equation written out in float64."""

from __future__ import annotations

import pytest
import torch

import attention

from ._cases import make_mask, make_qkv


def _naive_additive(score, q, k, v, keep):
    """e_ij = v_a . tanh(W q_i + U k_j), masked softmax over j, loops over i and j."""
    b, h, lq, _ = q.shape
    lk = k.shape[2]
    w, u, va = score.query_proj.weight, score.key_proj.weight, score.v
    out = torch.zeros(b, h, lq, v.shape[-1], dtype=torch.float64)
    for bi in range(b):
        for hi in range(h):
            for i in range(lq):
                e = torch.stack([va @ torch.tanh(w @ q[bi, hi, i] + u @ k[bi, hi, j]) for j in range(lk)])
                allowed = keep[bi if keep.shape[0] > 1 else 0, 0, i if keep.shape[2] > 1 else 0]
                if allowed.any():
                    a = torch.softmax(e.masked_fill(~allowed, -torch.inf), dim=0)
                    out[bi, hi, i] = a @ v[bi, hi]
    return out


@pytest.mark.parametrize("kind", ["none", "key_padding", "boolean", "causal"])
@pytest.mark.parametrize("name", ["additive", "luong-concat"])
def test_matches_equation(name: str, kind: str) -> None:
    shape = (2, 2, 5, 7, 4, 3)
    torch.manual_seed(0)
    if name == "additive":
        variant = attention.build("additive", head_dim=4, attn_dim=6).double()
        score = variant.score
    else:
        variant = attention.build("luong", score="concat", head_dim=4, attn_dim=6).double()
        score = variant.concat
    q, k, v = (t.requires_grad_() for t in make_qkv(shape, torch.float64))
    mask, causal = make_mask(kind, shape, torch.float64)
    keep = attention._masks.keep_mask(mask, causal, 5, 7, q.device)
    keep = torch.ones(1, 1, 1, 7, dtype=torch.bool) if keep is None else keep
    keep = keep.view((1,) * (4 - keep.dim()) + tuple(keep.shape))
    out = variant(q, k, v, mask, is_causal=causal).output
    expected = _naive_additive(score, q, k, v, keep)
    torch.testing.assert_close(out, expected, atol=1e-10, rtol=1e-9)
    params = list(variant.parameters())
    grads = torch.autograd.grad(out.sum(), [q, k, v, *params])
    grads_expected = torch.autograd.grad(expected.sum(), [q, k, v, *params])
    for g, ge in zip(grads, grads_expected, strict=True):
        torch.testing.assert_close(g, ge, atol=1e-9, rtol=1e-8)


def test_query_chunking_does_not_change_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    variant = attention.build("additive", head_dim=4).double()
    q, k, v = make_qkv((1, 2, 9, 6, 4, 4), torch.float64)
    whole = variant(q, k, v).output
    monkeypatch.setattr(attention.additive, "CHUNK_ELEMENTS", 1)  # one query per chunk
    torch.testing.assert_close(variant(q, k, v).output, whole, atol=1e-12, rtol=1e-12)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="head_dim"):
        attention.build("additive", head_dim=0)
    with pytest.raises(ValueError, match="attn_dim"):
        attention.build("additive", head_dim=4, attn_dim=-1)
    q = torch.randn(1, 1, 3, 8)
    with pytest.raises(attention.NotSupportedError, match="head_dim=4"):
        attention.build("additive", head_dim=4)(q, q, q)
