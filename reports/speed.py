"""Micro-benchmark speed for the gate: ratios to a same-run reference, and their common shift.

A case's speed is ``log(time / reference's time)`` at the same shape in the same run. Between a
baseline and a current set of runs each variant configuration's ratio shifts by some amount. On a
shared machine the whole grid can shift together: another tenant's memory traffic or a slow
moment during the reference's measurement moves every ratio of a run the same way (measured
here: all variants 6-14% "slower" between two honest sets of runs). The median shift of the
variants of one grid configuration (same device, dtype, pass, masking and sizes; the reference
included, whose own shift is 0) estimates that common part, and the gate judges each variant's
shift beyond it: a variant that slows down alone stands out. The reference's own ratio is 1 by
definition; its slowdown shows as a common speed-up of all the others, which the gate reports
without judging. A change that slows most variants by the same factor is indistinguishable from
a slower machine and passes: that is the price of never using absolute times. With fewer than
``MIN_VARIANTS`` variants in a configuration the median is not a robust estimate, and the raw
shifts are judged.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

MIN_VARIANTS = 5


@dataclass(frozen=True)
class SpeedSeries:
    """One variant configuration's log ratios on the cases both sides measured, runs per case."""

    group: str
    cases: list[str]
    base: list[list[float]]
    cur: list[list[float]]

    @property
    def family(self) -> str:
        """The grid configuration without the variant (``<variant>|<rest>`` -> ``<rest>``)."""
        return self.group.split("|", 1)[1]

    @property
    def shift(self) -> float:
        deltas = [_mean(c) - _mean(b) for b, c in zip(self.base, self.cur, strict=True)]
        return math.fsum(deltas) / len(deltas)

    def ratio(self, side: str) -> float:
        """The geometric-mean time ratio to the reference over the cases, on one side."""
        runs = self.base if side == "base" else self.cur
        return math.exp(_mean([_mean(r) for r in runs]))


def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values)


def _length(case: str) -> int:
    return int(case[1:].split("k", 1)[0])  # "q1024k1024" -> 1024


def speed_series(group: str, base_runs: dict, cur_runs: dict) -> SpeedSeries | None:
    """``*_runs``: run id -> {case: log ratio}; None when no case was measured in every run."""
    runs = [*base_runs.values(), *cur_runs.values()]
    common = set.intersection(*(set(r) for r in runs)) if base_runs and cur_runs else set()
    if not common:
        return None
    cases = sorted(common, key=_length)
    return SpeedSeries(group, cases, [[r[c] for r in base_runs.values()] for c in cases],
                       [[r[c] for r in cur_runs.values()] for c in cases])


def common_shifts(series: list[SpeedSeries]) -> dict[str, float | None]:
    """Per grid configuration: the median shift of its variants, or None when it has too few."""
    families: dict[str, list[float]] = {}
    for s in series:
        families.setdefault(s.family, []).append(s.shift)
    return {family: statistics.median(shifts) if len(shifts) >= MIN_VARIANTS else None
            for family, shifts in families.items()}


def corrected(s: SpeedSeries, common: float | None) -> list[list[float]]:
    """The current log ratios with the configuration's common shift taken out."""
    return [[v - (common or 0.0) for v in runs] for runs in s.cur]
