"""``covers_every_key``: a window or pattern variant that says it sees every key at some lengths
computes exactly ``reference`` there (every shorter call and mask included), and says no otherwise."""

from __future__ import annotations

import pytest
import torch

from attention import REGISTRY, DenseAttention
from attention.local import LocalAttention
from attention.reference import ReferenceAttention
from attention.sparse import SparseAttention

from ._kit import assert_close_with_grads, qkv, user_mask
from ._kit import probe_grads as grads

# isort: split
from ._kit import small_blocks  # noqa: F401  (autouse fixture: blocks smaller than the lengths)

REF = ReferenceAttention()
COVERING = [  # (variant, longest lq, longest lk): each covers every key at those lengths
    (SparseAttention(window=8), 1, 16),  # one global token: a single query (row 0) sees everything
    (SparseAttention(window=8, num_global=0), 9, 9),
    (SparseAttention(window=2, num_global=0), 3, 3),
    (SparseAttention(pattern="strided", block=4, num_summary=4), 7, 11),  # every column a summary
    (LocalAttention(window=8), 9, 9),
    (LocalAttention(window=64), 1, 9),
    (LocalAttention(mode="local-m", window=5), 6, 4),
]
NOT_COVERING = [
    (SparseAttention(window=8, num_global=0), 1, 10),
    (SparseAttention(pattern="strided", block=4, num_summary=1), 5, 5),  # 4 x 4 would be one block: full
    (LocalAttention(window=8), 1, 16),  # VQA's 16 regions, one query: keys 9..15 out of its window
    (LocalAttention(window=8), 10, 9),
    (LocalAttention(mode="local-m", window=5, gaussian=True), 2, 2),  # the Gaussian reweights
    (LocalAttention(mode="local-p", window=64, head_dim=5), 1, 2),  # its window goes where it predicts
]


def _id(x) -> str:
    return str(x) if isinstance(x, int) else repr(x)


@pytest.mark.parametrize(("attn", "lq", "lk"), COVERING, ids=_id)
@pytest.mark.parametrize("kind", ["none", "key_padding", "boolean"])
@pytest.mark.parametrize("causal", [False, True])
def test_a_covering_variant_is_reference_at_shorter_lengths(attn, lq, lk, kind, causal) -> None:
    assert attn.covers_every_key(lq, lk)
    for q_len, k_len in {(lq, lk), (max(lq - 1, 1), lk), (lq, max(lk - 2, 1))}:
        q, k, v = qkv(q_len, k_len, grad=True)
        mask = user_mask(kind, q_len, k_len)
        out = attn(q, k, v, mask, is_causal=causal).output
        want = REF(q, k, v, mask, is_causal=causal).output
        assert_close_with_grads(out, want, (q, k, v), grads, finite=True)


@pytest.mark.parametrize(("attn", "lq", "lk"), NOT_COVERING, ids=_id)
def test_a_variant_that_misses_keys_says_so_and_differs(attn, lq, lk) -> None:
    assert not attn.covers_every_key(lq, lk)
    if getattr(attn, "mode", None) == "local-p":
        return  # its prediction may happen to cover the keys; it just never promises to
    q, k, v = qkv(lq, lk)
    assert not torch.allclose(attn(q, k, v).output, REF(q, k, v).output)


@pytest.mark.parametrize("name", sorted(n for n in REGISTRY if n not in ("sparse", "local")))
def test_other_variants_never_claim_it(name) -> None:
    cls = REGISTRY[name]
    if issubclass(cls, DenseAttention):
        assert cls.covers_every_key is DenseAttention.covers_every_key
