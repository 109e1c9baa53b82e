"""xformers: CUDA kernels; on CPU the refusal names the device, never another kernel."""

from __future__ import annotations

import pytest
import torch

import attention
from attention.xformers_mea import probe

from ._cases import make_mask, make_qkv, oracle

CUDA = torch.cuda.is_available()


def test_cpu_request_is_refused_with_reasons() -> None:
    q = torch.randn(1, 2, 4, 8)
    with pytest.raises(attention.NotSupportedError) as err:
        attention.build("xformers")(q, q, q)
    assert any("device=cpu" in r for r in err.value.reasons)


def test_probe_reports_a_version_or_a_reason() -> None:
    ops, detail = probe()
    assert isinstance(detail, str) and detail
    assert ops is None or hasattr(ops, "memory_efficient_attention")


@pytest.mark.cuda
@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("kind", ["none", "key_padding", "additive", "causal", "causal+key_padding"])
def test_cuda_matches_oracle(kind: str, dtype: torch.dtype) -> None:
    shape = (2, 4, 37, 53, 64, 64)  # odd lengths exercise the bias alignment
    q, k, v = make_qkv(shape, dtype)
    mask, causal = make_mask(kind, shape, dtype)
    out = attention.build("xformers")(q.cuda(), k.cuda(), v.cuda(),
                                      None if mask is None else mask.cuda(), is_causal=causal).output
    _, expected, _ = oracle(q, k, v, mask, causal)
    tol = 2e-2 if dtype != torch.float32 else 1e-4
    torch.testing.assert_close(out.cpu().double(), expected.detach(), atol=tol, rtol=tol)
