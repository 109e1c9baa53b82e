"""xformers: CUDA kernels; on CPU the refusal names the device, never another kernel."""

from __future__ import annotations

import importlib
import importlib.metadata

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


def test_probe_reports_the_installed_version_or_why_not() -> None:
    ops, detail = probe()
    if ops is not None:  # the version installed, as the package metadata says
        assert detail == importlib.metadata.version("xformers")
    else:
        assert detail.startswith("xformers ")
    q = torch.randn(1, 2, 4, 8)
    reasons = attention.build("xformers")._extra_reasons(q, q, None, is_causal=False)
    assert reasons == ([] if ops is not None else [detail])


def test_an_extension_that_cannot_load_is_the_refusal_reason(monkeypatch) -> None:
    def broken(name: str, *args):
        if name.startswith("xformers"):
            raise OSError("libcudart.so.12: cannot open shared object file")
        return real(name, *args)

    real = importlib.import_module
    monkeypatch.setattr(importlib, "import_module", broken)
    probe.cache_clear()
    try:
        ops, detail = probe()
        q = torch.randn(1, 2, 4, 8)
        reasons = attention.build("xformers")._extra_reasons(q, q, None, is_causal=False)
    finally:
        monkeypatch.undo()
        probe.cache_clear()
    assert ops is None and detail == ("xformers cannot be imported: OSError: libcudart.so.12: cannot open "
                                      "shared object file")
    assert reasons == [detail]


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
