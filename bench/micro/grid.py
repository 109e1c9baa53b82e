"""Micro-benchmark grids: a YAML file (``configs/bench/*.yaml``) and/or command-line overrides.

    device: cpu                     # cpu | cuda
    dtypes: [float32]
    batch: 1
    heads: 8
    head_dim: 64
    lengths: [256, 512, 1024]       # Lq; Lk = round(Lq * lk_ratio)
    lk_ratio: 1.0                   # != 1 for cross-attention shapes
    passes: [forward]               # forward | backward (forward + backward)
    causal: [false]
    masks: [none]                   # none | key_padding
    min_run_time: 0.5               # seconds per Timer.blocked_autorange
    check_max_len: 512              # correctness gate at min(L, this)
    memory_budget: 0.7              # fraction of available RAM a case may map (CPU)
    variants:                       # a name, or {name, kwargs, lengths}
      - reference
      - {name: local, kwargs: {window: 64}}
      - {name: additive, lengths: [256, 512]}
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import yaml

import attention
import configs

from .case import DTYPES, MASKS, PASSES, RAW_SDPA, Case, VariantSpec

DEFAULTS = {"device": "cpu", "dtypes": ["float32"], "batch": 1, "heads": 8, "head_dim": 64,
            "lengths": [256, 512, 1024], "lk_ratio": 1.0, "passes": ["forward"], "causal": [False],
            "masks": ["none"], "min_run_time": 0.5, "check_max_len": 512, "memory_budget": 0.7,
            "variants": ["reference", "sdpa"]}


@dataclass(frozen=True)
class Grid:
    settings: dict
    cases: list[Case]


def load_grid(path: str | None, overrides: dict | None = None) -> Grid:
    """The grid from ``path`` (a file, or a name under configs/bench/), then ``overrides``."""
    settings = dict(DEFAULTS)
    if path:
        file = Path(path) if Path(path).suffix else configs.path("bench", f"{path}.yaml")
        if not file.is_file():
            shipped = sorted(p.stem for p in configs.path("bench").glob("*.yaml"))
            raise ValueError(f"grid {path!r} not found: give a YAML file or one of {shipped}")
        loaded = yaml.safe_load(file.read_text()) or {}
        _check_keys(loaded, str(file))
        settings.update(loaded)
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    _check_keys(overrides, "command line")
    settings.update(overrides)
    _validate(settings)
    # Shape-major order: every variant at one shape is measured close together in time, so the
    # ratios between them (the figures that matter on a shared machine) see the same conditions.
    cases = sorted(_cases(settings), key=lambda c: (c.dtype, c.pass_, c.causal, c.mask, c.lq))
    return Grid(settings, cases)


def _check_keys(values: dict, where: str) -> None:
    if not isinstance(values, dict):
        raise ValueError(f"{where}: a grid must be a mapping, got {type(values).__name__}")
    unknown = set(values) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"{where}: unknown grid keys {sorted(unknown)}; valid: {sorted(DEFAULTS)}")


def _choices(settings: dict, key: str, valid) -> None:
    bad = [v for v in settings[key] if v not in valid]
    if bad or not settings[key]:
        raise ValueError(f"{key}={settings[key]!r}: expected a non-empty list from {list(valid)}")


def _validate(settings: dict) -> None:
    for key in ("dtypes", "lengths", "passes", "causal", "masks", "variants"):
        if not isinstance(settings[key], list):
            settings[key] = [settings[key]]
    _choices(settings, "dtypes", DTYPES)
    _choices(settings, "passes", PASSES)
    _choices(settings, "masks", MASKS)
    _choices(settings, "causal", (True, False))
    if settings["device"] not in ("cpu", "cuda"):
        raise ValueError(f"device={settings['device']!r}: expected 'cpu' or 'cuda'")
    for key in ("batch", "heads", "head_dim", "check_max_len"):
        if not isinstance(settings[key], int) or settings[key] < 1:
            raise ValueError(f"{key}={settings[key]!r}: expected a positive integer")
    if not settings["lengths"] or any(not isinstance(n, int) or n < 1 for n in settings["lengths"]):
        raise ValueError(f"lengths={settings['lengths']!r}: expected positive integers")
    if not 0 < float(settings["memory_budget"]) <= 1:
        raise ValueError(f"memory_budget={settings['memory_budget']!r}: expected a fraction in (0, 1]")
    settings["variants"] = [_spec(v) for v in settings["variants"]]


def _spec(entry: object) -> VariantSpec:
    if isinstance(entry, str):
        entry = {"name": entry}
    if not isinstance(entry, dict) or "name" not in entry or set(entry) - {"name", "kwargs", "lengths"}:
        raise ValueError(f"variant entry {entry!r}: expected a name or {{name, kwargs, lengths}}")
    name = entry["name"]
    valid = [n for n, c in attention.REGISTRY.items() if issubclass(c, attention.DenseAttention)]
    if name != RAW_SDPA and name not in valid:
        raise ValueError(f"unknown dense variant {name!r}; valid: {', '.join([*valid, RAW_SDPA])}")
    lengths = entry.get("lengths")
    return VariantSpec(name, dict(entry.get("kwargs") or {}), tuple(lengths) if lengths else None)


def _cases(s: dict):
    for spec in s["variants"]:
        lengths = spec.lengths or s["lengths"]
        for dtype, length, pass_, causal, mask in itertools.product(
                s["dtypes"], sorted(lengths), s["passes"], s["causal"], s["masks"]):
            lk = max(1, round(length * float(s["lk_ratio"])))
            yield Case(spec, s["device"], dtype, s["batch"], s["heads"], s["head_dim"], length, lk, pass_,
                       causal, mask)
