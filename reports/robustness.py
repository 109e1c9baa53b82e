"""Do one-seed verdicts survive another seed? Paired tests between every two variants, seed by seed.

For each pair of variants that ran on the same test items at several seeds, the paired bootstrap
(``reports.paired``) is run at every seed. A difference called significant at the first seed
*holds* at a later seed when that seed's test is significant with the same sign, *reverses* when
it is significant with the opposite sign, and is *not confirmed* otherwise.

Two verdicts are counted. The paired bootstrap alone sees only the sampling noise of the test
items. The report's one-seed verdict also asks a difference to exceed the run noise of that seed
(``REPLICATES``: reference and sdpa compute the same function, so what separates them is training
noise); both tables are shown, so a reader sees what the run-noise floor changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

from .document import Block, Table, Text
from .paired import PairedResult, paired_bootstrap, same_items
from .runs import VariantStats

ALPHA = 0.05
REPLICATES = ("reference", "sdpa")  # the same function by two kernels: their gap is training noise
OUTCOMES = ("holds", "not confirmed", "reverses", "not comparable")


def paired_at(a: VariantStats, b: VariantStats, seed: int) -> PairedResult | None:
    """The paired bootstrap of a against b on ``seed``'s test items; None when not comparable."""
    items_a, items_b = a.items.get(seed), b.items.get(seed)
    return paired_bootstrap(items_a, items_b) if same_items(items_a, items_b) else None


def noise_at(stats: list[VariantStats], seed: int) -> float | None:
    """|reference - sdpa| on the headline metric at ``seed``; None without both on shared items."""
    pair = [next((s for s in stats if s.variant == name), None) for name in REPLICATES]
    if None in pair:
        return None
    result = paired_at(*pair, seed)
    return None if result is None else abs(result.diff)


def sign(result: PairedResult | None, floor: float = 0.0) -> int | None:
    """+1 / -1 for a significant difference larger than ``floor``, 0 otherwise, None: not comparable."""
    if result is None:
        return None
    if result.p_two_sided >= ALPHA or abs(result.diff) <= floor:
        return 0
    return 1 if result.diff > 0 else -1


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

    def blocks(self, caption: str) -> list[Block]:
        rows = [[str(seed), *(str(c[k]) for k in OUTCOMES)] for seed, c in self.counts.items()]
        blocks: list[Block] = [Text(f"{caption} ({self.significant} pairs):"),
                               Table(["seed", *OUTCOMES], rows)]
        if self.reversed:
            blocks.append(Text("Reversed: " + "; ".join(self.reversed) + "."))
        return blocks


def robustness_blocks(stats: list[VariantStats]) -> list[Block]:
    """Tables per task: for the differences significant at the first seed, how many hold, reverse or
    go unconfirmed at each later seed, judged by the paired bootstrap alone and, where reference and
    sdpa ran, as the report judges one seed (above that seed's run noise). Empty when no two variants
    share items at two seeds."""
    seeds = sorted({seed for s in stats for seed in s.items})
    if len(seeds) < 2:
        return []
    first, later = seeds[0], seeds[1:]
    floors = {seed: noise_at(stats, seed) for seed in seeds}
    alone, judged = Tally(later), Tally(later)
    for a, b in combinations(stats, 2):
        results = {seed: paired_at(a, b, seed) for seed in seeds}
        name = f"{a.label} vs {b.label}"
        alone.add(name, sign(results[first]), {seed: sign(results[seed]) for seed in later})
        judged.add(name, sign(results[first], floors[first] or 0.0),
                   {seed: sign(results[seed], floors[seed] or 0.0) for seed in later})
    blocks: list[Block] = [Text(
        f"Do one-seed verdicts hold at other seeds? For the differences between two variants called "
        f"significant at seed {first}: how many are significant with the same sign at each later seed "
        "(holds), not significant (not confirmed), or significant the other way (reverses).")]
    blocks += alone.blocks(f"By the paired bootstrap alone (test-item noise only), at seed {first}")
    if all(floors[seed] is not None for seed in seeds):
        sizes = ", ".join(f"seed {seed}: {floors[seed]:.3g}" for seed in seeds)
        blocks += judged.blocks(f"As the report judges one seed (significant and larger than that seed's "
                                f"|reference - sdpa| run noise: {sizes}), at seed {first}")
    return blocks
