"""VQA data: the embedded Sort-of-CLEVR splits or real files, vocabularies and loaders.

Answers are classes: the ``data.max_answers`` most frequent training answers (after
``tasks.metrics.normalize_answer``). A question's training target is the distribution of its
human answers' soft scores min(1, count / 3) over those classes (one answer: one-hot); training
questions with no answer in the list are dropped, evaluation keeps them (they score 0).
Batches keep the questions of one image together, so the CNN sees each image once per batch.
"""

from __future__ import annotations

from collections import Counter

import lightning as L
import torch
from torch.utils.data import DataLoader

from tasks._cache import cached_json
from tasks._text import Vocab, pad, tokenize
from tasks._vision import ImageGroupedBatchSampler, unique_images
from tasks.metrics import normalize_answer

from . import sortofclevr
from .real import SPLITS, QASet, load_real


def scene_spec(cfg: dict) -> sortofclevr.SceneSpec:
    return sortofclevr.SceneSpec(grid=cfg["grid"], cell=cfg["cell"], num_objects=cfg["num_objects"],
                                 colours=tuple(cfg["colours"]), shapes=tuple(cfg["shapes"]),
                                 questions_per_type=cfg["questions_per_type"])


def embedded_sets(cfg: dict) -> dict[str, QASet]:
    spec = scene_spec(cfg)
    sizes = {"train": cfg["n_train"], "val": cfg["n_val"], "test": cfg["n_test"]}
    params = sortofclevr.cache_params(spec, sizes, cfg["generator_seed"])
    scenes = cached_json("vqa", params, lambda: sortofclevr.generate(spec, sizes, cfg["generator_seed"]))
    sets = {}
    for split in SPLITS:
        qs = [(i, q) for i, scene in enumerate(scenes[split]) for q in scene["questions"]]
        sets[split] = QASet(images=sortofclevr.render(scenes[split], spec),
                            image_ids=list(range(len(scenes[split]))),
                            image_index=[i for i, _ in qs], questions=[q[1] for _, q in qs],
                            answers=[[q[2]] for _, q in qs], types=[q[0] for _, q in qs])
    return sets


def soft_target(answers: list[str], classes: dict[str, int]) -> dict[int, float]:
    counts = Counter(normalize_answer(a) for a in answers)
    single = len(answers) == 1
    scores = {classes[a]: 1.0 if single else min(1.0, n / 3.0) for a, n in counts.items() if a in classes}
    total = sum(scores.values())
    return {c: s / total for c, s in scores.items()}


class EncodedSplit(torch.utils.data.Dataset):
    """Token ids and answer targets of one split; ``collate`` turns question indices into a batch."""

    def __init__(self, qa: QASet, vocab: Vocab, classes: dict[str, int], *, drop_unanswerable: bool,
                 with_text: bool = True) -> None:
        self.with_text = with_text  # answers and question types, for evaluation; training needs tensors only
        targets = [soft_target(a, classes) for a in qa.answers]
        keep = [i for i, t in enumerate(targets) if t or not drop_unanswerable]
        self.qa, self.keep, self.num_classes = qa, keep, len(classes)
        self.ids = [vocab.encode(tokenize(qa.questions[i])) for i in keep]
        self.targets = [targets[i] for i in keep]
        self.image_index = [qa.image_index[i] for i in keep]

    def __len__(self) -> int:
        return len(self.keep)

    def __getitem__(self, i: int) -> int:
        return i

    def collate(self, items: list[int]) -> dict:
        index = torch.tensor([self.image_index[i] for i in items])
        images, rows = unique_images(self.qa.images, index)
        target = torch.zeros(len(items), self.num_classes)
        for row, i in enumerate(items):
            for c, p in self.targets[i].items():
                target[row, c] = p
        ids = [self.ids[i] for i in items]
        batch = {"images": images, "image_row": rows, "image_index": index, "question": pad(ids),
                 "lengths": torch.tensor([len(x) for x in ids]), "target": target}
        if self.with_text:  # Python lists: Lightning walks them element by element on every step
            batch["answers"] = [self.qa.answers[self.keep[i]] for i in items]
            batch["types"] = [self.qa.types[self.keep[i]] for i in items]
        return batch


class VQAData(L.LightningDataModule):
    """Vocabularies from the training split, encoded splits and image-grouped loaders."""

    def __init__(self, *, sets: dict[str, QASet], batch_size: int, eval_batch_size: int, min_freq: int,
                 max_answers: int, seed: int) -> None:
        super().__init__()
        for split in SPLITS:
            if not sets[split].questions:
                raise ValueError(f"the {split} split has no questions")
            empty = [q for q in sets[split].questions if not tokenize(q)]
            if empty:
                raise ValueError(f"{split} question {empty[0]!r} has no word token")
        train = sets["train"]
        self.vocab = Vocab.build((tokenize(q) for q in train.questions), min_freq=min_freq)
        counts = Counter(normalize_answer(a) for answers in train.answers for a in answers)
        ranked = sorted(counts, key=lambda a: (-counts[a], a))[:max_answers]
        self.answer_list = ranked
        classes = {a: i for i, a in enumerate(ranked)}
        self.sets = {s: EncodedSplit(sets[s], self.vocab, classes, drop_unanswerable=s == "train",
                                   with_text=s != "train")
                     for s in SPLITS}
        if not len(self.sets["train"]):
            raise ValueError("no training question has an answer among the answer classes")
        self.types = sorted({t for s in SPLITS for t in sets[s].types})
        self.image_shape = tuple(train.images.shape[1:])
        self.batch_size, self.eval_batch_size, self.seed = batch_size, eval_batch_size, seed

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        data = self.sets[split]
        sampler = ImageGroupedBatchSampler(data.image_index, shuffle=shuffle, seed=self.seed,
                                           batch_size=self.batch_size if shuffle else self.eval_batch_size)
        return DataLoader(data, batch_sampler=sampler, collate_fn=data.collate)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False)


def build_data(cfg: dict, data: str | None, seed: int) -> VQAData:
    sets = embedded_sets(cfg) if data is None else load_real(data, cfg, seed)
    return VQAData(sets=sets, batch_size=cfg["batch_size"], eval_batch_size=cfg["eval_batch_size"],
                   min_freq=cfg["min_freq"], max_answers=cfg["max_answers"], seed=seed)
