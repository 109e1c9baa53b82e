"""Real VQA data from ``--data FOLDER``: the VQA v2 format or the easy-vqa layout.

FOLDER holds one sub-folder per split, ``train/``, ``test/`` and optionally ``val/`` (when it is
absent, ``data.val_fraction`` of the training images are held out for validation). Each split
folder holds ``questions.json`` and an ``images/`` folder, plus ``annotations.json`` for VQA v2:

- VQA v2 (Goyal et al. 2017): ``questions.json`` is ``{"questions": [{"question_id", "image_id",
  "question"}, ...]}``; ``annotations.json`` is ``{"annotations": [{"question_id", "answers":
  [{"answer": ...}, ...], "answer_type"?}, ...]}``, as distributed
  (``v2_OpenEnded_mscoco_train2014_questions.json`` / ``v2_mscoco_train2014_annotations.json``
  renamed or linked). Questions are grouped by ``answer_type`` for per-type accuracy.
- easy-vqa (the ``easy-vqa`` package's ``data/`` folder): ``questions.json`` is a list of
  ``[question, answer, image_id]``; there is no validation split and one answer per question.

Image files are ``images/`` + ``data.image_pattern`` formatted with ``image_id`` and ``split``
(``{image_id}.png`` for easy-vqa, ``COCO_{split}2014_{image_id:012d}.jpg`` for COCO images).
Every image is read and resized to ``data.image_size`` up front, so a missing or unreadable
image, or a question naming an image id with no file, raises ValueError before training.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import Tensor

from tasks._vision import load_images, read_json, split_off

SPLITS = ("train", "val", "test")


@dataclass
class QASet:
    """Questions about a set of images (one split)."""

    images: Tensor  # (N, 3, S, S) uint8
    image_ids: list[int]  # original id of each image row
    image_index: list[int]  # per question: its image row
    questions: list[str]
    answers: list[list[str]]  # human answers per question
    types: list[str]  # question type per question (per-type accuracy)


Record = tuple[int, str, list[str], str]  # (image_id, question, answers, type)


def _field(entry: object, key: str, kind: type, where: str) -> object:
    if not isinstance(entry, dict) or not isinstance(entry.get(key), kind):
        raise ValueError(f"{where}: expected a {kind.__name__} field {key!r}")
    return entry[key]


def _vqa_v2(folder: Path) -> list[Record]:
    qfile, afile = folder / "questions.json", folder / "annotations.json"
    questions = read_json(qfile, what='{"questions": [...]} (VQA v2 questions)')
    annotations = read_json(afile, what='{"annotations": [...]} (VQA v2 annotations)')
    if not isinstance(annotations, dict) or not isinstance(annotations.get("annotations"), list):
        raise ValueError(f"{afile}: expected a mapping with an 'annotations' list")
    by_qid = {}
    for i, ann in enumerate(annotations["annotations"]):
        where = f"{afile}: annotation {i}"
        answers = _field(ann, "answers", list, where)
        texts = [_field(a, "answer", str, f"{where} answer {j}") for j, a in enumerate(answers)]
        if not texts:
            raise ValueError(f"{where}: no answers")
        by_qid[_field(ann, "question_id", int, where)] = (texts, str(ann.get("answer_type", "all")))
    records = []
    for i, q in enumerate(questions["questions"]):
        where = f"{qfile}: question {i}"
        qid = _field(q, "question_id", int, where)
        if qid not in by_qid:
            raise ValueError(f"{where}: question_id {qid} has no entry in {afile}")
        answers, kind = by_qid.pop(qid)
        records.append((_field(q, "image_id", int, where), _field(q, "question", str, where), answers, kind))
    if by_qid:
        raise ValueError(f"{afile}: annotations for unknown question ids {sorted(by_qid)[:5]}")
    return records


def _easy_vqa(qfile: Path, rows: list) -> list[Record]:
    records = []
    for i, row in enumerate(rows):
        ok = (isinstance(row, list) and len(row) == 3 and isinstance(row[0], str) and isinstance(row[1], str)
              and isinstance(row[2], int) and not isinstance(row[2], bool))
        if not ok:
            raise ValueError(f"{qfile}: entry {i} must be [question, answer, image_id], got {row!r}")
        records.append((row[2], row[0], [row[1]], "all"))
    return records


def read_records(folder: Path) -> list[Record]:
    qfile = folder / "questions.json"
    questions = read_json(qfile, what="VQA v2 questions or an easy-vqa question list")
    if isinstance(questions, list):
        records = _easy_vqa(qfile, questions)
    elif isinstance(questions, dict) and isinstance(questions.get("questions"), list):
        records = _vqa_v2(folder)
    else:
        raise ValueError(f"{qfile}: expected {{'questions': [...]}} (VQA v2) or a list of "
                         "[question, answer, image_id] (easy-vqa)")
    if not records:
        raise ValueError(f"{qfile}: no questions")
    return records


def to_qaset(records: list[Record], folder: Path, split: str, pattern: str, size: int) -> QASet:
    ids = sorted({r[0] for r in records})
    paths = [folder / "images" / pattern.format(image_id=i, split=split) for i in ids]
    for image_id, path in zip(ids, paths, strict=True):
        if not path.is_file():
            raise ValueError(f"{folder / 'questions.json'}: a question refers to image id {image_id}, but "
                             f"its file {path} does not exist")
    row = {image_id: r for r, image_id in enumerate(ids)}
    return QASet(images=load_images(paths, size), image_ids=ids, image_index=[row[r[0]] for r in records],
                 questions=[r[1] for r in records], answers=[r[2] for r in records],
                 types=[r[3] for r in records])


def load_real(data: str, cfg: dict, seed: int) -> dict[str, QASet]:
    """The three splits of ``--data FOLDER`` (see the module docstring)."""
    root = Path(data)
    if not root.is_dir():
        raise ValueError(f"--data {data}: not a folder (expected train/, test/ and optional val/ inside)")
    for split in ("train", "test"):
        if not (root / split).is_dir():
            raise ValueError(f"--data {data}: missing the {split}/ folder (with questions.json and images/)")
    records = {s: read_records(root / s) for s in SPLITS if (root / s).is_dir()}
    folders = {s: root / s for s in SPLITS}
    if "val" not in records:
        held = split_off([r[0] for r in records["train"]], cfg["val_fraction"], seed)
        records["val"] = [r for r in records["train"] if r[0] in held]
        records["train"] = [r for r in records["train"] if r[0] not in held]
        folders["val"] = folders["train"]
    return {s: to_qaset(records[s], folders[s], folders[s].name, cfg["image_pattern"], cfg["image_size"])
            for s in SPLITS}
