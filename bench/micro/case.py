"""One case of ``attnbench micro``: refused, checked, measured and timed, as one record row.

For every case (variant x dtype x length x pass x causal x mask) ``run_case``

1. refuses what the variant's capabilities refuse (an ``unsupported`` row with the reasons);
2. checks it against the oracle before timing (``incorrect`` rows are not timed): an exact
   variant against float64 ``reference`` at the case's shape (or at ``check_max_len`` for long
   cases); an approximate one at its declared limit case against the oracle, and as configured
   against its own float64 copy (so a kernel that breaks in low precision is caught);
3. measures the peak memory of one call (``bench.micro.memory``), which is also the warm-up;
4. times it with ``torch.utils.benchmark.Timer.blocked_autorange`` (median and IQR);
5. returns the row, never raising for a failure of the case itself: running out of memory is an
   ``oom`` row, any other failure an ``error`` row with its message. ``bench.micro.run`` appends
   it, with its environment, to the record CSV and goes on.

The dense FLOP count and the device peaks behind the derived columns (``flops``, ``utilisation``)
are part of the record schema (``reports.records``), so writers and readers share one definition.

``torch_sdpa_raw`` is a control row: ``F.scaled_dot_product_attention`` called directly, to
measure what our interface adds to ``sdpa``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch.utils.benchmark import Timer

import attention
from reports.records import attention_flops, environment, utilisation

from .memory import measure_peak, out_of_memory

RAW_SDPA = "torch_sdpa_raw"
DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32,
          "float64": torch.float64}
PASSES = ("forward", "backward")
MASKS = ("none", "key_padding")
CHECK_TOLERANCE = {"float64": 1e-8, "float32": 5e-4, "bfloat16": 6e-2, "float16": 1e-2}


@dataclass(frozen=True)
class VariantSpec:
    name: str
    kwargs: dict = field(default_factory=dict)
    lengths: tuple[int, ...] | None = None  # overrides the grid's lengths (slow variants)

    @property
    def label(self) -> str:
        args = ",".join(f"{k}={v}" for k, v in sorted(self.kwargs.items()))
        return f"{self.name}[{args}]" if args else self.name


@dataclass(frozen=True)
class Case:
    spec: VariantSpec
    device: str
    dtype: str
    batch: int
    heads: int
    head_dim: int
    lq: int
    lk: int
    pass_: str
    causal: bool
    mask: str

    @property
    def id(self) -> str:
        return (f"{self.spec.label}|{self.device}|{self.dtype}|B{self.batch}H{self.heads}D{self.head_dim}"
                f"|q{self.lq}k{self.lk}|{self.pass_}|{'causal' if self.causal else 'full'}|{self.mask}")


def build_variant(spec: VariantSpec, case: Case, kwargs: dict | None = None) -> torch.nn.Module | None:
    """The module for a case (None for the raw-SDPA control), in eval mode on the case's device."""
    if spec.name == RAW_SDPA:
        return None
    kwargs = dict(spec.kwargs if kwargs is None else kwargs)
    context = {"head_dim": case.head_dim, "num_heads": case.heads, "max_len": case.lk}
    context.update({key: kwargs.pop(key) for key in list(kwargs) if key in context})
    module = attention.build_in_context(spec.name, **context, **kwargs)
    return module.to(case.device).eval()


def make_inputs(case: Case, lq: int, lk: int, dtype: torch.dtype, *, grad: bool = False):
    """q, k, v and the mask of a case, reproducible (seeded) at any size."""
    gen = torch.Generator().manual_seed(0)
    shapes = ((case.batch, case.heads, lq, case.head_dim), (case.batch, case.heads, lk, case.head_dim),
              (case.batch, case.heads, lk, case.head_dim))
    q, k, v = (torch.randn(s, generator=gen).to(case.device, dtype).requires_grad_(grad) for s in shapes)
    mask = None
    if case.mask == "key_padding":  # the last tenth of every sequence is padding
        mask = torch.ones(case.batch, 1, 1, lk, dtype=torch.bool, device=case.device)
        mask[..., lk - max(lk // 10, 1):] = False
    return q, k, v, mask


def _call(module: torch.nn.Module | None, q, k, v, mask, causal: bool) -> torch.Tensor:
    if module is None:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
    return module(q, k, v, mask, is_causal=causal).output


def unsupported_reasons(module: torch.nn.Module | None, case: Case, q, k, mask) -> list[str]:
    if module is None:
        return [] if not (mask is not None and case.causal) else ["torch SDPA takes a mask or is_causal"]
    return module.not_supported_reasons(q, k, mask, is_causal=case.causal)


def correctness(case: Case, module: torch.nn.Module | None, check_max_len: int) -> tuple[bool, float, str]:
    """(passed, max abs error, how) at the case's shape, or a reduced one for long cases."""
    lq, lk = min(case.lq, check_max_len), min(case.lk, check_max_len)
    dtype = DTYPES[case.dtype]
    tol = CHECK_TOLERANCE[case.dtype]
    q, k, v, mask = make_inputs(case, lq, lk, dtype)
    q64, k64, v64 = (t.double() for t in (q, k, v))
    cls = attention.REGISTRY.get(case.spec.name)
    with torch.no_grad():
        if module is None or cls.capabilities.exact:
            got = _call(_resized(module, case, lk), q, k, v, mask, case.causal).double()
            want = _call(attention.build("reference"), q64, k64, v64, mask, case.causal)
            return _verdict(got, want, tol, "oracle")
        errors = []
        limit = cls.limit_case
        if limit is not None and (case.mask in limit.masks and (limit.causal or not case.causal)):
            at_limit = build_variant(case.spec, case, limit.kwargs(lq, lk, case.head_dim)).to(dtype=dtype)
            ok, err, _ = _verdict(_call(at_limit, q, k, v, mask, case.causal).double(),
                                  _call(attention.build("reference"), q64, k64, v64, mask, case.causal),
                                  tol, "")
            errors.append(err)
            if not ok:
                return False, err, "limit case vs oracle"
        mine = _resized(module, case, lk)
        ok, err, _ = _verdict(_call(mine, q, k, v, mask, case.causal).double(),
                              _call(copy.deepcopy(mine).double(), q64, k64, v64, mask, case.causal), tol, "")
        how = ("limit case vs oracle, " if errors else "") + "as configured vs its float64 copy"
        return ok, max([err, *errors]), how


def _resized(module: torch.nn.Module | None, case: Case, lk: int) -> torch.nn.Module | None:
    """The module to check at key length ``lk``: length-bound variants are rebuilt for it."""
    if module is None or lk == case.lk or "max_len" not in module.capabilities.needs:
        return module
    rebuilt = build_variant(case.spec, case, {**case.spec.kwargs, "max_len": lk})
    return rebuilt.to(dtype=DTYPES[case.dtype])


def _verdict(got: torch.Tensor, want: torch.Tensor, tol: float, how: str) -> tuple[bool, float, str]:
    err = float((got - want).abs().max()) if got.numel() else 0.0
    scale = float(want.abs().max()) if want.numel() else 1.0
    finite = bool(torch.isfinite(got).all())
    return finite and err <= tol * max(scale, 1.0), err, how


def timed_callable(module, case: Case) -> Callable[[], object]:
    dtype = DTYPES[case.dtype]
    backward = case.pass_ == "backward"
    q, k, v, mask = make_inputs(case, case.lq, case.lk, dtype, grad=backward)
    if not backward:
        def forward() -> object:
            with torch.no_grad():
                return _call(module, q, k, v, mask, case.causal)
        return forward
    grad_out = torch.randn(case.batch, case.heads, case.lq, case.head_dim, device=case.device, dtype=dtype)

    def forward_backward() -> object:
        _call(module, q, k, v, mask, case.causal).backward(grad_out)
        return None
    return forward_backward


def run_case(case: Case, *, check_max_len: int, min_run_time: float) -> dict:
    """One record row for ``case`` (never raises for a failure of the case itself)."""
    row = base_row(case)
    try:
        module = build_variant(case.spec, case)
        module = module.to(dtype=DTYPES[case.dtype]) if module is not None else None
        q, k, _, mask = make_inputs(case, min(case.lq, 8), min(case.lk, 8), DTYPES[case.dtype])
        reasons = unsupported_reasons(module, case, q, k, mask)
        if reasons:
            return row | {"status": "unsupported", "reason": "; ".join(reasons)}
        passed, err, how = correctness(case, module, check_max_len)
        row["max_abs_err"] = err
        if not passed:
            return row | {"status": "incorrect", "reason": f"{how}: max abs error {err:.3g}"}
        fn = timed_callable(module, case)
        peak, reserved, method = measure_peak(fn, case.device)
        measurement = Timer("fn()", globals={"fn": fn}).blocked_autorange(min_run_time=min_run_time)
    except attention.NotSupportedError as err:  # a refusal at run time (a RuntimeError): all its reasons
        return row | {"status": "unsupported", "reason": "; ".join(err.reasons)}
    except Exception as err:  # a failing case is a row with its reason; the grid goes on
        if out_of_memory(err):
            return row | {"status": "oom", "reason": str(err).splitlines()[0][:300]}
        text = str(err) if isinstance(err, RuntimeError) else f"{type(err).__name__}: {err}"
        return row | {"status": "error", "reason": text.splitlines()[0][:300]}
    return row | derived(case, measurement.median, measurement.iqr, len(measurement.times), peak, reserved,
                         method, how)


def base_row(case: Case) -> dict:
    return {"case": case.id, "variant": case.spec.label, "variant_kwargs": json.dumps(case.spec.kwargs),
            "device": case.device, "dtype": case.dtype, "batch": case.batch, "heads": case.heads,
            "lq": case.lq, "lk": case.lk, "head_dim": case.head_dim, "causal": case.causal,
            "mask": case.mask, "pass": case.pass_}


def derived(case: Case, median: float, iqr: float, runs: int, peak: int, reserved: int | None, method: str,
            how: str) -> dict:
    flops = attention_flops(case.batch, case.heads, case.lq, case.lk, case.head_dim, causal=case.causal,
                            backward=case.pass_ == "backward")
    exact = case.spec.name == RAW_SDPA or attention.REGISTRY[case.spec.name].capabilities.exact
    # utilisation only for variants that do the dense work the FLOP count assumes
    used = utilisation(flops / median, environment(case.device)["env_device"], case.dtype) if exact else None
    return {"status": "ok", "reason": f"checked: {how}", "time_median_s": median, "time_iqr_s": iqr,
            "runs": runs, "peak_mem_bytes": peak, "reserved_mem_bytes": reserved, "mem_method": method,
            "flops": flops, "flops_per_s": flops / median, "utilisation": used}
