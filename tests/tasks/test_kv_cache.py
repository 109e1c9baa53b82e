"""The translation Transformer's key/value cache: decoding with it equals re-running the prefix."""

from __future__ import annotations

import pytest
import torch

import attention
from tasks._text import PAD_ID
from tasks.decoding import beam_search, greedy
from tasks.translation.transformer import TransformerSeq2Seq

VARIANTS = [n for n, c in attention.REGISTRY.items() if issubclass(c, attention.DenseAttention)
            and "cpu" in c.capabilities.devices and n != "linformer"]  # linformer: no causal form
KWARGS = {"local": {"window": 2}, "sparse": {"window": 2}, "hard": {"mode": "topk", "k": 2}}


def _pair(variant: str, layers: int = 2):
    torch.manual_seed(0)
    sizes = {"src_vocab": 12, "tgt_vocab": 11, "dim": 16, "heads": 2, "layers": layers, "ff_dim": 16,
             "dropout": 0.0, "attn_dropout": 0.0, "variant": variant, "variant_kwargs": KWARGS.get(variant),
             "max_src_len": 6, "max_tgt_len": 9}
    cached = TransformerSeq2Seq(**sizes).eval()
    plain = TransformerSeq2Seq(**sizes, kv_cache=False).eval()
    plain.load_state_dict(cached.state_dict())
    return cached, plain


def _source() -> torch.Tensor:
    src = torch.randint(4, 12, (3, 6), generator=torch.Generator().manual_seed(1))
    src[1, -2:] = PAD_ID
    return src


@pytest.mark.parametrize("variant", VARIANTS)
def test_cached_steps_equal_recomputing_the_prefix(variant: str) -> None:
    cached, plain = _pair(variant)
    decodes = attention.REGISTRY[variant].capabilities.decode
    assert cached.cached == decodes and not plain.cached
    assert (cached.decoding == "kv-cache") if decodes else ("by the query's position" in cached.decoding)
    src = _source()
    with torch.no_grad():
        memory = cached.encode(src)
        a, b = cached.init_state(memory), plain.init_state(memory)
        tokens = torch.tensor([1, 1, 1])
        weights = attention.REGISTRY[variant].capabilities.weights
        for step in range(7):
            la, a, wa = cached.step(memory, a, tokens, need_weights=weights)
            lb, b, wb = plain.step(memory, b, tokens, need_weights=weights)
            torch.testing.assert_close(la, lb, atol=1e-5, rtol=1e-4, msg=lambda m, s=step: f"step {s}: {m}")
            if wa is not None:
                torch.testing.assert_close(wa, wb, atol=1e-5, rtol=1e-4)
            tokens = torch.randint(4, 11, (3,), generator=torch.Generator().manual_seed(step))
    ga, _ = greedy(cached, cached.encode(src), 8)
    gb, _ = greedy(plain, plain.encode(src), 8)
    assert torch.equal(ga, gb)
    kwargs = {"beam_size": 3, "length_penalty": 0.6, "length_norm": "gnmt", "stop": "all"}
    assert torch.equal(beam_search(cached, cached.encode(src), 8, **kwargs),
                       beam_search(plain, plain.encode(src), 8, **kwargs))


def test_the_cache_holds_one_projected_key_and_value_per_position_and_block() -> None:
    cached, _ = _pair("sdpa", layers=2)
    with torch.no_grad():
        memory = cached.encode(_source())
        state = cached.init_state(memory)
        assert state["0.cross_k"].shape == (3, 2, 6, 8) and state["1.self_k"].shape == (3, 2, 0, 8)
        for _ in range(4):
            _, state, _ = cached.step(memory, state, torch.tensor([1, 1, 1]))
    assert state["0.self_k"].shape == state["1.self_v"].shape == (3, 2, 4, 8)
