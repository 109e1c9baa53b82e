"""Do one-seed verdicts survive another seed? Paired tests between every two variants, seed by seed.

For each pair of variants that ran on the same test items at several seeds, the paired bootstrap
(``reports.paired``) is run at every seed. A difference called significant at the first seed
*holds* at a later seed when that seed's test is significant with the same sign, *reverses* when
it is significant with the opposite sign, and is *not confirmed* otherwise.
"""

from __future__ import annotations

from itertools import combinations

from .document import Block, Table, Text
from .paired import paired_bootstrap, same_items
from .runs import VariantStats

ALPHA = 0.05


def _sign(stats_a: VariantStats, stats_b: VariantStats, seed: int) -> int | None:
    """+1 / -1 when a differs from b significantly at ``seed``, 0 when not, None when not comparable."""
    a, b = stats_a.items.get(seed), stats_b.items.get(seed)
    if not same_items(a, b):
        return None
    result = paired_bootstrap(a, b)
    if result.p_two_sided >= ALPHA:
        return 0
    return 1 if result.diff > 0 else -1


def robustness_blocks(stats: list[VariantStats]) -> list[Block]:
    """A table per task: for the differences significant at the first seed, how many hold, reverse or
    go unconfirmed at each later seed. Empty when no two variants share items at two seeds."""
    seeds = sorted({seed for s in stats for seed in s.items})
    if len(seeds) < 2:
        return []
    first, later = seeds[0], seeds[1:]
    counts = {seed: {"holds": 0, "reverses": 0, "not confirmed": 0, "not comparable": 0} for seed in later}
    significant, reversed_pairs = 0, []
    for a, b in combinations(stats, 2):
        sign = _sign(a, b, first)
        if not sign:
            continue
        significant += 1
        for seed in later:
            other = _sign(a, b, seed)
            key = ("not comparable" if other is None else "holds" if other == sign else
                   "reverses" if other == -sign else "not confirmed")
            counts[seed][key] += 1
            if key == "reverses":
                reversed_pairs.append(f"{a.label} vs {b.label} (seed {seed})")
    rows = [[str(seed), *(str(c[k]) for k in ("holds", "not confirmed", "reverses", "not comparable"))]
            for seed, c in counts.items()]
    text = (f"Of the differences between two variants that the paired bootstrap calls significant at seed "
            f"{first} ({significant} pairs), how many are significant with the same sign at each later seed "
            "(holds), not significant (not confirmed), or significant the other way (reverses).")
    blocks: list[Block] = [Text(text), Table(["seed", "holds", "not confirmed", "reverses", "not comparable"],
                                            rows)]
    if reversed_pairs:
        blocks.append(Text("Reversed: " + "; ".join(reversed_pairs) + "."))
    return blocks
