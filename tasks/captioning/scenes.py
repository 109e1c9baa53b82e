"""Embedded captioning scenes: coloured digits or shapes on a grid, with template captions.

A scene puts ``min_objects``..``max_objects`` objects in distinct cells of a ``grid`` x ``grid``
board (grid 2 or 3). An object is a (colour, kind) pair: with ``source="digits"`` the kind is a
digit drawn from scikit-learn's bundled 8x8 handwritten digits (``load_digits``; train and
evaluation scenes use disjoint handwriting samples), with ``source="shapes"`` a rendered shape.
Captions name the objects in reading order with their positions, in several phrasings (the
references):

    a red seven at the top left and a blue two in the centre
    there is a red seven at the top left and a blue two in the centre
    this image shows a red seven at the top left and a blue two in the centre

``heldout`` (colour, kind) pairs never occur in the training and validation scenes. The test
split has ``n_test`` in-distribution scenes plus ``n_test`` "novel" scenes that each contain at
least one held-out pair (compositional generalisation: every colour and kind was seen, not
together). All randomness comes from ``random.Random(seed)``.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from tasks._vision import COLOURS, SHAPES, render_cells, shape_mask

SOURCES = ("digits", "shapes")
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
POSITIONS = {
    2: ("at the top left", "at the top right", "at the bottom left", "at the bottom right"),
    3: ("at the top left", "at the top", "at the top right", "on the left", "in the centre", "on the right",
        "at the bottom left", "at the bottom", "at the bottom right"),
}
PREFIXES = ("", "there is ", "this image shows ")
Obj = tuple[int, str, str, int]  # (cell, colour, kind word, digit sample index or -1)


@dataclass(frozen=True)
class CaptionSpec:
    source: str = "digits"
    grid: int = 3
    cell: int = 8
    min_objects: int = 1
    max_objects: int = 3
    colours: tuple[str, ...] = ("red", "green", "blue", "yellow")
    shapes: tuple[str, ...] = ("square", "circle", "triangle", "cross")
    heldout: int = 4
    references: int = 3

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {list(SOURCES)}, got {self.source!r}")
        if self.grid not in POSITIONS:
            raise ValueError(f"grid must be one of {sorted(POSITIONS)} (named positions), got {self.grid!r}")
        if not 1 <= self.min_objects <= self.max_objects <= self.grid**2:
            raise ValueError(f"need 1 <= min_objects <= max_objects <= grid^2, got {self.min_objects}, "
                             f"{self.max_objects}")
        if not 1 <= self.references <= len(PREFIXES):
            raise ValueError(f"references must be in [1, {len(PREFIXES)}], got {self.references!r}")
        if self.source == "digits" and self.cell % 8:
            raise ValueError(f"cell must be a multiple of 8 (the digits are 8x8), got {self.cell!r}")
        bad = [c for c in self.colours if c not in COLOURS] + [s for s in self.shapes if s not in SHAPES]
        if bad or len(self.colours) < 2:
            raise ValueError(f"colours (>= 2) must come from {list(COLOURS)} and shapes from {list(SHAPES)}; "
                             f"bad: {bad or self.colours}")
        if self.source == "shapes":
            shape_mask(self.shapes[0], self.cell)  # raises for a cell too small to draw shapes
        if not 0 <= self.heldout <= min(len(self.colours), len(self.kinds)):
            raise ValueError(f"heldout must be in [0, min(#colours, #kinds)], got {self.heldout!r}")

    @property
    def kinds(self) -> tuple[str, ...]:
        return DIGIT_WORDS if self.source == "digits" else self.shapes


def heldout_pairs(spec: CaptionSpec, rng: random.Random) -> list[tuple[str, str]]:
    """Pairs with distinct colours and distinct kinds: every colour and kind keeps other partners."""
    colours = rng.sample(spec.colours, spec.heldout)
    kinds = rng.sample(spec.kinds, spec.heldout)
    return sorted(zip(colours, kinds, strict=True))


def caption(objects: list[Obj], grid: int, prefix: str) -> str:
    parts = [f"a {colour} {kind} {POSITIONS[grid][cell]}" for cell, colour, kind, _ in sorted(objects)]
    body = parts[0] if len(parts) == 1 else " , ".join(parts[:-1]) + " and " + parts[-1]
    return prefix + body


def _objects(spec: CaptionSpec, rng: random.Random, pool: dict[int, list[int]],
             allowed: list[tuple[str, str]], first: tuple[str, str] | None) -> list[Obj]:
    count = rng.randint(spec.min_objects, spec.max_objects)
    cells = rng.sample(range(spec.grid**2), count)
    pairs = [first] if first else []
    pairs += [rng.choice(allowed) for _ in range(count - len(pairs))]
    out = []
    for cell, (colour, kind) in zip(cells, pairs, strict=True):
        sample = rng.choice(pool[DIGIT_WORDS.index(kind)]) if spec.source == "digits" else -1
        out.append((cell, colour, kind, sample))
    return out


def _scene(spec: CaptionSpec, objects: list[Obj]) -> dict:
    return {"objects": [list(o) for o in objects],
            "captions": [caption(objects, spec.grid, p) for p in PREFIXES[:spec.references]]}


def digit_pools(rng: random.Random) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
    """Indices of the scikit-learn digits by class, split 70/30 into training and evaluation pools."""
    from sklearn.datasets import load_digits

    targets = load_digits().target.tolist()
    order = list(range(len(targets)))
    rng.shuffle(order)
    cut = int(0.7 * len(order))
    pools = ({d: [] for d in range(10)}, {d: [] for d in range(10)})
    for rank, i in enumerate(order):
        pools[rank >= cut][targets[i]].append(i)
    return pools


def generate(spec: CaptionSpec, sizes: dict[str, int], seed: int) -> dict:
    """``{"heldout": [[colour, kind], ...], "train"/"val"/"test": [{"objects": [[cell, colour,
    kind, sample], ...], "captions": [...], "novel": bool}, ...]}``."""
    rng = random.Random(seed)
    held = heldout_pairs(spec, rng)
    allowed = [(c, k) for c in spec.colours for k in spec.kinds if (c, k) not in held]
    train_pool, eval_pool = digit_pools(rng) if spec.source == "digits" else ({}, {})
    out: dict = {"heldout": [list(p) for p in held]}
    for split in ("train", "val", "test"):
        pool = train_pool if split == "train" else eval_pool
        scenes = [{**_scene(spec, _objects(spec, rng, pool, allowed, None)), "novel": False}
                  for _ in range(sizes[split])]
        if split == "test" and held:
            scenes += [{**_scene(spec, _objects(spec, rng, pool, allowed, rng.choice(held))), "novel": True}
                       for _ in range(sizes[split])]
        out[split] = scenes
    return out


def cache_params(spec: CaptionSpec, sizes: dict[str, int], seed: int) -> dict:
    return {"generator": "captioning-scenes/1", "spec": asdict(spec), "sizes": sizes, "seed": seed}


def render(scenes: list[dict], spec: CaptionSpec) -> Tensor:
    """(N, 3, grid * cell, grid * cell) uint8 images (black background)."""
    c = spec.cell
    if spec.source == "digits":
        from sklearn.datasets import load_digits

        glyphs = torch.as_tensor(load_digits().images, dtype=torch.float32) / 16.0  # (1797, 8, 8)
        glyphs = glyphs.repeat_interleave(c // 8, 1).repeat_interleave(c // 8, 2)
    else:
        masks = {s: shape_mask(s, c).float() for s in spec.shapes}
    patches = torch.zeros(len(scenes), spec.grid**2, 3, c, c)
    for i, scene in enumerate(scenes):
        for cell, colour, kind, sample in scene["objects"]:
            glyph = glyphs[sample] if spec.source == "digits" else masks[kind]
            patches[i, cell] = torch.tensor(COLOURS[colour], dtype=torch.float32)[:, None, None] * glyph
    return render_cells(patches.round().to(torch.uint8), spec.grid)
