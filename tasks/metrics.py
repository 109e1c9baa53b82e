"""Metrics that torchmetrics lacks: CIDEr-D (captioning) and the VQA accuracy (with answer normalisation).

CIDEr-D (Vedantam, Zitnick & Parikh, "CIDEr: Consensus-based Image Description Evaluation",
CVPR 2015; the "-D" form of the MS-COCO evaluation server). For candidate c_i of image i with
references S_i, and n-gram orders n = 1..4:

    g(s)[w]   = count of n-gram w in sentence s
    idf(w)    = log(N) - log(max(1, df(w)))        df: images whose references contain w
    v(s)      = g(s) * idf                          (TF-IDF vector over n-grams of order n)
    sim_n     = sum_w min(v(c)[w], v(s)[w]) v(s)[w] / (|v(c)| |v(s)|) * exp(-(l_c - l_s)^2 / (2 sigma^2))
    CIDEr-D   = 10 / 4 * sum_n  mean_{s in S_i} sim_n(c_i, s)

with N the number of images, l the length in words and sigma = 6. The clipping (min) stops a
candidate from gaining by repeating a rare n-gram; the Gaussian penalises length differences;
document frequencies come from the references of the evaluated set, as on the COCO server.

VQA accuracy (Antol et al., "VQA: Visual Question Answering", ICCV 2015; the v2 evaluation
script): with the n human answers of a question (n = 10 in VQA v2),

    acc(a) = 1/n * sum_{i=1..n} min(1, #{j != i : answer_j == a} / 3)

i.e. min(1, matches / 3) averaged over the n leave-one-out subsets of annotators. Predicted and
human answers are normalised first (``normalize_answer``: lower case, punctuation, number
words to digits, articles dropped, common contractions restored, as in the official script).
With a single human answer (e.g. synthetic data) the formula degenerates, so it is exact match.

Corpus BLEU from per-sentence sufficient statistics (``bleu_sentence_stats``, ``bleu_from_stats``):
a sentence contributes ``[c, r, m_1..m_N, t_1..t_N]`` (hypothesis length, the length of the
reference closest to it, clipped n-gram matches against all its references, hypothesis n-grams);
summed over a corpus they give

    BLEU = 100 * BP * exp(mean_n log(m_n / t_n)),   BP = 1 if c > r else exp(1 - r / c)

(0 when some m_n = 0: no smoothing), the definition of sacreBLEU and of torchmetrics' BLEUScore.
Because the corpus statistic is a sum, a bootstrap resample of test sentences is scored by summing
their rows (Koehn, "Statistical Significance Tests for Machine Translation Evaluation", EMNLP 2004).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

Sentence = str | Sequence[str]  # whitespace-tokenised string or a token list


def _tokens(sentence: Sentence) -> list[str]:
    return sentence.split() if isinstance(sentence, str) else list(sentence)


def ngram_counts(tokens: Sequence[str], n: int) -> Counter:
    """Counts of the n-grams (token tuples) of ``tokens`` (zip stops at the last full n-gram)."""
    return Counter(zip(*(tokens[i:] for i in range(n)), strict=False)) if n > 0 else Counter()


def bleu_sentence_stats(hypothesis: Sequence[str], references: Sequence[Sequence[str]], *,
                        max_n: int = 4) -> list[int]:
    """``[c, r, m_1..m_N, t_1..t_N]`` of one tokenised hypothesis against its tokenised references
    (see the module docstring); the closest reference length wins ties by coming first."""
    if not references:
        raise ValueError("bleu_sentence_stats needs at least one reference")
    c = len(hypothesis)
    r = min((len(ref) for ref in references), key=lambda n: abs(n - c))
    matches, totals = [], []
    for n in range(1, max_n + 1):
        counts = ngram_counts(hypothesis, n)
        best = Counter()
        for ref in references:
            best |= ngram_counts(ref, n)  # clip by the most any one reference has
        matches.append(sum((counts & best).values()))
        totals.append(sum(counts.values()))
    return [c, r, *matches, *totals]


def bleu_from_stats(stats: Sequence[float]) -> float:
    """Corpus BLEU (0-100) from summed ``bleu_sentence_stats`` rows."""
    max_n = (len(stats) - 2) // 2
    if max_n < 1 or len(stats) != 2 + 2 * max_n:
        raise ValueError(f"BLEU statistics have the form [c, r, m_1..m_N, t_1..t_N], got {len(stats)} values")
    c, r = stats[0], stats[1]
    matches, totals = stats[2:2 + max_n], stats[2 + max_n:]
    if c == 0 or min(matches) == 0:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals, strict=True)) / max_n
    brevity = 1.0 if c > r else math.exp(1.0 - r / c)
    return 100.0 * brevity * math.exp(log_precision)


def bleu_n_from_stats(stats: Sequence[float], n: int) -> float:
    """Corpus BLEU-n (0-100, n at most the N of the rows) from summed ``bleu_sentence_stats`` rows:
    BLEU-1..N all come from one pass over the sentences."""
    max_n = (len(stats) - 2) // 2
    if not 1 <= n <= max_n:
        raise ValueError(f"BLEU-{n} needs statistics of 1..{n}-grams; these have 1..{max_n}")
    return bleu_from_stats([stats[0], stats[1], *stats[2:2 + n], *stats[2 + max_n:2 + max_n + n]])


def corpus_stats(rows: Sequence[Sequence[float]]) -> list[float]:
    """The corpus statistic: ``bleu_sentence_stats`` rows summed."""
    return [sum(column) for column in zip(*rows, strict=True)] if rows else []


def _tfidf(counts: Counter, idf: dict[tuple[str, ...], float], default_idf: float) -> dict:
    return {gram: tf * idf.get(gram, default_idf) for gram, tf in counts.items()}


def _norm(vec: dict) -> float:
    return math.sqrt(sum(v * v for v in vec.values()))


def _similarity(cand: dict, ref: dict, length_delta: int, sigma: float) -> float:
    denom = _norm(cand) * _norm(ref)
    if denom == 0.0:
        return 0.0
    clipped = sum(min(value, ref[gram]) * ref[gram] for gram, value in cand.items() if gram in ref)
    return clipped / denom * math.exp(-(length_delta**2) / (2.0 * sigma**2))


def cider_d_scores(candidates: Sequence[Sentence], references: Sequence[Sequence[Sentence]], *,
                   max_n: int = 4, sigma: float = 6.0) -> list[float]:
    """CIDEr-D of each candidate against its references (the corpus defines the idf)."""
    if len(candidates) != len(references):
        raise ValueError(f"got {len(candidates)} candidates but {len(references)} reference sets")
    if any(len(refs) == 0 for refs in references):
        raise ValueError("every candidate needs at least one reference")
    cands = [_tokens(c) for c in candidates]
    refs = [[_tokens(r) for r in group] for group in references]
    log_n = math.log(max(1, len(cands)))
    scores = [0.0] * len(cands)
    for n in range(1, max_n + 1):
        ref_counts = [[ngram_counts(r, n) for r in group] for group in refs]
        df = Counter(gram for group in ref_counts for gram in set().union(*group))
        idf = {gram: log_n - math.log(count) for gram, count in df.items()}
        for i, (cand, group) in enumerate(zip(cands, ref_counts, strict=True)):
            vec = _tfidf(ngram_counts(cand, n), idf, log_n)  # unseen n-gram: df clipped to 1
            sims = [_similarity(vec, _tfidf(rc, idf, log_n), len(cand) - len(r), sigma)
                    for rc, r in zip(group, refs[i], strict=True)]
            scores[i] += sum(sims) / len(sims)
    return [10.0 * s / max_n for s in scores]


def cider_d(candidates: Sequence[Sentence], references: Sequence[Sequence[Sentence]]) -> float:
    """Corpus CIDEr-D: the mean of ``cider_d_scores`` (0 for an empty corpus)."""
    scores = cider_d_scores(candidates, references)
    return sum(scores) / len(scores) if scores else 0.0


_PUNCTUATION = ";/[]\"{}()=+\\_-><@`,?!"
_NUMBER_WORDS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
                 "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_ARTICLES = frozenset({"a", "an", "the"})
_CONTRACTIONS = {
    "arent": "aren't", "cant": "can't", "couldnt": "couldn't", "didnt": "didn't", "doesnt": "doesn't",
    "dont": "don't", "hadnt": "hadn't", "hasnt": "hasn't", "havent": "haven't", "isnt": "isn't",
    "shouldnt": "shouldn't", "wasnt": "wasn't", "werent": "weren't", "wont": "won't",
    "wouldnt": "wouldn't", "im": "i'm", "ive": "i've", "youre": "you're", "theyre": "they're",
    "whats": "what's", "thats": "that's", "theres": "there's", "hes": "he's", "shes": "she's",
}
_DIGIT_COMMA = re.compile(r"(?<=\d),(?=\d)")
_LONE_PERIOD = re.compile(r"\.(?!\d)")  # keeps decimal points ("3.5"), drops sentence periods


def normalize_answer(answer: str) -> str:
    """VQA answer normalisation: "Two dogs." -> "2 dogs", "the Red" -> "red", "dont" -> "don't".

    Punctuation touching a space is deleted, other punctuation becomes a space ("black-white"
    -> "black white"), commas inside numbers go ("1,000" -> "1000"), as in the official script.
    """
    text = _DIGIT_COMMA.sub("", answer.replace("\n", " ").replace("\t", " ").strip().lower())
    for mark in _PUNCTUATION:
        if mark in text:
            touching = f"{mark} " in text or f" {mark}" in text
            text = text.replace(mark, "" if touching else " ")
    text = _LONE_PERIOD.sub("", text)
    words = [_NUMBER_WORDS.get(w, w) for w in text.split()]
    return " ".join(_CONTRACTIONS.get(w, w) for w in words if w not in _ARTICLES)


def vqa_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """Accuracy of one predicted answer against the human answers (see the module docstring)."""
    if not answers:
        raise ValueError("vqa_accuracy needs at least one human answer")
    pred = normalize_answer(prediction)
    matches = [normalize_answer(a) == pred for a in answers]
    if len(matches) == 1:
        return float(matches[0])
    total = sum(matches)
    # Leaving out annotator i removes one match exactly when annotator i matched.
    return sum(min(1.0, (total - m) / 3.0) for m in matches) / len(matches)
