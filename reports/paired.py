"""Significance from one seed: bootstrap intervals and paired bootstrap tests over test items.

A run records its test set item by item (``test_items`` in its record, written by the runner from
``TaskModule.test_items``): for each test example the values its headline metric is built from,

    kind "mean":  one value per item (1/0 for a correct class, a VQA accuracy in [0, 1]);
                  metric = scale * mean(values)
    kind "bleu":  BLEU's sufficient statistics per sentence, [c, r, m_1..m_N, t_1..t_N];
                  metric = corpus BLEU of their column sums (``tasks.metrics.bleu_from_stats``)

and a digest of the items' identities (their targets in order), so two runs are paired only when
they were scored on the same test items in the same order.

Per-run interval: the percentile interval of the metric over ``resamples`` bootstrap resamples
of the test items (Efron & Tibshirani 1993, ch. 13). Paired test (Koehn, EMNLP 2004): both runs
are scored on the *same* resamples; the p-value is that of the shifted-bootstrap test of "no
difference", the share of resampled differences at least as far from their mean as the observed
difference is from 0, ``(1 + #{|d* - mean(d*)| >= |d|}) / (resamples + 1)``, two-sided. Resamples
come from a fixed seed, so a report is reproducible; identical item values give p = 1.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

KINDS = ("mean", "bleu")
RESAMPLES = 1000
LEVEL = 0.95
_CHUNK = 100  # resamples scored at once (bounds memory for BLEU's per-sentence rows)


def items_digest(keys: Sequence[object]) -> str:
    """A short digest of the test items' identities, in order (JSON of each key)."""
    text = "\n".join(json.dumps(key, sort_keys=True, default=str) for key in keys)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Items:
    """One run's test items: ``values`` (n,) or (n, k), how they combine, and their digest."""

    kind: str
    values: np.ndarray
    scale: float
    digest: str

    @classmethod
    def from_record(cls, entry: dict | None) -> Items | None:
        """The record's ``test_items`` entry, or None when absent or not usable (see ``usable``)."""
        if not entry or not entry.get("matches_metric", False) or entry.get("kind") not in KINDS:
            return None
        values = np.asarray(entry["values"], dtype=np.float64)
        if values.size == 0:
            return None
        return cls(entry["kind"], values, float(entry.get("scale", 1.0)), str(entry.get("digest", "")))

    @property
    def n(self) -> int:
        return int(self.values.shape[0])

    def metric(self) -> float:
        return float(self._score(self.values[None])[0])

    def _score(self, resampled: np.ndarray) -> np.ndarray:
        """Metric of each resample: ``resampled`` is (R, n) values or (R, n, k) statistics."""
        return self._score_sums(resampled.sum(axis=1), resampled.shape[1])

    def _score_sums(self, sums: np.ndarray, n: int) -> np.ndarray:
        """Metric of each resample from its column sums: (R,) values or (R, k) statistics."""
        if self.kind == "mean":
            return self.scale * sums / n
        return bleu_rows(sums)

    def resampled(self, indices: np.ndarray) -> np.ndarray:
        """Metric on each row of item indices (R, n): each row's sums are its draw counts times the
        items (a (chunk, n) @ (n, k) product, instead of gathering R copies of the items)."""
        n = self.n
        scores = []
        for i in range(0, len(indices), _CHUNK):
            rows = indices[i:i + _CHUNK]
            flat = (rows + n * np.arange(len(rows))[:, None]).ravel()
            counts = np.bincount(flat, minlength=len(rows) * n).reshape(len(rows), n).astype(np.float64)
            scores.append(self._score_sums(counts @ self.values, n))
        return np.concatenate(scores)


def bleu_rows(sums: np.ndarray) -> np.ndarray:
    """``tasks.metrics.bleu_from_stats`` of each row of summed statistics (R, 2 + 2N), vectorised."""
    max_n = (sums.shape[1] - 2) // 2
    if max_n < 1 or sums.shape[1] != 2 + 2 * max_n:
        raise ValueError("BLEU statistics have the form [c, r, m_1..m_N, t_1..t_N], "
                         f"got {sums.shape[1]} values")
    c, r = sums[:, 0], sums[:, 1]
    matches, totals = sums[:, 2:2 + max_n], sums[:, 2 + max_n:]
    scored = (c > 0) & (matches.min(axis=1) > 0)
    safe_c = np.where(scored, c, 1.0)
    ratio = np.where(scored[:, None], matches / np.where(totals > 0, totals, 1.0), 1.0)
    brevity = np.where(c > r, 1.0, np.exp(1.0 - r / safe_c))
    return np.where(scored, 100.0 * brevity * np.exp(np.log(ratio).mean(axis=1)), 0.0)


def metric_of(entry: dict) -> float:
    """The metric a ``test_items`` entry's values give (the runner checks it against the logged one)."""
    kind = entry.get("kind")
    if kind not in KINDS:
        raise ValueError(f"test_items kind must be one of {list(KINDS)}, got {kind!r}")
    items = Items(kind, np.asarray(entry["values"], dtype=np.float64), float(entry.get("scale", 1.0)), "")
    return items.metric()


def _indices(n: int, resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


@dataclass(frozen=True)
class BootInterval:
    value: float
    low: float
    high: float

    def text(self, digits: int = 3) -> str:
        return f"{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def bootstrap_interval(items: Items, *, resamples: int = RESAMPLES, level: float = LEVEL,
                       seed: int = 0) -> BootInterval:
    """The metric with its percentile bootstrap interval over the test items."""
    scores = items.resampled(_indices(items.n, resamples, seed))
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(scores, [tail, 100.0 - tail])
    return BootInterval(items.metric(), float(low), float(high))


@dataclass(frozen=True)
class PairedResult:
    """``diff = metric(a) - metric(b)`` on the same items, its interval and two-sided p-value."""

    diff: float
    low: float
    high: float
    p_two_sided: float
    n: int
    resamples: int
    se: float = 0.0  # standard deviation of the resampled differences: the standard error of diff


_MEMO: dict[tuple, tuple[Items, Items, PairedResult]] = {}
_MEMO_SIZE = 20_000


def paired_bootstrap(a: Items, b: Items, *, resamples: int = RESAMPLES, level: float = LEVEL,
                     seed: int = 0) -> PairedResult:
    """Paired bootstrap test of a against b (module docstring). Raises ValueError unless both were
    scored on the same test items (same digest, kind and count).

    A report asks for the same pair many times (the table's cells, its findings, the robustness
    tallies); the result of a pair of ``Items`` objects is kept while both are (it is a pure function
    of their values and the arguments, and the objects are immutable)."""
    key = (id(a), id(b), resamples, level, seed)
    kept = _MEMO.get(key)
    if kept is not None and kept[0] is a and kept[1] is b:
        return kept[2]
    result = _paired_bootstrap(a, b, resamples, level, seed)
    if len(_MEMO) >= _MEMO_SIZE:
        _MEMO.clear()
    _MEMO[key] = (a, b, result)  # holding a and b keeps their ids from being reused meanwhile
    return result


def forget() -> None:
    """Drop the kept results (``build_document`` does, when a report is built)."""
    _MEMO.clear()


def _paired_bootstrap(a: Items, b: Items, resamples: int, level: float, seed: int) -> PairedResult:
    if a.kind != b.kind or a.n != b.n or a.digest != b.digest or a.values.shape != b.values.shape:
        raise ValueError(f"paired_bootstrap needs runs on the same test items, got {a.kind} x {a.n} "
                         f"({a.digest}) and {b.kind} x {b.n} ({b.digest})")
    indices = _indices(a.n, resamples, seed)
    deltas = a.resampled(indices) - b.resampled(indices)
    diff = a.metric() - b.metric()
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(deltas, [tail, 100.0 - tail])
    if diff == 0.0 and not deltas.any():
        p = 1.0
    else:
        extreme = np.abs(deltas - deltas.mean()) >= abs(diff) - 1e-12 * max(1.0, abs(diff))
        p = (1.0 + float(extreme.sum())) / (resamples + 1.0)
    se = float(deltas.std(ddof=1)) if resamples > 1 else 0.0
    return PairedResult(diff, float(low), float(high), min(1.0, p), a.n, resamples, se)


def same_items(a: Items | None, b: Items | None) -> bool:
    return (a is not None and b is not None and a.kind == b.kind and a.digest == b.digest
            and a.values.shape == b.values.shape)
