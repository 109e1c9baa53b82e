"""Captioning data: embedded scenes or COCO-format files, the vocabulary, and loaders.

Training items are (image, reference caption) pairs (the first ``data.train_references`` captions
of each image; null: all), batched so that the captions of one image stay together (one CNN pass
per image); evaluation items are images with all their references.
Captions are tokenised by ``tasks._text.tokenize``; the vocabulary comes from the training
captions only; training captions longer than ``data.max_caption_len`` tokens are cut there.
"""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader

from tasks._cache import cached_json
from tasks._text import BOS_ID, EOS_ID, Vocab, pad, tokenize
from tasks._vision import ImageGroupedBatchSampler, unique_images

from . import scenes
from .real import SPLITS, CaptionSet, load_real


def caption_spec(cfg: dict) -> scenes.CaptionSpec:
    return scenes.CaptionSpec(source=cfg["source"], grid=cfg["grid"], cell=cfg["cell"],
                              min_objects=cfg["min_objects"], max_objects=cfg["max_objects"],
                              colours=tuple(cfg["colours"]), shapes=tuple(cfg["shapes"]),
                              heldout=cfg["heldout"], references=cfg["references"])


def embedded_sets(cfg: dict) -> dict[str, CaptionSet]:
    spec = caption_spec(cfg)
    sizes = {"train": cfg["n_train"], "val": cfg["n_val"], "test": cfg["n_test"]}
    params = scenes.cache_params(spec, sizes, cfg["generator_seed"])
    raw = cached_json("captioning", params, lambda: scenes.generate(spec, sizes, cfg["generator_seed"]))
    return {split: CaptionSet(images=scenes.render(raw[split], spec), image_ids=list(range(len(raw[split]))),
                              captions=[s["captions"] for s in raw[split]],
                              novel=[s["novel"] for s in raw[split]])
            for split in SPLITS}


class TrainPairs(torch.utils.data.Dataset):
    def __init__(self, data: CaptionSet, vocab: Vocab, max_len: int, per_image: int | None) -> None:
        self.data = data
        chosen = [caps[:per_image] for caps in data.captions]
        self.image_index = [i for i, caps in enumerate(chosen) for _ in caps]
        self.ids = [vocab.encode(tokenize(c))[:max_len] for caps in chosen for c in caps]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> int:
        return i

    def collate(self, items: list[int]) -> dict:
        index = torch.tensor([self.image_index[i] for i in items])
        images, rows = unique_images(self.data.images, index)
        ids = [self.ids[i] for i in items]
        return {"images": images, "image_row": rows, "image_index": index,
                "tokens_in": pad([[BOS_ID, *x] for x in ids]), "tokens_out": pad([[*x, EOS_ID] for x in ids])}


class EvalImages(torch.utils.data.Dataset):
    def __init__(self, data: CaptionSet) -> None:
        self.data = data
        self.refs = [[" ".join(tokenize(c)) for c in caps] for caps in data.captions]
        self.image_index = list(range(len(data.captions)))

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, i: int) -> int:
        return i

    def collate(self, items: list[int]) -> dict:
        index = torch.tensor(items)
        return {"images": self.data.images[index], "image_row": torch.arange(len(items)),
                "image_index": index, "refs": [self.refs[i] for i in items],
                "novel": [self.data.novel[i] for i in items]}


class CaptionData(L.LightningDataModule):
    def __init__(self, *, sets: dict[str, CaptionSet], batch_size: int, eval_batch_size: int, min_freq: int,
                 max_caption_len: int, train_references: int | None, seed: int) -> None:
        super().__init__()
        for split in SPLITS:
            if not sets[split].captions:
                raise ValueError(f"the {split} split has no images")
            for image_id, caps in zip(sets[split].image_ids, sets[split].captions, strict=True):
                empty = [c for c in caps if not tokenize(c)]
                if empty:
                    raise ValueError(f"{split} image id {image_id}: caption {empty[0]!r} has no word token")
        if isinstance(max_caption_len, bool) or not isinstance(max_caption_len, int) or max_caption_len < 1:
            raise ValueError(f"max_caption_len must be a positive integer, got {max_caption_len!r}")
        if train_references is not None and (isinstance(train_references, bool) or
                                             not isinstance(train_references, int) or train_references < 1):
            raise ValueError(f"train_references must be a positive integer or null, got {train_references!r}")
        train_captions = (tokenize(c) for caps in sets["train"].captions for c in caps)
        self.vocab = Vocab.build(train_captions, min_freq=min_freq)
        self.train_set = TrainPairs(sets["train"], self.vocab, max_caption_len, train_references)
        self.eval_sets = {s: EvalImages(sets[s]) for s in ("val", "test")}
        self.max_caption_len = max_caption_len
        self.batch_size, self.eval_batch_size, self.seed = batch_size, eval_batch_size, seed

    def train_dataloader(self) -> DataLoader:
        sampler = ImageGroupedBatchSampler(self.train_set.image_index, batch_size=self.batch_size,
                                           shuffle=True, seed=self.seed)
        return DataLoader(self.train_set, batch_sampler=sampler, collate_fn=self.train_set.collate)

    def _eval(self, split: str) -> DataLoader:
        data = self.eval_sets[split]
        return DataLoader(data, batch_size=self.eval_batch_size, collate_fn=data.collate)

    def val_dataloader(self) -> DataLoader:
        return self._eval("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval("test")


def build_data(cfg: dict, data: str | None, seed: int) -> CaptionData:
    sets = embedded_sets(cfg) if data is None else load_real(data, cfg, seed)
    return CaptionData(sets=sets, batch_size=cfg["batch_size"], eval_batch_size=cfg["eval_batch_size"],
                       min_freq=cfg["min_freq"], max_caption_len=cfg["max_caption_len"],
                       train_references=cfg["train_references"], seed=seed)
