"""sdpa: each backend either matches the oracle or refuses; never another backend under its name."""

from __future__ import annotations

import pytest
import torch

import attention

from ._cases import make_mask, make_qkv, oracle

CUDA = torch.cuda.is_available()


@pytest.mark.parametrize("backend", ["math", "flash"])
@pytest.mark.parametrize("kind", ["none", "key_padding", "boolean", "causal", "causal+key_padding"])
def test_cpu_backends_match_oracle(backend: str, kind: str) -> None:
    shape = (2, 2, 6, 6, 8, 8)
    q, k, v = make_qkv(shape, torch.float32)
    mask, causal = make_mask(kind, shape, torch.float32)
    out = attention.build("sdpa", backend=backend)(q, k, v, mask, is_causal=causal).output
    _, expected, _ = oracle(q, k, v, mask, causal)
    torch.testing.assert_close(out.double(), expected.detach(), atol=2e-5, rtol=1e-4)


@pytest.mark.skipif(CUDA, reason="checks the CPU refusal; on a GPU these backends run")
@pytest.mark.parametrize("backend", ["efficient", "cudnn"])
def test_cuda_only_backends_refuse_on_cpu(backend: str) -> None:
    q = torch.randn(1, 1, 4, 8)
    with pytest.raises(attention.NotSupportedError, match="CUDA kernel"):
        attention.build("sdpa", backend=backend)(q, q, q)


def test_unknown_backend() -> None:
    with pytest.raises(ValueError, match="backend must be one of"):
        attention.build("sdpa", backend="fastest")


@pytest.mark.cuda
@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("backend", ["math", "flash", "efficient", "cudnn"])
def test_cuda_backends_match_oracle_or_refuse(backend: str, dtype: torch.dtype) -> None:
    shape = (2, 4, 128, 96, 64, 64)
    q, k, v = (t.cuda() for t in make_qkv(shape, dtype))
    variant = attention.build("sdpa", backend=backend)
    try:
        out = variant(q, k, v, is_causal=True).output
    except attention.NotSupportedError as err:
        assert err.reasons, "a refusal must say why"
        pytest.skip(f"sdpa[{backend}] refused on this GPU: {err.reasons}")
    _, expected, _ = oracle(q.cpu(), k.cpu(), v.cpu(), None, True)
    torch.testing.assert_close(out.cpu().double(), expected.detach(), atol=2e-2, rtol=2e-2)
