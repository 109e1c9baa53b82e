"""The translation LightningModule: cross-entropy training, decoding, BLEU / chrF / BLEU by length.

Metrics (sacreBLEU conventions, 0-100, see ``metrics.py``): corpus BLEU (13a tokenisation) and
chrF on detokenised strings, and BLEU per source-length bucket (``test/bleu_len<a>-<b>``, the
last bucket open-ended ``test/bleu_len<a>+``). Validation decodes greedily (cheap) and logs
``val/bleu``, the monitored metric; the test split is decoded with ``test_decode`` (greedy or
beam search).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from tasks._base import TaskModule, log_train_step
from tasks._text import BOS_ID, PAD_ID, Vocab, detokenize, pad
from tasks.decoding import beam_search, greedy

from .metrics import bleu_of_rows, corpus_chrf, sentence_stats

DECODERS = ("greedy", "beam")


def bucket_names(edges: list[int]) -> list[str]:
    """Upper-inclusive edges [14, 24] -> ['1-14', '15-24', '25+']."""
    lows = [1, *(e + 1 for e in edges)]
    return [f"{lo}-{hi}" for lo, hi in zip(lows, edges, strict=False)] + [f"{lows[-1]}+"]


def bucket_bleu(rows: list[list[int]], src_lens: list[int], edges: list[int]) -> dict[str, float]:
    """BLEU per source-length bucket from the sentences' ``sentence_stats`` rows (buckets without
    sentences are left out)."""
    out = {}
    for i, name in enumerate(bucket_names(edges)):
        lo = 1 if i == 0 else edges[i - 1] + 1
        hi = edges[i] if i < len(edges) else None
        chosen = [j for j, n in enumerate(src_lens) if n >= lo and (hi is None or n <= hi)]
        if chosen:
            out[name] = bleu_of_rows([rows[j] for j in chosen])
    return out


class TranslationModule(TaskModule):
    size_key = "src"
    item_kind = "bleu"  # test items: each sentence's BLEU statistics (``metrics.sentence_stats``)

    def __init__(self, *, model: nn.Module, src_vocab: Vocab, tgt_vocab: Vocab, variant: str, lr: float,
                 weight_decay: float, label_smoothing: float, bucket_edges: list[int], test_decode: str,
                 beam_size: int, length_penalty: float, max_len_ratio: float, max_len_extra: int) -> None:
        super().__init__(lr=lr, weight_decay=weight_decay)
        if test_decode not in DECODERS:
            raise ValueError(f"test_decode must be one of {list(DECODERS)}, got {test_decode!r}")
        if list(bucket_edges) != sorted(set(bucket_edges)) or not all(e >= 1 for e in bucket_edges):
            raise ValueError(f"length_buckets must be increasing positive lengths, got {bucket_edges!r}")
        self.model, self.src_vocab, self.tgt_vocab, self.variant = model, src_vocab, tgt_vocab, variant
        self.label_smoothing = label_smoothing
        self.bucket_edges, self.test_decode = list(bucket_edges), test_decode
        self.beam_size, self.length_penalty = beam_size, length_penalty
        self.max_len_ratio, self.max_len_extra = max_len_ratio, max_len_extra
        self._outputs: list[tuple[str, str, int]] = []

    def _loss(self, batch: dict) -> Tensor:
        logits = self.model(batch["src"], batch["tgt_in"])  # (B, T, V)
        return F.cross_entropy(logits.flatten(0, 1), batch["tgt_out"].flatten(), ignore_index=PAD_ID,
                               label_smoothing=self.label_smoothing)

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        loss = self._loss(batch)
        log_train_step(self, {"train/loss": loss}, batch_size=self.samples_in(batch), prog_bar=True)
        return loss

    def translate(self, src: Tensor, method: str = "greedy") -> list[list[str]]:
        """Decode source ids (B, S) into target tokens (without <eos>)."""
        memory = self.model.encode(src)
        steps = int(src.shape[1] * self.max_len_ratio) + self.max_len_extra
        if method == "beam":
            ids = beam_search(self.model, memory, steps, beam_size=self.beam_size,
                              length_penalty=self.length_penalty, length_norm="gnmt", stop="best")
        else:
            ids, _ = greedy(self.model, memory, steps)
        return [self.tgt_vocab.decode(row) for row in ids.tolist()]

    def evaluate(self, batch: dict, stage: str) -> None:
        """The loss, and the translations decoded greedily (val: cheap) or by ``test_decode`` (test)."""
        self.log(f"{stage}/loss", self._loss(batch), batch_size=self.samples_in(batch))
        method = self.test_decode if stage == "test" else "greedy"
        hyps = [detokenize(t) for t in self.translate(batch["src"], method)]
        self._outputs += zip(hyps, batch["refs"], batch["src_len"].tolist(), strict=True)

    def on_validation_epoch_end(self) -> None:
        hyps, refs, _ = zip(*self._outputs, strict=True) if self._outputs else ((), (), ())
        self._outputs = []
        if hyps:
            rows = sentence_stats(list(hyps), list(refs))  # once: the logged BLEU and its items
            self.log("val/bleu", bleu_of_rows(rows))
            self.add_val_items(rows)

    def on_test_epoch_end(self) -> None:
        hyps, refs, lens = (list(x) for x in zip(*self._outputs, strict=True))
        self._outputs = []
        rows = sentence_stats(hyps, refs)  # once: corpus BLEU, its items and the length buckets
        self.log("test/bleu", bleu_of_rows(rows))
        self.add_test_items(rows, list(refs))
        self.log("test/chrf", corpus_chrf(hyps, refs))
        for name, value in bucket_bleu(rows, lens, self.bucket_edges).items():
            self.log(f"test/bleu_len{name}", value)

    def attention_weights(self, batch: dict) -> dict:
        """Alignments of the model's own greedy translation of ``batch``, for heatmaps.

        Returns ``weights`` (B, T + 1, S): row t is the attention that produced target token t
        (row len(target) produced <eos>; later rows are padding), zero on source padding; and the
        ``source`` and ``target`` tokens per sentence. ``none`` has no attention (ValueError); a
        variant that does not form weights raises ``attention.NotSupportedError``.
        """
        if self.variant == "none":
            raise ValueError("variant 'none' has no attention weights (it decodes from a fixed context)")
        with self.evaluating():
            src = batch["src"].to(self.device)
            target = self.translate(src, "greedy")
            tgt_in = pad([[BOS_ID, *self.tgt_vocab.encode(t)] for t in target]).to(self.device)
            weights = self.model.alignments(src, tgt_in)
        source = [self.src_vocab.decode(row) for row in batch["src"].tolist()]
        return {"weights": weights.cpu(), "source": source, "target": target}
