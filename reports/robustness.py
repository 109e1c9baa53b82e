"""Do one-seed verdicts survive another seed? Paired tests between every two variants, seed by seed.

For each pair of variants that ran on the same test items at several seeds, each seed is tested on
its own. A difference called significant at the first seed *holds* at a later seed when that
seed's test is significant with the same sign, *reverses* when it is significant with the opposite
sign, and is *not confirmed* otherwise.

Up to three rules are counted, so a reader sees what each one buys (``reports.verdicts``):

- the paired bootstrap alone, which sees only the sampling noise of the test items;
- the bootstrap above that seed's run noise, |reference - sdpa| (the rule for uncalibrated runs);
- as the report judges one seed: with calibrated seed noise where both variants have it, the rule
  above for the other pairs. The calibration comes from seeds of its own (``reports.calibration``),
  so on the reported seeds this is a held-out check of the test, not a restatement of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from itertools import combinations

from .document import Block, Table, Text
from .runs import VariantStats
from .verdicts import Difference, one_seed, replicates

OUTCOMES = ("holds", "not confirmed", "reverses", "not comparable")


def noise_at(stats: list[VariantStats], seed: int) -> float | None:
    """|reference - sdpa| on the headline metric at ``seed``; None without both on shared items."""
    pair = replicates(stats)
    if pair is None:
        return None
    result = one_seed(*_uncalibrated(pair), seed)
    return None if result is None else abs(result.diff)


def _uncalibrated(stats: list[VariantStats]) -> list[VariantStats]:
    return [replace(s, seed_noise=None) if s.seed_noise is not None else s for s in stats]


def sign(result: Difference | None) -> int | None:
    """+1 / -1 for a significant difference, 0 otherwise, None: not comparable."""
    return None if result is None else result.sign


@dataclass
class Tally:
    """Outcomes at each later seed of the differences significant at the first seed."""

    later: list[int]
    significant: int = 0
    counts: dict[int, dict[str, int]] = field(init=False)
    reversed: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.counts = {seed: dict.fromkeys(OUTCOMES, 0) for seed in self.later}

    def add(self, name: str, first: int | None, others: dict[int, int | None]) -> None:
        if not first:
            return
        self.significant += 1
        for seed, other in others.items():
            key = ("not comparable" if other is None else "holds" if other == first else
                   "reverses" if other == -first else "not confirmed")
            self.counts[seed][key] += 1
            if key == "reverses":
                self.reversed.append(f"{name} (seed {seed})")

    def reversals(self) -> dict[int, int]:
        return {seed: c["reverses"] for seed, c in self.counts.items()}

    def blocks(self, caption: str) -> list[Block]:
        rows = [[str(seed), *(str(c[k]) for k in OUTCOMES)] for seed, c in self.counts.items()]
        blocks: list[Block] = [Text(f"{caption} ({self.significant} pairs):"),
                               Table(["seed", *OUTCOMES], rows)]
        if self.reversed:
            blocks.append(Text("Reversed: " + "; ".join(self.reversed) + "."))
        return blocks


@dataclass
class Robustness:
    """The three tallies of one task section, and how many pairs the calibration covered."""

    first: int
    alone: Tally
    floored: Tally | None
    judged: Tally | None
    floors: dict[int, float | None]
    calibrated_pairs: int
    pairs: int


def robustness(stats: list[VariantStats]) -> Robustness | None:
    """The tallies (module docstring); None when no two variants share items at two seeds."""
    seeds = sorted({seed for s in stats for seed in s.items})
    if len(seeds) < 2:
        return None
    first, later = seeds[0], seeds[1:]
    plain = _uncalibrated(stats)
    floors = {seed: noise_at(stats, seed) for seed in seeds}
    have_floors = all(floors[seed] is not None for seed in seeds)
    alone, floored, judged = Tally(later), Tally(later), Tally(later)
    calibrated_pairs = pairs = 0
    for (a, b), (pa, pb) in zip(combinations(stats, 2), combinations(plain, 2), strict=True):
        name = f"{a.label} vs {b.label}"
        pairs += 1
        calibrated_pairs += a.seed_noise is not None and b.seed_noise is not None
        alone.add(name, sign(one_seed(pa, pb, first)), {s: sign(one_seed(pa, pb, s)) for s in later})
        if have_floors:
            floored.add(name, sign(one_seed(pa, pb, first, floors[first])),
                        {s: sign(one_seed(pa, pb, s, floors[s])) for s in later})
            judged.add(name, sign(one_seed(a, b, first, floors[first])),
                       {s: sign(one_seed(a, b, s, floors[s])) for s in later})
        else:
            judged.add(name, sign(one_seed(a, b, first)), {s: sign(one_seed(a, b, s)) for s in later})
    return Robustness(first, alone, floored if have_floors else None,
                      judged if calibrated_pairs else None, floors, calibrated_pairs, pairs)


def robustness_blocks(stats: list[VariantStats]) -> list[Block]:
    """Tables per task: for the differences significant at the first seed, how many hold, reverse or
    go unconfirmed at each later seed, under each rule (module docstring). Empty when no two
    variants share items at two seeds."""
    found = robustness(stats)
    if found is None:
        return []
    first = found.first
    blocks: list[Block] = [Text(
        f"Do one-seed verdicts hold at other seeds? For the differences between two variants called "
        f"significant at seed {first}: how many are significant with the same sign at each later seed "
        "(holds), not significant (not confirmed), or significant the other way (reverses).")]
    blocks += found.alone.blocks(f"By the paired bootstrap alone (test-item noise only), at seed {first}")
    if found.floored is not None:
        sizes = ", ".join(f"seed {seed}: {floor:.3g}" for seed, floor in found.floors.items())
        blocks += found.floored.blocks(f"Paired bootstrap and larger than that seed's |reference - sdpa| run "
                                       f"noise ({sizes}), at seed {first}")
    if found.judged is not None:
        blocks += found.judged.blocks(
            f"As the report judges one seed: with calibrated seed noise (measured on seeds of its own) for "
            f"{found.calibrated_pairs} of {found.pairs} pairs"
            + (", the run-noise rule for the rest" if found.calibrated_pairs < found.pairs else "")
            + f", at seed {first}")
    return blocks
