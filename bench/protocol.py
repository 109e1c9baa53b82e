"""The training protocol every variant of a task gets alike, and what the runner records about it.

- **Learning rate.** ``optim.lr`` of the preset, or the variant's own entry of ``optim.variant_lr``
  (chosen on the validation split by a shipped sweep, whose provenance ``optim.lr_provenance``
  names: study, trials, date, commit); an explicit ``--set optim.lr=...`` wins over both. The
  record says which (``protocol.lr_source``).
- **Budget.** The preset's ``trainer.max_epochs`` for every variant; the record has the steps run.
  ``optim.schedule``: ``constant`` or ``cosine`` (decay to 0 over the run), the same for all.
- **Selection.** The best-validation checkpoint on the task's monitored metric is tested.
- **Convergence** (``convergence``): a run whose validation metric still improved over its last
  20% of validations (by more than 1% of the best before them, and significantly on the
  validation items by a paired bootstrap, p < 0.05) is "not converged". The significance half
  keeps a gain of a few sentences out of 150 from reading as "still learning".
- **Degenerate cases** (``ReferenceCheck``): during the test pass, every call of an approximate
  dense variant (``capabilities.exact`` False) is compared with ``reference`` on the same inputs.
  When all match, the variant computed exactly the reference at this task's lengths (a window or a
  pattern covering every key), and the report shows it as such, not as an independent result.
- **Test items** (``items_entry``): the headline metric item by item, for bootstrap intervals and
  paired tests between variants (``reports.paired``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from torch import nn

import attention
from reports.paired import KINDS, Items, items_digest, metric_of, paired_bootstrap

WINDOW = 0.2  # the last share of validations that must not improve any more
TOLERANCE = 0.01  # relative to the best value before that window
ALPHA = 0.05  # a gain over TOLERANCE must also be significant on the validation items
MIN_VALIDATIONS = 3
ATOL, RTOL = 1e-5, 1e-4  # "computes the reference": float32 round-off of one attention call


def resolve_lr(config: dict, variant: str, overrides: dict) -> tuple[dict, dict]:
    """The config with ``optim.lr`` set for ``variant``, and the protocol entry saying where it came from."""
    optim = config["optim"]
    per_variant = optim.get("variant_lr") or {}
    if not isinstance(per_variant, dict):
        raise ValueError(f"optim.variant_lr must map variant names to learning rates, got {per_variant!r}")
    if "optim.lr" in overrides:
        source = "override (--set optim.lr)"
    elif variant in per_variant:
        optim["lr"] = float(per_variant[variant])
        provenance = optim.get("lr_provenance") or {}
        source = "sweep " + ", ".join(f"{k}={v}" for k, v in sorted(provenance.items())) if provenance \
            else "preset optim.variant_lr"
    else:
        source = "preset optim.lr"
    return config, {"lr": float(optim["lr"]), "lr_source": source,
                    "schedule": str(optim.get("schedule", "constant")),
                    "weight_decay": float(optim.get("weight_decay", 0.0)),
                    "max_epochs": config["trainer"].get("max_epochs")}


def convergence(history: Sequence[float], mode: str, items: Sequence[dict | None] | None = None) -> dict:
    """Whether a validation curve had flattened: ``{"converged": bool | None, "gain", "p", ...}``.

    ``gain`` is how much the best of the last ``WINDOW`` of validations beat the best before them
    (in the metric's better direction). Converged: gain <= TOLERANCE * |best before|, or, where
    ``items`` holds both validations' items (``TaskModule.val_items``, one entry per validation),
    a gain that the paired bootstrap over the validation items does not call significant
    (p >= ``ALPHA``): the later checkpoint is not better beyond the noise of a finite validation
    set. None: fewer than ``MIN_VALIDATIONS`` validations, too few to judge. ``val_items`` says
    whether the last validation's items reproduced its logged value (``match``), did not
    (``mismatch``: not used) or were not kept (``absent``): the tolerance alone then decides.
    """
    pairs = [(float(v), (items[i] if items is not None and i < len(items) else None))
             for i, v in enumerate(history) if v is not None and math.isfinite(float(v))]
    rule = (f"not converged when the best of the last {WINDOW:.0%} of validations beats the best "
            f"before them by more than {TOLERANCE:.0%} and, where the validation items were kept, "
            f"significantly (paired bootstrap over the validation items, p < {ALPHA:g})")
    last = _items_of(*pairs[-1]) if pairs else None
    kept = "absent" if last is None else "match" if last else "mismatch"
    base = {"validations": len(pairs), "val_items": kept, "rule": rule}
    if len(pairs) < MIN_VALIDATIONS:
        return {"converged": None, "gain": None, "p": None, **base}
    sign = 1.0 if mode == "max" else -1.0
    window = max(1, math.ceil(WINDOW * len(pairs)))
    before = max(pairs[:-window], key=lambda pair: sign * pair[0])
    after = max(pairs[-window:], key=lambda pair: sign * pair[0])
    gain = sign * (after[0] - before[0])
    p = _paired_p(after, before)
    converged = gain <= TOLERANCE * max(abs(before[0]), 1e-12) or (p is not None and p >= ALPHA)
    return {"converged": bool(converged), "gain": gain, "p": p, **base}


def _items_of(value: float, entry: dict | None) -> Items | None | bool:
    """One validation's items; None when not kept, False when they do not give its logged value."""
    if not entry or entry.get("kind") not in KINDS or not entry.get("values"):
        return None
    if not reproduces(entry, value):
        return False
    values = np.asarray(entry["values"], dtype=np.float64)
    return Items(entry["kind"], values, float(entry.get("scale", 1.0)), "")


def _paired_p(after: tuple[float, dict | None], before: tuple[float, dict | None]) -> float | None:
    """The paired bootstrap p-value of two validations' items; None unless both were kept, match
    in kind and shape, and reproduce the logged metric values."""
    runs = [_items_of(*after), _items_of(*before)]
    if not all(runs) or runs[0].kind != runs[1].kind or runs[0].values.shape != runs[1].values.shape:
        return None
    return paired_bootstrap(runs[0], runs[1]).p_two_sided


class ValidationHistory(Callback):
    """The monitored validation metric after every validation, and the module's validation items
    (``TaskModule.val_items``) where it keeps them. Kept in checkpoints, so a resumed run keeps the
    curve it had; read it before testing a checkpoint, which restores the state saved in it."""

    def __init__(self, monitor: str) -> None:
        self.monitor = monitor
        self.values: list[float] = []
        self.items: list[dict | None] = []

    def on_validation_end(self, trainer, pl_module) -> None:
        # After the module's own epoch-end hooks have logged (translation logs val/bleu there), so
        # callback_metrics holds this validation's value, as ModelCheckpoint reads it.
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is not None:
            self.values.append(float(value))
            self.items.append(pl_module.val_items() if hasattr(pl_module, "val_items") else None)

    def state_dict(self) -> dict:
        return {"values": list(self.values), "items": list(self.items)}

    def load_state_dict(self, state_dict: dict) -> None:
        self.values = list(state_dict.get("values", []))
        self.items = list(state_dict.get("items", [None] * len(self.values)))


class ReferenceCheck:
    """Compares every call of the approximate dense variants inside a model with ``reference``."""

    def __init__(self, model: nn.Module) -> None:
        self.modules = [m for m in model.modules()
                        if isinstance(m, attention.DenseAttention) and not m.capabilities.exact]
        self.calls = 0
        self.max_abs_diff = 0.0
        self.equal = True
        self._oracle = attention.ReferenceAttention()

    def _hook(self, module, args, kwargs, output) -> None:
        if not self.equal:  # one mismatch settles it: the rest of the test pass runs unchecked
            return
        kwargs = {**kwargs, "need_weights": False}
        with torch.no_grad():
            expected = self._oracle(*args, **kwargs).output
            diff = float((output.output - expected).abs().max()) if expected.numel() else 0.0
        self.calls += 1
        self.max_abs_diff = max(self.max_abs_diff, diff)
        scale = float(expected.abs().max()) if expected.numel() else 0.0
        self.equal = self.equal and diff <= ATOL + RTOL * scale

    @contextmanager
    def watching(self) -> Iterator[None]:
        handles = [m.register_forward_hook(self._hook, with_kwargs=True) for m in self.modules]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def result(self) -> dict | None:
        """``{"equal", "calls", "max_abs_diff"}``; None when the model has no approximate variant.

        ``calls`` counts the calls compared: up to and including the first mismatch, or all of them."""
        if not self.modules or not self.calls:
            return None
        return {"equal": self.equal, "calls": self.calls, "max_abs_diff": self.max_abs_diff,
                "tolerance": f"atol {ATOL:g} + rtol {RTOL:g} x max|reference|"}


def items_entry(items: dict | None, metric: str, metrics: dict[str, float]) -> dict | None:
    """The record's ``test_items``: the module's items, their digest, and whether they reproduce the
    logged ``metric`` (the report pairs only items that do)."""
    if not items or metric not in metrics:
        return None
    entry = {"metric": metric, "kind": items["kind"], "scale": items["scale"],
             "digest": items_digest(items["keys"]), "n": len(items["values"]), "values": items["values"]}
    entry["matches_metric"] = reproduces(entry, metrics[metric])
    entry["recomputed"] = metric_of(entry)
    return entry


def reproduces(entry: dict, value: float) -> bool:
    """Whether an items entry (``kind``, ``scale``, ``values``) gives the logged ``value``, to float32
    round-off of the logged metric: only such items are paired (test items in the report, validation
    items in ``convergence``)."""
    return math.isclose(metric_of(entry), value, rel_tol=1e-5, abs_tol=1e-6)
