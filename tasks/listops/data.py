"""ListOps data: the embedded expressions (``synthetic.py``) or LRA's released TSV files.

``--data FOLDER`` reads LRA's ``basic_train.tsv``, ``basic_val.tsv`` and ``basic_test.tsv`` (the
files ``lra_benchmarks/data/listops.py`` writes): a ``Source<TAB>Target`` header line, then one
expression and its value (0..9) per line, the expression in LRA's parenthesised form
``( ( ( [MAX 2 ) 9 ) ] )``. Tokenisation is LRA's input pipeline: the parentheses are dropped
(they only spell the generator's binary pairing), the rest splits on whitespace into its
15 tokens ``0``-``9``, ``[MIN`` ``[MAX`` ``[MED`` ``[SM`` and ``]``. The vocabulary is that fixed
set, so a token outside it is an error, never an ``<unk>``. An expression longer than
``data.max_length`` tokens is an error too (LRA's pipeline cuts at 2000, which its files never
reach; cutting an expression would change its value). Every split is read in full; ``n_train``,
``n_val``, ``n_test`` size the embedded data only. Problems raise ValueError naming file and line.

Every sequence starts with ``<bos>``, the [CLS] token the classifier reads (LRA's ``pooling_mode``
CLS). Rows keep an expression as one string of space-separated tokens and the datasets as uint8 ids:
LRA's 96,000 training expressions hold about 100M tokens, which as Python lists of token strings
would take gigabytes.
"""

from __future__ import annotations

from pathlib import Path

import torch

from tasks._cache import cached_json
from tasks._text import BOS_ID, SPECIALS, BucketedTextData, Vocab, pad, read_lines

from .synthetic import NUM_CLASSES, SPEC_KEYS, TOKENS, ListOpsSpec, cache_params, generate_listops

SPLITS = ("train", "val", "test")
FILES = {split: f"basic_{split}.tsv" for split in SPLITS}
HEADER = ["Source", "Target"]
Rows = list[tuple[str, int]]  # (tokens joined by single spaces, value)
VOCAB = Vocab([*SPECIALS, *TOKENS])


def source_tokens(source: str) -> list[str]:
    """LRA's tokenisation: drop the parentheses, split on whitespace."""
    return source.replace("(", " ").replace(")", " ").split()


def read_lra(path: str | Path, max_length: int) -> Rows:
    """The (tokens joined by spaces, value) rows of one LRA ListOps TSV file."""
    what = "a Source<TAB>Target header, then expression<TAB>value lines (LRA ListOps)"
    lines = read_lines(path, what=what)
    if [f.strip() for f in lines[0].split("\t")] != HEADER:
        raise ValueError(f"{path}:1: expected the header 'Source<TAB>Target' (LRA ListOps), "
                         f"got {lines[0][:60]!r}")
    known, rows = set(TOKENS), []
    for number, line in enumerate(lines[1:], start=2):
        where, fields = f"{path}:{number}", line.split("\t")
        if len(fields) != 2:
            raise ValueError(f"{where}: expected 2 tab-separated fields (expression, value), "
                             f"got {len(fields)}")
        toks, value = source_tokens(fields[0]), fields[1].strip()
        if not toks:
            raise ValueError(f"{where}: empty expression")
        unknown = sorted(set(toks) - known)
        if unknown:
            raise ValueError(f"{where}: {unknown[:3]} not ListOps tokens (expected {' '.join(TOKENS)} "
                             "and parentheses)")
        if len(toks) > max_length:
            raise ValueError(f"{where}: the expression has {len(toks)} tokens, more than data.max_length="
                             f"{max_length} (raise it: --set data.max_length={len(toks)})")
        if not (value.isdigit() and int(value) < NUM_CLASSES):
            raise ValueError(f"{where}: value {fields[1]!r} is not a digit 0..9")
        rows.append((" ".join(toks), int(value)))
    if not rows:
        raise ValueError(f"{path}: no expressions after the header")
    return rows


def real_rows(data: str, max_length: int) -> dict[str, Rows]:
    folder = Path(data)
    names = ", ".join(FILES.values())
    if not folder.is_dir():
        raise ValueError(f"--data {data}: expected a folder holding {names} (LRA ListOps)")
    missing = [name for name in FILES.values() if not (folder / name).is_file()]
    if missing:
        raise ValueError(f"--data {data}: missing {', '.join(missing)} (expected {names})")
    return {split: read_lra(folder / name, max_length) for split, name in FILES.items()}


def spec_of(cfg: dict) -> ListOpsSpec:
    return ListOpsSpec(seed=cfg["generator_seed"], **{k: cfg[k] for k in SPEC_KEYS if k != "seed"})


def embedded_rows(cfg: dict) -> dict[str, Rows]:
    """The generated expressions of the data section (``generator_seed`` and the ``ListOpsSpec`` knobs)."""
    spec = spec_of(cfg)
    raw = cached_json("listops", cache_params(spec), lambda: generate_listops(spec))
    return {split: [(source, int(value)) for source, value in raw[split]] for split in SPLITS}


class ExpressionDataset(torch.utils.data.Dataset):
    def __init__(self, rows: Rows) -> None:
        # (1 + tokens,) each; the 19 ids fit a byte
        self.ids = [torch.tensor([BOS_ID, *VOCAB.encode(source.split())], dtype=torch.uint8)
                    for source, _ in rows]
        self.labels = [value for _, value in rows]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.ids[i], self.labels[i]


def collate(items: list[tuple[torch.Tensor, int]]) -> dict:
    ids, labels = zip(*items, strict=True)
    return {"ids": pad(ids), "label": torch.tensor(labels)}  # (B, L), (B,)


class ListOpsData(BucketedTextData):
    """Splits and loaders over the fixed vocabulary; loads eagerly so bad data raises here."""

    collate = staticmethod(collate)

    def __init__(self, *, rows: dict[str, Rows], batch_size: int, eval_batch_size: int, seed: int) -> None:
        super().__init__()
        for split in SPLITS:
            if not rows.get(split):
                raise ValueError(f"the {split} split is empty: every split needs at least one expression")
        self.vocab = VOCAB
        self.sets = {split: ExpressionDataset(rows[split]) for split in SPLITS}
        self.max_len = max(len(ids) for s in SPLITS for ids in self.sets[s].ids)  # [CLS] included
        self.set_loading(batch_size, eval_batch_size, seed)


def build_data(cfg: dict, data: str | None, seed: int) -> ListOpsData:
    rows = embedded_rows(cfg) if data is None else real_rows(data, cfg["max_length"])
    return ListOpsData(rows=rows, batch_size=cfg["batch_size"], eval_batch_size=cfg["eval_batch_size"],
                       seed=seed)
