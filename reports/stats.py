"""Small statistics for reports and the gate: t intervals, Welch's t-test, Pareto fronts.

scipy is not a dependency, so Student's t distribution is computed here: its CDF through the
regularised incomplete beta function ``I_x(a, b)``, evaluated by its continued fraction with the
modified Lentz method (Press et al., Numerical Recipes, section 6.4), and its quantiles by
bisection on the CDF. Degrees of freedom may be fractional (Welch-Satterthwaite).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

_TINY = 1e-300
_EPS = 1e-15


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b) (converges fast for x < (a + 1) / (a + b + 2))."""
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    result = d
    for m in range(1, 500):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            result *= c * d
        if abs(c * d - 1.0) < _EPS:
            return result
    raise ArithmeticError(f"incomplete beta continued fraction did not converge (a={a}, b={b}, x={x})")


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if a <= 0 or b <= 0 or not 0.0 <= x <= 1.0:
        raise ValueError(f"incomplete_beta needs a, b > 0 and 0 <= x <= 1, got a={a}, b={b}, x={x}")
    if x in (0.0, 1.0):
        return x
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x)
                 + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t distribution with ``df`` (> 0, may be fractional) degrees of freedom."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df}")
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    # P(T > |t|) = I_x(df/2, 1/2) / 2 with x = df / (df + t^2); near t = 0, x rounds to 1, so the
    # complement 1 - x = t^2 / (df + t^2) is passed exactly through I_x(a, b) = 1 - I_{1-x}(b, a).
    x, complement = df / (df + t * t), t * t / (df + t * t)
    if x < (df / 2.0 + 1.0) / (df / 2.0 + 2.5):
        tail = 0.5 * incomplete_beta(df / 2.0, 0.5, x)
    else:
        tail = 0.5 * (1.0 - incomplete_beta(0.5, df / 2.0, complement))
    return 1.0 - tail if t > 0 else tail


def t_ppf(p: float, df: float) -> float:
    """The quantile: the t with t_cdf(t, df) == p, by bisection (to 1e-12 relative)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"t_ppf needs 0 < p < 1, got {p}")
    low, high = -1.0, 1.0
    while t_cdf(low, df) > p:
        low *= 2.0
    while t_cdf(high, df) < p:
        high *= 2.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        if t_cdf(mid, df) < p:
            low = mid
        else:
            high = mid
        if high - low <= 1e-12 * max(1.0, abs(mid)):
            break
    return 0.5 * (low + high)


def _mean_var(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    mean = math.fsum(values) / n
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else math.nan
    return mean, var


@dataclass(frozen=True)
class Interval:
    """Mean of ``n`` values with the t-interval ``mean +- half`` (``half`` is None when n == 1)."""

    mean: float
    half: float | None
    n: int
    sd: float | None

    def text(self, digits: int = 3) -> str:
        if self.half is None:
            return f"{self.mean:.{digits}f} (n=1)"
        return f"{self.mean:.{digits}f} ± {self.half:.{digits}f}"


def mean_interval(values: Sequence[float], level: float = 0.95) -> Interval:
    """Mean and two-sided ``level`` t-interval over independent values (e.g. one per seed)."""
    if not values:
        raise ValueError("mean_interval needs at least one value")
    mean, var = _mean_var(values)
    n = len(values)
    if n == 1:
        return Interval(mean, None, 1, None)
    sd = math.sqrt(var)
    half = t_ppf(0.5 + level / 2.0, n - 1) * sd / math.sqrt(n)
    return Interval(mean, half, n, sd)


@dataclass(frozen=True)
class WelchResult:
    """``diff = mean(a) - mean(b)``, Welch's t statistic, its degrees of freedom and p-values."""

    diff: float
    t: float
    df: float
    p_two_sided: float
    p_greater: float  # one-sided: P(a's mean exceeds b's by this much if they were equal)


def welch_test(a: Sequence[float], b: Sequence[float]) -> WelchResult | None:
    """Welch's unequal-variance t-test of mean(a) vs mean(b); None unless both have >= 2 values.

    When both samples have zero variance the difference is exact: p is 0 for any non-zero
    difference and 1 for none (deterministic runs repeat exactly).
    """
    if len(a) < 2 or len(b) < 2:
        return None
    mean_a, var_a = _mean_var(a)
    mean_b, var_b = _mean_var(b)
    diff = mean_a - mean_b
    se2_a, se2_b = var_a / len(a), var_b / len(b)
    if se2_a + se2_b == 0.0:
        p = 1.0 if diff == 0 else 0.0
        return WelchResult(diff, math.copysign(math.inf, diff) if diff else 0.0, math.inf, p,
                           0.0 if diff > 0 else 1.0)
    t = diff / math.sqrt(se2_a + se2_b)
    df = (se2_a + se2_b) ** 2 / (se2_a**2 / (len(a) - 1) + se2_b**2 / (len(b) - 1))
    return WelchResult(diff, t, df, 2.0 * t_cdf(-abs(t), df), 1.0 - t_cdf(t, df))


def pareto_front(costs: Sequence[float], scores: Sequence[float], *, maximize: bool = True) -> list[bool]:
    """For each point, whether no other point has a cost as low and a score as good, one strictly."""
    sign = 1.0 if maximize else -1.0
    points = [(c, sign * s) for c, s in zip(costs, scores, strict=True)]
    return [not any(oc <= c and os >= s and (oc < c or os > s) for oc, os in points)
            for c, s in points]


@dataclass(frozen=True)
class ShiftResult:
    """A common shift of ``current`` over ``baseline`` across several cases, with its t-test."""

    shift: float  # mean over cases of (mean current - mean baseline)
    t: float
    df: float
    p_greater: float | None  # one-sided: P(a shift this large if there were none); None: no noise estimate
    p_less: float | None


def shift_test(baseline: Sequence[Sequence[float]], current: Sequence[Sequence[float]]) -> ShiftResult:
    """Test a shift common to every case: ``baseline[i]`` and ``current[i]`` are repeated runs of case i.

    The model is ``y = case effect + shift * [current] + noise`` with one noise variance, pooled
    from the spread of the runs within each case and side (a two-way layout without interaction);
    with one case it is the pooled two-sample t-test. The p-values are None when no case has two
    runs on a side, which leaves no estimate of the noise.
    """
    if len(baseline) != len(current) or not baseline:
        raise ValueError("shift_test needs the same non-empty list of cases on both sides")
    deltas, squares, df, variance_factor = [], 0.0, 0, 0.0
    for base, cur in zip(baseline, current, strict=True):
        mean_b, mean_c = math.fsum(base) / len(base), math.fsum(cur) / len(cur)
        deltas.append(mean_c - mean_b)
        squares += math.fsum((v - mean_b) ** 2 for v in base) + math.fsum((v - mean_c) ** 2 for v in cur)
        df += len(base) + len(cur) - 2
        variance_factor += 1.0 / len(base) + 1.0 / len(cur)
    shift = math.fsum(deltas) / len(deltas)
    if df == 0:
        return ShiftResult(shift, math.nan, 0, None, None)
    se = math.sqrt(squares / df * variance_factor) / len(deltas)
    if se == 0.0:
        return ShiftResult(shift, math.copysign(math.inf, shift) if shift else 0.0, df,
                           0.0 if shift > 0 else 1.0, 0.0 if shift < 0 else 1.0)
    t = shift / se
    return ShiftResult(shift, t, df, 1.0 - t_cdf(t, df), t_cdf(t, df))
