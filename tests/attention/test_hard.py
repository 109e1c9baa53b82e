"""hard: one sampled position (Gumbel straight-through), argmax in eval, and top-k."""

from __future__ import annotations

import pytest
import torch

import attention

from ._cases import make_mask, make_qkv


def _scores(q, k):
    return (q @ k.transpose(-2, -1)) / q.shape[-1] ** 0.5


def test_eval_picks_the_argmax_value() -> None:
    q, k, v = make_qkv((2, 2, 5, 7, 4, 3), torch.float64)
    out, weights = attention.build("hard").eval()(q, k, v, need_weights=True)
    idx = _scores(q, k).argmax(-1)
    torch.testing.assert_close(out, torch.gather(v, 2, idx[..., None].expand(-1, -1, -1, 3)))
    assert torch.equal(weights.sum(-1), torch.ones_like(weights.sum(-1)))


def test_training_samples_follow_the_softmax() -> None:
    torch.manual_seed(0)
    q, k, _ = make_qkv((1, 1, 1, 4, 2, 2), torch.float64)
    v = torch.eye(4, dtype=torch.float64).view(1, 1, 4, 4)  # output = one-hot of the choice
    hard = attention.build("hard").train()
    draws = 4000
    counts = sum(hard(q, k, v).output for _ in range(draws)) / draws
    expected = torch.softmax(_scores(q, k), -1)
    torch.testing.assert_close(counts, expected, atol=0.03, rtol=0)  # ~4 standard errors


def test_straight_through_gradient_is_the_softmax_gradient() -> None:
    torch.manual_seed(0)
    q, k, v = (t.requires_grad_() for t in make_qkv((1, 2, 3, 5, 4, 4), torch.float64))
    out = attention.build("hard", tau=1.0).train()(q, k, v).output
    grads = torch.autograd.grad(out.sum(), (q, k))
    soft = torch.softmax(_scores(q, k), -1) @ v
    soft_grads = torch.autograd.grad(soft.sum(), (q, k))
    for g, gs in zip(grads, soft_grads, strict=True):
        torch.testing.assert_close(g, gs)


@pytest.mark.parametrize("kind", ["key_padding", "boolean", "causal"])
def test_never_chooses_a_masked_key(kind: str) -> None:
    torch.manual_seed(0)
    shape = (2, 2, 6, 6, 4, 6)
    q, k, _ = make_qkv(shape, torch.float64)
    v = torch.eye(6, dtype=torch.float64).expand(2, 2, 6, 6)
    mask, causal = make_mask(kind, shape, torch.float64)
    keep = attention._masks.keep_mask(mask, causal, 6, 6, q.device).expand(2, 2, 6, 6)
    hard = attention.build("hard").train()
    for _ in range(50):
        chosen = hard(q, k, v, mask, is_causal=causal).output.bool()
        assert not (chosen & ~keep).any()


def test_top_k_keeps_k_positions() -> None:
    q, k, v = make_qkv((1, 2, 4, 9, 4, 4), torch.float64)
    _, weights = attention.build("hard", mode="topk", k=3)(q, k, v, need_weights=True)
    assert torch.equal((weights > 0).sum(-1), torch.full((1, 2, 4), 3))
    top = _scores(q, k).topk(3, dim=-1)
    torch.testing.assert_close(weights.gather(-1, top.indices), torch.softmax(top.values, -1))


def test_bad_arguments() -> None:
    for kwargs, arg in (({"mode": "soft"}, "mode"), ({"k": 0}, "k"), ({"tau": 0}, "tau")):
        with pytest.raises(ValueError, match=arg):
            attention.build("hard", **kwargs)
