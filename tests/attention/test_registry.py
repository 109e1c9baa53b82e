"""The registry and the shared input checks: clear errors naming the argument."""

from __future__ import annotations

import importlib

import pytest
import torch

import attention
from attention import DenseAttention


def test_variants_lists_the_registry() -> None:
    assert attention.VARIANTS == tuple(attention.REGISTRY)
    expected = {"reference", "sdpa", "xformers", "additive", "luong", "local", "sparse", "linformer",
                "performer", "linear", "memory", "hard", "uniform", "gat", "gatv2", "dot"}
    assert expected <= set(attention.VARIANTS)


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError) as err:
        attention.build("flashy")
    assert "'flashy'" in str(err.value) and "reference" in str(err.value)


@pytest.mark.parametrize("name", attention.VARIANTS)
def test_capabilities_are_declared(name: str) -> None:
    cls = attention.REGISTRY[name]
    caps = cls.capabilities
    assert cls.name == name
    assert caps.masks <= attention.ALL_MASKS and caps.devices <= {"cpu", "cuda"}
    doc = (importlib.import_module(cls.__module__).__doc__ or "") + (cls.__doc__ or "")
    for section in ("Paper", "Args:", "Shapes:"):  # one file a paper: its citation, arguments, shapes
        assert section in doc, f"{name}: the docstring of {cls.__module__} has no {section!r} section"
    if issubclass(cls, DenseAttention):
        assert caps.needs <= attention.CONTEXT_KEYS


def _qkv(**shapes):
    base = {"query": (2, 2, 4, 8), "key": (2, 2, 5, 8), "value": (2, 2, 5, 8)}
    base.update(shapes)
    return [torch.randn(*base[n]) for n in ("query", "key", "value")]


@pytest.mark.parametrize(("shapes", "match"), [
    ({"query": (2, 4, 8)}, "query must have shape"),
    ({"key": (2, 2, 5, 6)}, "key must have shape"),
    ({"value": (2, 2, 6, 8)}, "value must have shape"),
    ({"key": (3, 2, 5, 8), "value": (3, 2, 5, 8)}, "key must have shape"),
])
def test_wrong_shapes_name_the_argument(shapes: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        attention.build("reference")(*_qkv(**shapes))


def test_wrong_mask_dtype_dropout_scale() -> None:
    q, k, v = _qkv()
    ref = attention.build("reference")
    with pytest.raises(ValueError, match="attn_mask shape"):
        ref(q, k, v, torch.ones(4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="attn_mask must be bool"):
        ref(q, k, v, torch.ones(4, 5, dtype=torch.int64))
    with pytest.raises(ValueError, match="dtypes differ"):
        ref(q, k.double(), v)
    with pytest.raises(ValueError, match="dropout_p"):
        ref(q, k, v, dropout_p=1.5)
    with pytest.raises(ValueError, match="scale"):
        ref(q, k, v, scale=-1.0)
    with pytest.raises(ValueError, match="floating"):
        ref(q.long(), k, v)


def test_dropout_is_unbiased_and_only_when_asked() -> None:
    torch.manual_seed(0)
    q, k, v = (t.double() for t in _qkv())
    ref = attention.build("reference")
    clean = ref(q, k, v).output
    dropped = torch.stack([ref(q, k, v, dropout_p=0.5).output for _ in range(3000)])
    assert not torch.allclose(dropped[0], clean)
    torch.testing.assert_close(dropped.mean(0), clean, atol=0.08, rtol=0)
