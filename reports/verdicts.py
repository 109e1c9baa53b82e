"""When is a difference between two variants "significant"? The report's rules, in one place.

- **Two seeds or more each**: Welch's t-test over the seeds (``reports.stats``).
- **One seed, calibrated**: both variants have a calibrated seed noise for this configuration
  (``reports.calibration``): the one-seed difference d is weighed against the test set's noise and
  both variants' training noise, var(d) = se_boot^2 + sd_a^2 + sd_b^2, with se_boot the paired
  bootstrap's standard error over the same test items, and t = d / sqrt(var(d)) read against
  Student's t with Welch-Satterthwaite degrees of freedom from the calibration seeds (few seeds,
  heavy tails: a noise figure from three seeds is itself uncertain, and the test says so).
- **One seed, uncalibrated**: the paired bootstrap over the test items, and the difference must
  also exceed that seed's run noise, |reference - sdpa| (``REPLICATES`` compute the same
  function, so what separates them is training noise; one draw of it, so a weak floor: the
  robustness table measures how weak).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .calibration import SeedNoise
from .paired import PairedResult, paired_bootstrap, same_items
from .runs import VariantStats, compare, paired
from .stats import t_cdf, t_ppf

ALPHA = 0.05
LEVEL = 0.95
REPLICATES = ("reference", "sdpa")  # the same function by two kernels: their gap is training noise
NORMAL_DF = 1e6  # beyond this many degrees of freedom, t is read as a normal deviate


@dataclass(frozen=True)
class Difference:
    """a - b on one metric, how it was tested, and its verdict.

    ``floor`` (the uncalibrated one-seed rule) is the smallest difference the paired bootstrap may
    call significant; it is 0 for Welch's test and the calibrated one-seed test.
    """

    diff: float
    p: float
    method: str
    low: float | None = None
    high: float | None = None
    floor: float = 0.0

    @property
    def within_run_noise(self) -> bool:
        return self.p < ALPHA and abs(self.diff) <= self.floor

    @property
    def significant(self) -> bool:
        return self.p < ALPHA and not self.within_run_noise

    @property
    def sign(self) -> int:
        """+1 / -1 for a significant difference, 0 otherwise."""
        return 0 if not self.significant else 1 if self.diff > 0 else -1

    def text(self) -> str:
        interval = f" [{self.low:+.3f}, {self.high:+.3f}]" if self.low is not None else ""
        verdict = ("significant" if self.significant else
                   f"within run-to-run noise: size ≤ {self.floor:.3f}" if self.within_run_noise else
                   "not significant")
        return f"{self.diff:+.3f}{interval}, p={self.p:.2g} ({self.method}; {verdict})"


def _t_two_sided(t: float, df: float) -> float:
    if df >= NORMAL_DF:
        return math.erfc(abs(t) / math.sqrt(2.0))
    return 2.0 * t_cdf(-abs(t), df)


def calibrated(result: PairedResult, noise_a: SeedNoise, noise_b: SeedNoise, seed: int) -> Difference:
    """The one-seed test with calibrated seed noise (module docstring)."""
    var = result.se ** 2 + noise_a.sd ** 2 + noise_b.sd ** 2
    spread = noise_a.sd ** 4 / (noise_a.n - 1) + noise_b.sd ** 4 / (noise_b.n - 1)
    df = min(NORMAL_DF, var ** 2 / spread) if spread > 0 else NORMAL_DF
    sources = sorted({noise_a.source, noise_b.source})
    method = (f"seed {seed}, {result.n} items, with seed noise sd {noise_a.sd:.3g} and {noise_b.sd:.3g} "
              f"calibrated on {'; '.join(sources)}")
    if var == 0.0:
        p = 1.0 if result.diff == 0 else 0.0
        return Difference(result.diff, p, method, result.diff, result.diff)
    half = (t_ppf(0.5 + LEVEL / 2.0, df) if df < NORMAL_DF else 1.959963984540054) * math.sqrt(var)
    return Difference(result.diff, min(1.0, _t_two_sided(result.diff / math.sqrt(var), df)), method,
                      result.diff - half, result.diff + half)


def bootstrap_only(result: PairedResult, seed: int, floor: float = 0.0) -> Difference:
    """The uncalibrated one-seed test: paired bootstrap, significant only above ``floor``."""
    return Difference(result.diff, result.p_two_sided, f"paired bootstrap, seed {seed}, {result.n} items",
                      result.low, result.high, floor)


def one_seed(a: VariantStats, b: VariantStats, seed: int, floor: float = 0.0) -> Difference | None:
    """a - b on the headline metric at ``seed`` as the report judges one seed: calibrated when both
    have seed noise, else the paired bootstrap above ``floor``. None without shared test items."""
    items_a, items_b = a.items.get(seed), b.items.get(seed)
    if not same_items(items_a, items_b):
        return None
    result = paired_bootstrap(items_a, items_b)
    if a.seed_noise is not None and b.seed_noise is not None:
        return calibrated(result, a.seed_noise, b.seed_noise, seed)
    return bootstrap_only(result, seed, floor)


def replicates(stats: list[VariantStats]) -> list[VariantStats] | None:
    """The ``REPLICATES`` pair's stats (reference, sdpa), or None without both."""
    pair = [next((s for s in stats if s.variant == name), None) for name in REPLICATES]
    return None if None in pair else pair


def run_noise(stats: list[VariantStats], headline: str) -> tuple[float, int] | None:
    """|reference - sdpa| on the headline metric at their lowest shared seed, and that seed: the two
    compute the same function, so what separates them is run-to-run noise (rounding differences that
    training amplifies), which a paired bootstrap over test items does not see. None without both."""
    pair = replicates(stats)
    if pair is None:
        return None
    found = paired(*pair)
    return None if found is None else (abs(found[1].diff), found[0])


def difference(stats: VariantStats, other: VariantStats, metric: str, headline: str,
               floor: float = 0.0) -> Difference | None:
    """Welch's test when both have two seeds or more, else (headline only) the one-seed test at the
    lowest seed both ran on the same test items (``one_seed``)."""
    welch = compare(stats, other, metric)
    if welch is not None:
        return Difference(welch.diff, welch.p_two_sided, f"Welch, {stats.n} vs {other.n} seeds")
    if metric != headline:
        return None
    for seed in sorted(set(stats.items) & set(other.items)):
        found = one_seed(stats, other, seed, floor)
        if found is not None:
            return found
    return None


def calibrated_share(stats: list[VariantStats]) -> tuple[int, int]:
    """(variants with a calibrated seed noise, variants)."""
    return sum(s.seed_noise is not None for s in stats), len(stats)
