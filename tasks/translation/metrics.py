"""Corpus BLEU and chrF with the definitions of sacreBLEU (and of torchmetrics' implementations).

torchmetrics' ``SacreBLEUScore`` and ``CHRFScore`` give these numbers too, but they count n-grams
into tensors one element at a time: about 12 s for BLEU and minutes for chrF on 1000 sentences of
60 words on one CPU core, more than training a quick config. These functions count with
``collections.Counter`` instead; the tests check them against torchmetrics on small corpora.

BLEU (Papineni et al., ACL 2002; sacreBLEU: Post, WMT 2018), one reference per sentence:

    p_n  = sum_s |ngrams_n(hyp_s) & ngrams_n(ref_s)| / sum_s |ngrams_n(hyp_s)|     (clipped counts)
    BP   = 1 if c > r else exp(1 - r / c)            (c, r: total hypothesis / reference words)
    BLEU = 100 * BP * exp(mean_{n=1..4} log p_n)     (0 if some p_n = 0: no smoothing)

after sacreBLEU's default ``13a`` tokenisation (mteval-v13a). chrF (Popovic, WMT 2015), six
character orders, no word n-grams (chrF, not chrF++), spaces removed, beta = 2:

    P_n, R_n = corpus character n-gram precision and recall,  F_n = (1 + b^2) P_n R_n / (b^2 P_n + R_n)
    chrF = 100 * mean_{n=1..6} F_n

This equals ``CHRFScore(n_word_order=0)`` except on a corpus holding a sentence that shares no
character with its reference: torchmetrics then leaves that reference's n-grams out of the
recall, we count them (a translation that misses a whole sentence should lose recall).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from tasks.metrics import bleu_from_stats, bleu_sentence_stats

_13A_RULES = (
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),  # most punctuation becomes a token
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),  # periods and commas, except inside numbers
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),
)


def tokenize_13a(line: str) -> list[str]:
    """sacreBLEU's default tokenisation (the rules of mteval-v13a.pl)."""
    text = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in text:
        text = text.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    text = f" {text} "
    for pattern, repl in _13A_RULES:
        text = pattern.sub(repl, text)
    return text.split()


def _ngrams(text: str, n: int) -> Counter:
    """Counts of the character n-grams (substrings) of ``text``."""
    return Counter(text[i:i + n] for i in range(len(text) - n + 1))


def _check(hyps: Sequence[str], refs: Sequence[str]) -> None:
    if len(hyps) != len(refs):
        raise ValueError(f"got {len(hyps)} hypotheses but {len(refs)} references")


def sentence_stats(hyps: Sequence[str], refs: Sequence[str], *, max_order: int = 4) -> list[list[int]]:
    """Per sentence, BLEU's sufficient statistics ``[c, r, m_1..m_4, t_1..t_4]`` after 13a
    tokenisation (``tasks.metrics.bleu_sentence_stats``); their column sums give ``corpus_bleu``."""
    _check(hyps, refs)
    return [bleu_sentence_stats(tokenize_13a(h), [tokenize_13a(r)], max_n=max_order)
            for h, r in zip(hyps, refs, strict=True)]


def corpus_bleu(hyps: Sequence[str], refs: Sequence[str], *, max_order: int = 4) -> float:
    """Corpus BLEU (0-100) of hypothesis strings against one reference string each."""
    return bleu_of_rows(sentence_stats(hyps, refs, max_order=max_order), max_order=max_order)


def bleu_of_rows(rows: Sequence[Sequence[int]], *, max_order: int = 4) -> float:
    """Corpus BLEU (0-100) from ``sentence_stats`` rows (of any subset of the sentences)."""
    return bleu_from_stats([sum(column) for column in zip(*rows, strict=True)] if rows else
                           [0] * (2 + 2 * max_order))


def corpus_chrf(hyps: Sequence[str], refs: Sequence[str], *, order: int = 6, beta: float = 2.0) -> float:
    """Corpus chrF (0-100): character n-gram F-score, statistics summed over the corpus."""
    _check(hyps, refs)
    matches, hyp_total, ref_total = [0] * order, [0] * order, [0] * order
    for hyp, ref in zip(hyps, refs, strict=True):
        h, r = hyp.strip().replace(" ", ""), ref.strip().replace(" ", "")
        for n in range(1, order + 1):
            hc, rc = _ngrams(h, n), _ngrams(r, n)
            matches[n - 1] += sum((hc & rc).values())
            hyp_total[n - 1] += sum(hc.values())
            ref_total[n - 1] += sum(rc.values())
    f_sum, b2 = 0.0, beta**2
    for m, h, r in zip(matches, hyp_total, ref_total, strict=True):
        precision, recall = (m / h if h else 0.0), (m / r if r else 0.0)
        f_sum += (1 + b2) * precision * recall / max(b2 * precision + recall, 1e-16)
    return 100.0 * f_sum / order
