"""Real captioning data from ``--data FOLDER`` in the COCO captions format.

FOLDER holds ``train/``, ``test/`` and optionally ``val/`` (when absent, ``data.val_fraction``
of the training images are held out). Each split folder holds ``captions.json`` in the COCO
format and the image files under ``images/``:

    {"images": [{"id": 42, "file_name": "000042.jpg"}, ...],
     "annotations": [{"image_id": 42, "caption": "A dog on a sofa."}, ...]}

(``captions_train2017.json`` linked as ``train/captions.json`` and ``train2017/`` as
``train/images``; COCO has no public test captions, so use e.g. the Karpathy split.) Every image
is read and resized to ``data.image_size`` up front. A caption naming an image id not listed in
``images``, an image without a caption, a missing or an unreadable image file all raise
ValueError naming the file or the id, before training.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import Tensor

from tasks._vision import load_images, read_json, split_off

SPLITS = ("train", "val", "test")


@dataclass
class CaptionSet:
    images: Tensor  # (N, 3, S, S) uint8
    image_ids: list[int]
    captions: list[list[str]]  # reference captions per image (raw text)
    novel: list[bool]  # per image: contains a held-out combination (embedded test data only)


def _entries(data: object, key: str, path: Path) -> list[dict]:
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise ValueError(f"{path}: expected a mapping with an {key!r} list (COCO captions format)")
    for i, entry in enumerate(data[key]):
        if not isinstance(entry, dict):
            raise ValueError(f"{path}: {key}[{i}] must be a mapping, got {type(entry).__name__}")
    return data[key]


def read_coco(path: Path) -> dict[int, tuple[str, list[str]]]:
    """image id -> (file name, captions) from one COCO captions file."""
    data = read_json(path, what="COCO captions JSON with 'images' and 'annotations'")
    files: dict[int, tuple[str, list[str]]] = {}
    for i, image in enumerate(_entries(data, "images", path)):
        if not isinstance(image.get("id"), int) or not isinstance(image.get("file_name"), str):
            raise ValueError(f"{path}: images[{i}] needs an integer 'id' and a string 'file_name'")
        files[image["id"]] = (image["file_name"], [])
    for i, ann in enumerate(_entries(data, "annotations", path)):
        image_id, text = ann.get("image_id"), ann.get("caption")
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{path}: annotations[{i}] needs a non-empty string 'caption'")
        if image_id not in files:
            raise ValueError(f"{path}: annotations[{i}] refers to image id {image_id!r}, which is not in "
                             "'images'")
        files[image_id][1].append(text)
    bare = [image_id for image_id, (_, caps) in files.items() if not caps]
    if bare:
        raise ValueError(f"{path}: image ids {sorted(bare)[:5]} have no caption")
    if not files:
        raise ValueError(f"{path}: no images")
    return files


def to_set(entries: dict[int, tuple[str, list[str]]], folder: Path, size: int) -> CaptionSet:
    ids = sorted(entries)
    paths = [folder / "images" / entries[i][0] for i in ids]
    return CaptionSet(images=load_images(paths, size), image_ids=ids, captions=[entries[i][1] for i in ids],
                      novel=[False] * len(ids))


def load_real(data: str, cfg: dict, seed: int) -> dict[str, CaptionSet]:
    root = Path(data)
    if not root.is_dir():
        raise ValueError(f"--data {data}: not a folder (expected train/, test/ and optional val/ inside)")
    for split in ("train", "test"):
        if not (root / split).is_dir():
            raise ValueError(f"--data {data}: missing the {split}/ folder (with captions.json and images/)")
    entries = {s: read_coco(root / s / "captions.json") for s in SPLITS if (root / s).is_dir()}
    folders = {s: root / s for s in SPLITS}
    if "val" not in entries:
        held = split_off(list(entries["train"]), cfg["val_fraction"], seed)
        entries["val"] = {i: e for i, e in entries["train"].items() if i in held}
        entries["train"] = {i: e for i, e in entries["train"].items() if i not in held}
        folders["val"] = folders["train"]
    return {s: to_set(entries[s], folders[s], cfg["image_size"]) for s in SPLITS}
