"""Translation data: the embedded language pair or parallel text in the Multi30k layout.

Real data (``--data FOLDER``): ``FOLDER/{train,val,test}.{src_lang}`` and ``.{tgt_lang}``, one
sentence per line, line i of the source file translating line i of the target file (the layout
of Multi30k; IWSLT/WMT extracts can be renamed into it). Sentences are tokenised with
``tasks._text.tokenize``; the vocabularies come from the training split only.

Batches are dicts: ``src`` (B, S), ``tgt_in`` = <bos> y (B, T), ``tgt_out`` = y <eos> (B, T)
(0-padded), ``refs`` (the reference sentences as strings, for BLEU) and ``src_len`` (B,).
"""

from __future__ import annotations

from pathlib import Path

import torch

from tasks._cache import cached_json
from tasks._text import BOS_ID, EOS_ID, BucketedTextData, Vocab, detokenize, pad, read_lines
from tasks._text import tokenize as word_tokenize

from .synthetic import PairSpec, cache_params, generate_pairs

SPLITS = ("train", "val", "test")
Pairs = dict[str, list[tuple[list[str], list[str]]]]  # split -> [(source tokens, target tokens)]


def embedded_pairs(spec: PairSpec) -> Pairs:
    """The generated language pair (cached in the embedded-data cache, ``tasks._cache``)."""
    raw = cached_json("translation", cache_params(spec), lambda: generate_pairs(spec))
    return {split: [(src.split(), tgt.split()) for src, tgt in raw[split]] for split in SPLITS}


def parallel_pairs(folder: str | Path, src_lang: str, tgt_lang: str, *, lowercase: bool) -> Pairs:
    """Read ``folder/{split}.{lang}`` files; mismatched line counts or empty lines raise ValueError."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"--data {folder}: expected a folder with train/val/test.{{{src_lang},{tgt_lang}}} "
                         "files (the Multi30k layout)")
    if src_lang == tgt_lang:
        raise ValueError(f"src_lang and tgt_lang must differ, both are {src_lang!r}")
    pairs: Pairs = {}
    for split in SPLITS:
        src_path, tgt_path = folder / f"{split}.{src_lang}", folder / f"{split}.{tgt_lang}"
        src, tgt = read_lines(src_path), read_lines(tgt_path)
        if len(src) != len(tgt):
            raise ValueError(f"parallel files differ in length: {src_path} has {len(src)} lines, "
                             f"{tgt_path} has {len(tgt)}")
        pairs[split] = [(word_tokenize(s, lowercase=lowercase), word_tokenize(t, lowercase=lowercase))
                        for s, t in zip(src, tgt, strict=True)]
        _check_tokens(pairs[split], src_path, tgt_path)
    return pairs


def _check_tokens(pairs: list[tuple[list[str], list[str]]], src_path: Path, tgt_path: Path) -> None:
    for number, (src, tgt) in enumerate(pairs, start=1):
        for path, tokens in ((src_path, src), (tgt_path, tgt)):
            if not tokens:
                raise ValueError(f"{path}:{number}: no word or punctuation token in this line")


class ParallelDataset(torch.utils.data.Dataset):
    def __init__(self, pairs: list[tuple[list[str], list[str]]], src_vocab: Vocab, tgt_vocab: Vocab) -> None:
        self.src = [src_vocab.encode(s) for s, _ in pairs]
        self.tgt = [tgt_vocab.encode(t) for _, t in pairs]
        self.refs = [detokenize(t) for _, t in pairs]  # the real words (not <unk>) for BLEU

    def __len__(self) -> int:
        return len(self.src)

    def __getitem__(self, i: int) -> tuple[list[int], list[int], str]:
        return self.src[i], self.tgt[i], self.refs[i]


def collate(items: list[tuple[list[int], list[int], str]]) -> dict:
    src, tgt, refs = zip(*items, strict=True)
    return {"src": pad(src), "tgt_in": pad([[BOS_ID, *t] for t in tgt]),
            "tgt_out": pad([[*t, EOS_ID] for t in tgt]), "refs": list(refs),
            "src_len": torch.tensor([len(s) for s in src])}


class TranslationData(BucketedTextData):
    """Splits, vocabularies (training split only) and loaders. Loads eagerly: bad data raises here,
    before training starts."""

    collate = staticmethod(collate)

    def __init__(self, *, pairs: Pairs, batch_size: int, eval_batch_size: int, min_freq: int,
                 max_vocab: int | None, seed: int) -> None:
        super().__init__()
        for split in SPLITS:
            if not pairs.get(split):
                raise ValueError(f"the {split} split is empty: every split needs at least one sentence pair")
        self.src_vocab = Vocab.build((s for s, _ in pairs["train"]), min_freq=min_freq, max_size=max_vocab)
        self.tgt_vocab = Vocab.build((t for _, t in pairs["train"]), min_freq=min_freq, max_size=max_vocab)
        # Evaluation sets are sorted by source length (corpus metrics do not depend on order):
        # batches of similar lengths decode faster.
        ordered = {s: p if s == "train" else sorted(p, key=lambda st: len(st[0])) for s, p in pairs.items()}
        self.sets = {s: ParallelDataset(ordered[s], self.src_vocab, self.tgt_vocab) for s in SPLITS}
        self.set_loading(batch_size, eval_batch_size, seed)
        self.max_src_len = max(len(s) for split in SPLITS for s in self.sets[split].src)
        self.max_tgt_len = max(len(t) for split in SPLITS for t in self.sets[split].tgt) + 1

    def train_lengths(self) -> list[int]:
        return [len(s) for s in self.sets["train"].src]


def build_data(cfg: dict, data: str | None, seed: int) -> TranslationData:
    """The data module from the config's ``data`` section (embedded unless ``data`` is a folder)."""
    if data is None:
        spec = PairSpec(seed=cfg["generator_seed"], nouns=cfg["nouns"], adjectives=cfg["adjectives"],
                        verbs=cfg["verbs"], adverbs=cfg["adverbs"], prepositions=cfg["prepositions"],
                        min_len=cfg["min_len"], max_len=cfg["max_len"], n_train=cfg["n_train"],
                        n_val=cfg["n_val"], n_test=cfg["n_test"])
        pairs = embedded_pairs(spec)
    else:
        pairs = parallel_pairs(data, cfg["src_lang"], cfg["tgt_lang"], lowercase=cfg["lowercase"])
    return TranslationData(pairs=pairs, batch_size=cfg["batch_size"], eval_batch_size=cfg["eval_batch_size"],
                           min_freq=cfg["min_freq"], max_vocab=cfg["max_vocab"], seed=seed)
