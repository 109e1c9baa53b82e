"""The captioning LightningModule: cross-entropy + the doubly stochastic regulariser; BLEU and CIDEr-D.

Loss (Xu et al. 2015, eq. 14): -sum_t log p(y_t) + lambda * sum_i (1 - sum_t alpha_ti)^2, the
sum over t running over the caption's words (and <eos>), with lambda = ``doubly_stochastic``;
it pushes the decoder to look at every region over the caption. It needs the attention weights,
so with lambda > 0 only variants that return weights apply.

Metrics (0-100 except CIDEr-D, which is on its usual 0-10 scale): corpus BLEU-1..4
over our whitespace tokens and all references, from per-sentence statistics (``tasks.metrics``;
tested equal to torchmetrics' ``BLEUScore``, which took 12 s per test split here) and CIDEr-D
(``tasks.metrics``). Validation decodes greedily and logs ``val/bleu4`` (monitored) and
``val/cider_d``; the test split is decoded with ``test_decode`` (greedy or beam) and logs
``test/bleu1..4``, ``test/cider_d`` and, when the test split has held-out attribute
combinations, the same BLEU-4 / CIDEr-D on the ``_novel`` and the ``_seen`` images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tasks._base import TaskModule, log_train_step
from tasks._text import PAD_ID, Vocab
from tasks.decoding import beam_search, greedy
from tasks.metrics import bleu_n_from_stats, bleu_sentence_stats, cider_d, corpus_stats

DECODERS = ("greedy", "beam")


def bleu(hyps: list[str], refs: list[list[str]], n: int) -> float:
    """Corpus BLEU-n (0-100) of whitespace-tokenised hypotheses against all their references."""
    return bleu_n_from_stats(corpus_stats(_stats(hyps, refs)), n)


def _stats(hyps: list[str], refs: list[list[str]]) -> list[list[int]]:
    return [bleu_sentence_stats(h.split(), [r.split() for r in rs]) for h, rs in zip(hyps, refs, strict=True)]


def coverage_penalty(alphas: Tensor, tokens_out: Tensor) -> Tensor:
    """sum_i (1 - sum_t alpha_ti)^2 over real (non-pad) steps, averaged over the batch."""
    real = (tokens_out != PAD_ID).to(alphas.dtype).unsqueeze(-1)  # (B, T, 1)
    return ((1.0 - (alphas * real).sum(1)) ** 2).sum(-1).mean()


class CaptionModule(TaskModule):
    size_key = "tokens_in"
    item_kind = "bleu"  # test items: each caption's BLEU-4 statistics against its references

    def __init__(self, *, model: nn.Module, vocab: Vocab, lr: float, weight_decay: float,
                 doubly_stochastic: float, test_decode: str, beam_size: int, length_penalty: float,
                 max_caption_len: int) -> None:
        super().__init__(lr=lr, weight_decay=weight_decay)
        if test_decode not in DECODERS:
            raise ValueError(f"test_decode must be one of {list(DECODERS)}, got {test_decode!r}")
        if doubly_stochastic < 0:
            raise ValueError(f"doubly_stochastic must be >= 0, got {doubly_stochastic!r}")
        self.model, self.vocab, self.lam = model, vocab, float(doubly_stochastic)
        self.test_decode, self.beam_size, self.length_penalty = test_decode, beam_size, length_penalty
        self.max_caption_len = max_caption_len
        self._outputs: list[tuple[str, list[str], bool]] = []

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        regularise = self.lam > 0 and self.model.attend is not None
        logits, alphas = self.model(batch["images"], batch["image_row"], batch["tokens_in"],
                                    need_weights=regularise)
        loss = F.cross_entropy(logits.flatten(0, 1), batch["tokens_out"].flatten(), ignore_index=PAD_ID)
        if regularise:
            penalty = coverage_penalty(alphas, batch["tokens_out"])
            log_train_step(self, {"train/coverage": penalty}, batch_size=self.samples_in(batch))
            loss = loss + self.lam * penalty
        log_train_step(self, {"train/loss": loss}, batch_size=self.samples_in(batch), prog_bar=True)
        return loss

    def caption(self, images: Tensor, method: str = "greedy") -> list[list[str]]:
        """Decode captions (tokens, without <eos>) for a stack of images."""
        memory = self.model.encode(images, torch.arange(images.shape[0], device=images.device))
        if method == "beam":
            ids = beam_search(self.model, memory, self.max_caption_len + 1, beam_size=self.beam_size,
                              length_penalty=self.length_penalty, length_norm="length", stop="all")
        else:
            ids, _ = greedy(self.model, memory, self.max_caption_len + 1)
        return [self.vocab.decode(row) for row in ids.tolist()]

    def evaluate(self, batch: dict, stage: str) -> None:
        """Captions decoded greedily (val: cheap) or by ``test_decode`` (test), scored per epoch."""
        method = self.test_decode if stage == "test" else "greedy"
        hyps = [" ".join(t) for t in self.caption(batch["images"], method)]
        self._outputs += zip(hyps, batch["refs"], batch["novel"], strict=True)

    def _scores(self, outputs: list, rows: list[list[int]], stage: str, suffix: str = "",
                orders: tuple[int, ...] = (4,)) -> None:
        """BLEU-n and CIDEr-D of ``outputs``, whose per-caption BLEU statistics are ``rows``."""
        if not outputs:
            return
        hyps, refs = [o[0] for o in outputs], [o[1] for o in outputs]
        corpus = corpus_stats(rows)
        for n in orders:
            self.log(f"{stage}/bleu{n}{suffix}", bleu_n_from_stats(corpus, n))
        self.log(f"{stage}/cider_d{suffix}", cider_d(hyps, refs))

    def on_validation_epoch_end(self) -> None:
        outputs, self._outputs = self._outputs, []
        rows = _stats([o[0] for o in outputs], [o[1] for o in outputs])  # once: the metric and its items
        self._scores(outputs, rows, "val")
        self.add_val_items(rows)

    def on_test_epoch_end(self) -> None:
        outputs, self._outputs = self._outputs, []
        rows = _stats([o[0] for o in outputs], [o[1] for o in outputs])  # once for every subset below
        self._scores(outputs, rows, "test", orders=(1, 2, 3, 4))
        self.add_test_items(rows, [list(refs) for _, refs, _ in outputs])
        if any(o[2] for o in outputs):
            for suffix, novel in (("_novel", True), ("_seen", False)):
                chosen = [i for i, o in enumerate(outputs) if o[2] == novel]
                self._scores([outputs[i] for i in chosen], [rows[i] for i in chosen], "test", suffix)

    def attention_maps(self, batch: dict) -> dict:
        """Where the decoder looked for each word of its own greedy caption, for overlays.

        Returns ``weights`` (B, T, grid, grid) (step t: the region weights used to emit word t;
        steps after <eos> are zero), the ``captions`` (token lists) and ``image_index``. ``none``
        has no attention (ValueError); a variant that does not form weights raises
        ``attention.NotSupportedError``.
        """
        if self.model.attend is None:
            raise ValueError("variant 'none' has no attention maps (it reads the mean-pooled image)")
        with self.evaluating():
            images = batch["images"].to(self.device)
            memory = self.model.encode(images, torch.arange(images.shape[0], device=self.device))
            ids, weights = greedy(self.model, memory, self.max_caption_len + 1, need_weights=True)
        captions = [self.vocab.decode(row) for row in ids.tolist()]
        done = torch.cumsum((ids == PAD_ID).long(), 1) > 0  # pad steps come after <eos>
        weights = weights.masked_fill(done.unsqueeze(-1), 0.0)
        grid = self.model.encoder.grid
        # One row per distinct image of the batch (a training batch repeats images per caption).
        return {"weights": weights.view(*weights.shape[:2], grid, grid).cpu(), "captions": captions,
                "image_index": torch.unique(batch["image_index"]).cpu()}
