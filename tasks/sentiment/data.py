"""Sentiment data: the embedded templated reviews, UCI ``sentence<TAB>label`` files, SST-2 TSV.

``--data`` takes
- one file or several, comma-separated (``--data amazon.txt,yelp.txt``), or a folder plus the
  config key ``data.files`` naming the files in it: the files are pooled and split into
  train/val/test by the run's seed (``data.split_seed`` overrides it), stratified by label;
- a folder holding ``train.tsv`` and ``dev.tsv`` (the GLUE SST-2 layout) when ``data.files`` is
  empty: ``dev.tsv`` is the test split (GLUE's ``test.tsv`` has no labels) and the validation
  split is drawn from ``train.tsv``.
A file is either UCI (no header; each line ``sentence<TAB>label``, read with ``csv.QUOTE_NONE``
so quotes are plain characters) or SST-2 style (a header line naming ``sentence`` and ``label``
columns). Labels are integers 0..num_classes-1. Problems raise ValueError with file and line.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import torch

from tasks._cache import cached_json
from tasks._text import BOS_ID, BucketedTextData, Vocab, pad, read_lines, tokenize

from .synthetic import SPEC_KEYS, ReviewSpec, cache_params, generate_reviews

SPLITS = ("train", "val", "test")
Rows = list[tuple[str, int]]  # (text, label)


def _fields(line: str) -> list[str]:
    return next(csv.reader([line], delimiter="\t", quoting=csv.QUOTE_NONE))


def _label(text: str, num_classes: int, where: str) -> int:
    value = text.strip()
    if not (value.isdigit() and int(value) < num_classes):
        raise ValueError(f"{where}: label {text!r} is not in the label set {list(range(num_classes))}")
    return int(value)


def read_labelled(path: str | Path, num_classes: int) -> Rows:
    """(sentence, label) rows of a UCI file (no header) or an SST-2 style TSV (with a header)."""
    lines = read_lines(path, what="sentence<TAB>label")
    head = [f.strip().lower() for f in _fields(lines[0])]
    if "sentence" in head and "label" in head:
        s_col, l_col, width, start = head.index("sentence"), head.index("label"), len(head), 2
        body = lines[1:]
    else:
        s_col, l_col, width, start, body = 0, 1, 2, 1, lines
    rows = []
    for number, line in enumerate(body, start=start):
        fields = _fields(line)
        where = f"{path}:{number}"
        if len(fields) != width:
            layout = "sentence<TAB>label" if width == 2 else "as in the header"
            raise ValueError(f"{where}: expected {width} tab-separated fields ({layout}), got {len(fields)}")
        if not fields[s_col].strip():
            raise ValueError(f"{where}: empty sentence")
        rows.append((fields[s_col], _label(fields[l_col], num_classes, where)))
    if not rows:
        raise ValueError(f"{path}: no labelled sentences after the header")
    return rows


def stratified_split(rows: Rows, fractions: tuple[float, ...], seed: int) -> list[Rows]:
    """Split rows into len(fractions) parts with the same label mix (the last part takes the rest)."""
    rng = random.Random(seed)
    parts: list[Rows] = [[] for _ in fractions]
    for label in sorted({y for _, y in rows}):
        group = [r for r in rows if r[1] == label]
        rng.shuffle(group)
        start = 0
        for i, fraction in enumerate(fractions):
            stop = len(group) if i == len(fractions) - 1 else start + round(fraction * len(group))
            parts[i] += group[start:stop]
            start = stop
    for part in parts:
        rng.shuffle(part)
    return parts


def real_rows(data: str, cfg: dict, seed: int) -> dict[str, Rows]:
    """The three splits of ``--data`` (see the module docstring)."""
    split_seed = seed if cfg["split_seed"] is None else cfg["split_seed"]
    val, test = cfg["val_fraction"], cfg["test_fraction"]
    folder = Path(data)
    files = [Path(p) for p in data.split(",")] if "," in data or folder.is_file() else []
    if folder.is_dir() and cfg["files"]:
        files = [folder / name for name in cfg["files"]]
    elif folder.is_dir():
        if not (folder / "train.tsv").is_file():
            raise ValueError(f"--data {folder}: a folder needs data.files (files to pool and split) or "
                             "train.tsv and dev.tsv (the SST-2 layout)")
        train = read_labelled(folder / "train.tsv", cfg["num_classes"])
        train, dev = stratified_split(train, (1 - val, val), split_seed)
        return {"train": train, "val": dev, "test": read_labelled(folder / "dev.tsv", cfg["num_classes"])}
    if not files:
        raise ValueError(f"--data {data}: no such file or folder")
    rows = [row for path in files for row in read_labelled(path, cfg["num_classes"])]
    parts = stratified_split(rows, (1 - val - test, val, test), split_seed)
    return dict(zip(SPLITS, parts, strict=True))


def embedded_rows(cfg: dict) -> dict[str, Rows]:
    """The generated reviews of the data section (``generator_seed`` and the ``ReviewSpec`` knobs)."""
    spec = ReviewSpec(seed=cfg["generator_seed"], **{k: cfg[k] for k in SPEC_KEYS if k != "seed"})
    raw = cached_json("sentiment", cache_params(spec), lambda: generate_reviews(spec))
    return {split: [(text, int(label)) for text, label in raw[split]] for split in SPLITS}


class TokenDataset(torch.utils.data.Dataset):
    def __init__(self, rows: Rows, vocab: Vocab, max_tokens: int, cls_token: bool) -> None:
        # The transformer reads a leading <bos> as its [CLS] token (the ``none`` pooling).
        prefix = [BOS_ID] if cls_token else []
        self.ids = [prefix + vocab.encode(tokenize(text))[:max_tokens] for text, _ in rows]
        self.labels = [label for _, label in rows]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> tuple[list[int], int]:
        return self.ids[i], self.labels[i]


def collate(items: list[tuple[list[int], int]]) -> dict:
    ids, labels = zip(*items, strict=True)
    return {"ids": pad(ids), "label": torch.tensor(labels)}


class SentimentData(BucketedTextData):
    """Splits, vocabulary (training split only) and loaders; loads eagerly so bad data raises here."""

    collate = staticmethod(collate)

    def __init__(self, *, rows: dict[str, Rows], batch_size: int, eval_batch_size: int, min_freq: int,
                 max_vocab: int | None, max_tokens: int, cls_token: bool, seed: int) -> None:
        super().__init__()
        for split in SPLITS:
            if not rows.get(split):
                raise ValueError(f"the {split} split is empty: every split needs at least one sentence "
                                 "(more data, or larger val/test fractions)")
        for split in SPLITS:
            for number, (text, _) in enumerate(rows[split], start=1):
                if not tokenize(text):
                    raise ValueError(f"{split} sentence {number} {text!r} has no word or punctuation token")
        train_tokens = (tokenize(t) for t, _ in rows["train"])
        self.vocab = Vocab.build(train_tokens, min_freq=min_freq, max_size=max_vocab)
        self.sets = {s: TokenDataset(rows[s], self.vocab, max_tokens, cls_token) for s in SPLITS}
        self.max_len = max(len(ids) for s in SPLITS for ids in self.sets[s].ids)
        self.set_loading(batch_size, eval_batch_size, seed)


def build_data(cfg: dict, data: str | None, seed: int, *, cls_token: bool) -> SentimentData:
    rows = embedded_rows(cfg) if data is None else real_rows(data, cfg, seed)
    return SentimentData(rows=rows, batch_size=cfg["batch_size"], eval_batch_size=cfg["eval_batch_size"],
                         min_freq=cfg["min_freq"], max_vocab=cfg["max_vocab"], max_tokens=cfg["max_tokens"],
                         cls_token=cls_token, seed=seed)
