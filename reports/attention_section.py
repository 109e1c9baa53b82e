"""Report section of attention pictures, from the examples runs save (``attention_file``, see
``Task.attention_examples``).

Three kinds: ``alignment`` (translation: a target x source heatmap), ``pooling`` (sentiment:
weights over the words) and ``regions`` (captioning, VQA: weights over an image grid, drawn over the
image, one panel per decoding step). One figure per task and example shows every variant side by
side, from the lowest seed of each variant that saved examples, on one colour scale (0 to the
largest weight in the figure, shown by its colour bar), so a variant that spreads its weight looks
pale beside one that focuses, instead of each panel stretching its own range.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from . import plots
from .document import Block, Figure, Heading, Text
from .task_section import sections, task_title

KINDS = ("alignment", "pooling", "regions")
EXAMPLES_SHOWN = {"alignment": 2, "pooling": 2, "regions": 1}  # the image grids are the costly ones to draw
MAX_STEPS = 5


class AttentionFileError(ValueError):
    """An attention file that does not follow the documented format."""


def load_examples(path: str | Path) -> tuple[str, list[dict]]:
    """The kind and examples of one attention file, checked for the fields its kind needs."""
    record = json.loads(Path(path).read_text())
    kind = record.get("kind") if isinstance(record, dict) else None
    if kind not in KINDS or not isinstance(record.get("examples"), list):
        raise AttentionFileError(f"{path}: expected {{kind: one of {list(KINDS)}, examples: [...]}}")
    needs = {"alignment": {"source", "target", "weights"}, "pooling": {"tokens", "weights"},
             "regions": {"image", "grid", "weights"}}[kind]
    for i, example in enumerate(record["examples"]):
        if not isinstance(example, dict) or not needs <= set(example):
            raise AttentionFileError(f"{path}: example {i} lacks {sorted(needs - set(example or {}))}")
    return kind, record["examples"]


def attention_blocks(frame: pd.DataFrame) -> list[Block]:
    blocks: list[Block] = [Heading("Attention maps"), Text(
        "Attention of the tested (best-validation) model on a few test examples, saved by each run. "
        "Tasks or variants without an attention file have no picture.")]
    drawn = False
    for task, data, ok in sections(frame):
        chosen, notes = _chosen_files(ok)
        title = task_title(task, data)
        if not chosen:
            blocks += [Text(f"{title}: no attention examples recorded."), *(Text(n) for n in notes)]
            continue
        blocks.append(Heading(title, 3))
        blocks += [Text(note) for note in notes]
        for kind, by_variant in chosen.items():
            figures = _figures(title, kind, by_variant)
            blocks += figures
            drawn = drawn or any(isinstance(b, Figure) for b in figures)
    if not drawn:
        blocks.append(Text("No attention pictures: none of the runs saved attention examples."))
    return blocks


def _chosen_files(ok: pd.DataFrame) -> tuple[dict[str, dict[str, list[dict]]], list[str]]:
    """kind -> variant -> examples (the lowest seed with a readable file); notes on unreadable files."""
    chosen: dict[str, dict[str, list[dict]]] = {}
    notes = []
    with_file = ok[ok["attention_file"].notna()].sort_values(["variant", "seed"])
    for variant, group in with_file.groupby("variant", sort=True):
        for path in group["attention_file"]:
            try:
                kind, examples = load_examples(path)
            except (OSError, json.JSONDecodeError, AttentionFileError) as err:
                notes.append(f"{variant}: attention file unreadable ({err})")
                continue
            chosen.setdefault(kind, {})[str(variant)] = examples
            break
    return chosen, notes


def _figures(title: str, kind: str, by_variant: dict[str, list[dict]]) -> list[Block]:
    count = min(EXAMPLES_SHOWN[kind], max(len(e) for e in by_variant.values()))
    draw = {"alignment": _alignment, "pooling": _pooling, "regions": _regions}[kind]
    blocks: list[Block] = []
    for index in range(count):
        panels = {v: examples[index] for v, examples in by_variant.items() if index < len(examples)}
        name = "attention-" + "".join(c if c.isalnum() else "-" for c in title.lower())[:50] + f"-{index}"
        try:
            png = draw(f"{title}, example {index + 1}", panels)
        except (ValueError, TypeError, KeyError, IndexError) as err:  # shapes that do not fit their kind
            plots.plt.close("all")
            blocks.append(Text(f"{title}: {kind} example {index + 1} could not be drawn ({err})."))
            continue
        blocks.append(Figure(name, png, f"{title}: {kind} attention, test example {index + 1}, per variant"))
    return blocks


def shared_scale(panels: dict[str, dict]) -> float:
    """The largest weight over every panel: one colour scale (0 .. it) for all variants of a figure,
    so a variant that spreads its weight (``uniform``) looks pale beside one that focuses."""
    top = max((float(np.max(np.asarray(e["weights"], dtype=float))) for e in panels.values()
               if np.asarray(e["weights"]).size), default=1.0)
    return top if top > 0 else 1.0


def _colour_bar(fig, image, axes, label: str = "attention weight") -> None:
    bar = fig.colorbar(image, ax=axes, fraction=0.025, pad=0.01)
    bar.set_label(label, fontsize=7)
    bar.ax.tick_params(labelsize=6)


def _alignment(title: str, panels: dict[str, dict]) -> bytes:
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plots.plt.subplots(rows, cols, figsize=(4.2 * cols + 0.6, 3.6 * rows), squeeze=False)
    top = shared_scale(panels)
    image = None
    for ax, (variant, example) in zip(axes.flat, panels.items(), strict=False):
        weights = np.asarray(example["weights"], dtype=float)  # (target, source)
        image = ax.imshow(weights, cmap="viridis", aspect="auto", vmin=0.0, vmax=top)
        ax.set_xticks(range(len(example["source"])), example["source"], rotation=90, fontsize=6)
        ax.set_yticks(range(len(example["target"])), example["target"], fontsize=6)
        ax.set_title(variant, fontsize=9)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    # fixed margins with room for the token labels: tight layout and cropping double the drawing time
    height = fig.get_figheight()
    fig.subplots_adjust(left=0.07, right=0.93, top=1 - 0.6 / height, bottom=0.7 / height, hspace=0.55,
                        wspace=0.35)
    _colour_bar(fig, image, axes.ravel().tolist())
    return plots.png(fig, tight=False)


def _outcome(example: dict) -> str:
    return f" (label {example['label']}, predicted {example.get('prediction')})" if "label" in example else ""


def _pooling(title: str, panels: dict[str, dict]) -> bytes:
    """Weights over the words: one heatmap with a row per variant when all saw the same words (one
    axis, one scale), else one strip per variant on the same scale."""
    top = shared_scale(panels)
    tokens = [list(map(str, e["tokens"])) for e in panels.values()]
    if all(t == tokens[0] for t in tokens):
        matrix = np.vstack([np.asarray(e["weights"], dtype=float) for e in panels.values()])
        fig, ax = plots.plt.subplots(figsize=(10.6, 0.32 * len(panels) + 1.6))
        image = ax.imshow(matrix, cmap="Oranges", aspect="auto", vmin=0.0, vmax=top)
        ax.set_xticks(range(len(tokens[0])), tokens[0], rotation=60, fontsize=6)
        ax.set_yticks(range(len(panels)), [f"{v}{_outcome(e)}" for v, e in panels.items()], fontsize=7)
        fig.suptitle(title, fontsize=10)
        height = fig.get_figheight()
        fig.subplots_adjust(left=0.3, right=0.93, top=1 - 0.45 / height, bottom=0.75 / height)
        _colour_bar(fig, image, ax)
        return plots.png(fig, tight=False)
    fig, axes = plots.plt.subplots(len(panels), 1, figsize=(10.6, 1.1 * len(panels) + 0.6), squeeze=False)
    image = None
    for ax, (variant, example) in zip(axes[:, 0], panels.items(), strict=True):
        weights = np.asarray(example["weights"], dtype=float)[None, :]  # (1, tokens)
        image = ax.imshow(weights, cmap="Oranges", aspect="auto", vmin=0.0, vmax=top)
        ax.set_xticks(range(len(example["tokens"])), example["tokens"], rotation=60, fontsize=6)
        ax.set_yticks([])
        ax.set_title(f"{variant}{_outcome(example)}", fontsize=8, loc="left")
    fig.suptitle(title, fontsize=10)
    height = fig.get_figheight()
    fig.subplots_adjust(left=0.03, right=0.93, top=1 - 0.5 / height, bottom=0.5 / height, hspace=1.6)
    _colour_bar(fig, image, axes[:, 0].tolist())
    return plots.png(fig, tight=False)


def _overlay(example: dict, step: int, top: float) -> np.ndarray:
    """The image (H, W, 3) with step ``step``'s weights over its grid cells blended in as a heat map,
    on the figure's one scale 0 .. ``top``."""
    image = np.asarray(example["image"], dtype=float).transpose(1, 2, 0).clip(0.0, 1.0)  # (C,H,W) -> (H,W,C)
    image = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image[:, :, :3]
    rows, cols = example["grid"]
    weights = np.asarray(example["weights"][step], dtype=float).reshape(rows, cols)
    height, width = image.shape[:2]
    cells = weights[np.arange(height) * rows // height][:, np.arange(width) * cols // width]  # (H, W)
    heat = plots.plt.get_cmap("jet")((cells / top).clip(0.0, 1.0))[:, :, :3]
    return 0.55 * image + 0.45 * heat


def _regions(title: str, panels: dict[str, dict]) -> bytes:
    """One row per variant: the image under each decoding step's weights, side by side.

    The tiles of a row are composed into one picture (a few axes instead of variants x steps),
    which keeps the report fast to build; each tile is labelled with its step (a word).
    """
    steps = min(MAX_STEPS, max(len(e["weights"]) for e in panels.values()))
    row = 1.7 * steps / (steps * 17 / 16) + 0.55  # a row of square tiles with gaps, title and labels
    height = row * len(panels) + 0.5
    fig, axes = plots.plt.subplots(len(panels), 1, figsize=(1.7 * steps + 0.4, height), squeeze=False)
    fig.subplots_adjust(left=0.02, right=0.9, bottom=0.3 / height, top=1 - 0.5 / height, hspace=0.55)
    top = shared_scale({v: {"weights": e["weights"][:steps]} for v, e in panels.items()})
    for ax, (variant, example) in zip(axes[:, 0], panels.items(), strict=True):
        shown = range(min(steps, len(example["weights"])))
        tiles = [_overlay(example, step, top) for step in shown]
        width, gap = tiles[0].shape[1], max(1, tiles[0].shape[1] // 16)
        spacer = np.ones((tiles[0].shape[0], gap, 3))
        ax.imshow(np.concatenate([part for tile in tiles for part in (tile, spacer)][:-1], axis=1))
        labels = example.get("steps") or [str(i + 1) for i in range(len(example["weights"]))]
        ax.set_xticks([i * (width + gap) + width / 2 for i in shown], [str(labels[i]) for i in shown],
                      fontsize=7)
        ax.set_yticks([])
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        text = f": {example['text']}" if example.get("text") else ""
        ax.set_title(f"{variant}{text}", fontsize=7, loc="left")
    fig.suptitle(title, fontsize=9, y=1 - 0.15 / height)
    scale = plots.plt.cm.ScalarMappable(norm=plots.plt.Normalize(0.0, top), cmap="jet")
    _colour_bar(fig, scale, axes[:, 0].tolist(), "attention weight (blended over the image)")
    return plots.png(fig)
