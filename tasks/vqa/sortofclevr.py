"""Sort-of-CLEVR: coloured shapes on a grid, with relational and non-relational questions.

After Santoro et al., "A simple neural network module for relational reasoning", NeurIPS 2017
(relation networks reach 94% on its relational questions where a CNN+MLP stalls near 63%).

A scene places ``num_objects`` objects, each of a different colour and one of ``shapes``, in
distinct cells of a ``grid`` x ``grid`` board; the image draws each object in its ``cell``-pixel
square with plain tensor ops (``tasks._vision.render_cells``). Questions name one object by its
colour:

    non-relational   shape       what is the shape of the red object ?             -> circle
                     horizontal  is the red object on the left or on the right ?   -> left
                     vertical    is the red object at the top or at the bottom ?   -> top
    relational       nearest     what is the shape of the object nearest to the red object ?
                     farthest    what is the shape of the object farthest from the red object ?
                     count       how many objects have the same shape as the red object ?  -> 2

Distances are Euclidean between cell centres. A nearest/farthest question is only asked about
an object whose answer is unambiguous (ties at the extreme distance share one shape), so every
answer is determined by the image; a scene where some question type has no such object is drawn
again. Everything comes from ``random.Random(seed)``: the same parameters give the same data.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from tasks._vision import COLOURS, SHAPES, render_cells, shape_mask

NON_RELATIONAL = ("shape", "horizontal", "vertical")
RELATIONAL = ("nearest", "farthest", "count")
QUESTION_TYPES = NON_RELATIONAL + RELATIONAL
TEMPLATES = {
    "shape": "what is the shape of the {} object ?",
    "horizontal": "is the {} object on the left or on the right ?",
    "vertical": "is the {} object at the top or at the bottom ?",
    "nearest": "what is the shape of the object nearest to the {} object ?",
    "farthest": "what is the shape of the object farthest from the {} object ?",
    "count": "how many objects have the same shape as the {} object ?",
}
Obj = tuple[int, int, str, str]  # (row, col, colour, shape)


@dataclass(frozen=True)
class SceneSpec:
    grid: int = 6
    cell: int = 6
    num_objects: int = 6
    colours: tuple[str, ...] = ("red", "green", "blue", "yellow", "purple", "gray")
    shapes: tuple[str, ...] = ("square", "circle", "triangle")
    questions_per_type: int = 1

    def __post_init__(self) -> None:
        for name in ("grid", "cell", "num_objects", "questions_per_type"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.grid % 2:
            raise ValueError(f"grid must be even (left/right and top/bottom halves), got {self.grid}")
        if not 2 <= self.num_objects <= min(len(self.colours), self.grid**2):
            raise ValueError(f"num_objects must be in [2, min(#colours, grid^2)], got {self.num_objects}")
        unknown = [c for c in self.colours if c not in COLOURS] + [s for s in self.shapes if s not in SHAPES]
        if unknown or len(set(self.colours)) != len(self.colours) or len(set(self.shapes)) < 2:
            raise ValueError(f"colours must be distinct names from {list(COLOURS)} and shapes >= 2 distinct "
                             f"names from {list(SHAPES)}; bad: {unknown or 'duplicates'}")
        masks = [shape_mask(s, self.cell) for s in self.shapes]  # raises for a too-small cell
        if any(bool((a == b).all()) for i, a in enumerate(masks) for b in masks[i + 1:]):
            raise ValueError(f"shapes {list(self.shapes)} are not all distinct at cell={self.cell} pixels")


def _dist2(a: Obj, b: Obj) -> int:
    return (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2


def _answer(kind: str, subject: Obj, objects: list[Obj], grid: int) -> str | None:
    """The answer about ``subject``, or None when it is ambiguous."""
    if kind == "shape":
        return subject[3]
    if kind == "horizontal":
        return "left" if subject[1] < grid // 2 else "right"
    if kind == "vertical":
        return "top" if subject[0] < grid // 2 else "bottom"
    if kind == "count":
        return str(sum(o[3] == subject[3] for o in objects))
    others = [o for o in objects if o is not subject]
    pick = min if kind == "nearest" else max
    extreme = pick(_dist2(subject, o) for o in others)
    shapes = {o[3] for o in others if _dist2(subject, o) == extreme}
    return shapes.pop() if len(shapes) == 1 else None


def _questions(objects: list[Obj], spec: SceneSpec, rng: random.Random) -> list[list[str]] | None:
    out = []
    for kind in QUESTION_TYPES:
        candidates = [(o, a) for o in objects if (a := _answer(kind, o, objects, spec.grid)) is not None]
        if not candidates:
            return None
        for subject, answer in rng.sample(candidates, min(spec.questions_per_type, len(candidates))):
            out.append([kind, TEMPLATES[kind].format(subject[2]), answer])
    return out


def _scene(spec: SceneSpec, rng: random.Random) -> dict:
    while True:
        cells = rng.sample(range(spec.grid**2), spec.num_objects)
        colours = rng.sample(spec.colours, spec.num_objects)
        objects = [(c // spec.grid, c % spec.grid, col, rng.choice(spec.shapes))
                   for c, col in zip(cells, colours, strict=True)]
        questions = _questions(objects, spec, rng)
        if questions is not None:
            return {"objects": [list(o) for o in objects], "questions": questions}


def generate(spec: SceneSpec, sizes: dict[str, int], seed: int) -> dict[str, list[dict]]:
    """Scenes per split: ``{"train": [{"objects": [[row, col, colour, shape], ...],
    "questions": [[type, text, answer], ...]}, ...], "val": ..., "test": ...}``."""
    rng = random.Random(seed)
    return {split: [_scene(spec, rng) for _ in range(n)] for split, n in sizes.items()}


def cache_params(spec: SceneSpec, sizes: dict[str, int], seed: int) -> dict:
    return {"generator": "sort-of-clevr/1", "spec": asdict(spec), "sizes": sizes, "seed": seed}


def render(scenes: list[dict], spec: SceneSpec) -> Tensor:
    """(N, 3, grid * cell, grid * cell) uint8 images of ``scenes`` (black background)."""
    cells, c = spec.grid**2, spec.cell
    masks = torch.stack([shape_mask(s, c) for s in spec.shapes]).to(torch.uint8)  # (S, c, c)
    palette = torch.tensor([COLOURS[name] for name in spec.colours], dtype=torch.uint8)  # (K, 3)
    patches = torch.zeros(len(scenes), cells, 3, c, c, dtype=torch.uint8)
    for i, scene in enumerate(scenes):
        for row, col, colour, shape in scene["objects"]:
            mask = masks[spec.shapes.index(shape)]
            patches[i, row * spec.grid + col] = palette[spec.colours.index(colour)][:, None, None] * mask
    return render_cells(patches, spec.grid)
