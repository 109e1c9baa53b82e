"""The embedded translation data: a synthetic language pair generated from a seed.

The source language is English-like (SVO, adjectives before the noun, prepositions); the target
is built so that a good translation needs word-level alignment that is not monotonic:

    source clause:  [det adj* noun (prep det adj* noun)?]_subj  verb  [...]_obj  (adverb)?
    target clause:  (adverb')?  [det' noun' adj'* (det' noun' adj'* postp')?]_subj  [...]_obj  verb'

- word order: SOV (the verb jumps over the whole object), the adverb moves from the end to the
  front of its clause, adjectives follow the noun in reverse order, prepositions become
  postpositions after their noun phrase;
- agreement: target nouns have a gender; determiners and adjectives agree with their noun in
  gender and number, verbs with their subject's number (fused suffixes, one token per word);
- clauses are joined by conjunctions, giving source lengths spread over ``min_len..max_len``.

Every source word has exactly one target word, so sentence length is preserved and a model that
aligns well can translate arbitrarily long sentences, while a fixed-size summary of the source
(the no-attention baseline) runs out of capacity as sentences grow (Bahdanau et al. 2015, fig. 2).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

GENERATOR_VERSION = 1
SOURCE_SOUNDS = ("bdfgklmnprstvz", "aeiou")
TARGET_SOUNDS = ("cdhjkmnqrtwxy", "aeiouy")
SOURCE_DETERMINERS = ("the", "my", "your", "our", "their", "this")
SOURCE_CONJUNCTIONS = ("and", "but", "because", "while", "although")
NOUN_SUFFIX = (("u", "un"), ("e", "en"))  # [gender][number]
ADJ_SUFFIX = (("i", "ik"), ("a", "ak"))
VERB_SUFFIX = ("at", "ant")  # [subject number]


@dataclass(frozen=True)
class PairSpec:
    """Parameters of the generated language pair and corpus (all of them key the cache)."""

    seed: int = 0
    nouns: int = 120
    adjectives: int = 50
    verbs: int = 60
    adverbs: int = 20
    prepositions: int = 10
    min_len: int = 5
    max_len: int = 60
    n_train: int = 6000
    n_val: int = 300
    n_test: int = 1000

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "seed" else 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 5 <= self.min_len <= self.max_len:
            raise ValueError(f"need 5 <= min_len <= max_len (the shortest clause has 5 words), got "
                             f"min_len={self.min_len}, max_len={self.max_len}")


def _words(rng: random.Random, n: int, sounds: tuple[str, str], taken: set[str], syllables: int) -> list[str]:
    """``n`` new pseudo-words of ``syllables`` CV syllables plus an optional final consonant."""
    consonants, vowels = sounds
    words: list[str] = []
    while len(words) < n:
        word = "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(syllables))
        word += rng.choice(("", rng.choice(consonants)))
        if word not in taken:
            taken.add(word)
            words.append(word)
    return words


class Lexicon:
    """Source words and their target stems (nouns with a gender), drawn from the seed."""

    def __init__(self, spec: PairSpec, rng: random.Random) -> None:
        src_taken = set(SOURCE_DETERMINERS) | set(SOURCE_CONJUNCTIONS)
        tgt_taken: set[str] = set()
        # Source nouns/verbs take an -s: reserve both forms so no two words ever collide.
        self.nouns = self._with_s(rng, spec.nouns, src_taken)
        self.verbs = self._with_s(rng, spec.verbs, src_taken)
        self.adjectives = _words(rng, spec.adjectives, SOURCE_SOUNDS, src_taken, 2)
        self.adverbs = [w + "ly" for w in _words(rng, spec.adverbs, SOURCE_SOUNDS, src_taken, 2)]
        self.prepositions = _words(rng, spec.prepositions, SOURCE_SOUNDS, src_taken, 1)
        stems = _words(rng, spec.nouns + spec.adjectives + spec.verbs, TARGET_SOUNDS, tgt_taken, 2)
        self.noun_stem = dict(zip(self.nouns, stems, strict=False))
        self.gender = {noun: rng.randrange(2) for noun in self.nouns}
        self.adj_stem = dict(zip(self.adjectives, stems[spec.nouns:], strict=False))
        self.verb_stem = dict(zip(self.verbs, stems[spec.nouns + spec.adjectives:], strict=True))
        # Function words end in "o" (target stems end in a consonant or a vowel, suffixes never in
        # "o" after a consonant), so fused forms and function words cannot collide.
        func = _words(rng, 4 * len(SOURCE_DETERMINERS) + spec.adverbs + spec.prepositions
                      + len(SOURCE_CONJUNCTIONS), TARGET_SOUNDS, tgt_taken, 1)
        func = [w + "o" for w in func]
        self.det = {d: (func[4 * i:4 * i + 2], func[4 * i + 2:4 * i + 4])
                    for i, d in enumerate(SOURCE_DETERMINERS)}  # [gender][number]
        rest = func[4 * len(SOURCE_DETERMINERS):]
        self.adverb = dict(zip(self.adverbs, rest, strict=False))
        self.postposition = dict(zip(self.prepositions, rest[spec.adverbs:], strict=False))
        conjunctions = rest[spec.adverbs + spec.prepositions:]
        self.conjunction = dict(zip(SOURCE_CONJUNCTIONS, conjunctions, strict=True))

    @staticmethod
    def _with_s(rng: random.Random, n: int, taken: set[str]) -> list[str]:
        words = []
        while len(words) < n:
            (word,) = _words(rng, 1, SOURCE_SOUNDS, set(taken), 2)
            if not word.endswith("s") and word + "s" not in taken:
                taken.update((word, word + "s"))
                words.append(word)
        return words


class Generator:
    """Draws aligned (source, target) sentences from a lexicon."""

    def __init__(self, lexicon: Lexicon, rng: random.Random) -> None:
        self.lex, self.rng = lexicon, rng

    def noun_phrase(self, with_pp: bool) -> tuple[list[str], list[str], int]:
        """(source words, target words, number) of one noun phrase."""
        lex, rng = self.lex, self.rng
        det, noun = rng.choice(SOURCE_DETERMINERS), rng.choice(lex.nouns)
        adjs = rng.sample(lex.adjectives, rng.choice((0, 0, 1, 1, 2)))
        num, gender = rng.randrange(2), lex.gender[noun]
        src = [det, *adjs, noun + "s" * num]
        tgt = [lex.det[det][gender][num], lex.noun_stem[noun] + NOUN_SUFFIX[gender][num],
               *(lex.adj_stem[a] + ADJ_SUFFIX[gender][num] for a in reversed(adjs))]
        if with_pp and rng.random() < 0.35:
            prep = rng.choice(lex.prepositions)
            inner_src, inner_tgt, _ = self.noun_phrase(False)
            src += [prep, *inner_src]
            tgt += [*inner_tgt, lex.postposition[prep]]
        return src, tgt, num

    def clause(self) -> tuple[list[str], list[str]]:
        lex, rng = self.lex, self.rng
        subj_src, subj_tgt, num = self.noun_phrase(True)
        obj_src, obj_tgt, _ = self.noun_phrase(True)
        verb = rng.choice(lex.verbs)
        src = [*subj_src, verb + "s" * (1 - num), *obj_src]  # English: "the cat sees", "the cats see"
        tgt = [*subj_tgt, *obj_tgt, lex.verb_stem[verb] + VERB_SUFFIX[num]]
        if rng.random() < 0.5:
            adverb = rng.choice(lex.adverbs)
            src.append(adverb)
            tgt.insert(0, lex.adverb[adverb])
        return src, tgt

    def sentence(self, min_len: int, max_len: int) -> tuple[list[str], list[str]]:
        """Clauses joined by conjunctions until a length drawn uniformly from the range is reached."""
        while True:
            goal = self.rng.randint(min_len, max_len)
            src, tgt = self.clause()
            while len(src) < goal:
                conj = self.rng.choice(SOURCE_CONJUNCTIONS)
                more_src, more_tgt = self.clause()
                src += [conj, *more_src]
                tgt += [self.lex.conjunction[conj], *more_tgt]
            if min_len <= len(src) <= max_len:
                return src, tgt


def generate_pairs(spec: PairSpec) -> dict[str, list[list[str]]]:
    """``{"train"|"val"|"test": [[source, target], ...]}`` (space-separated sentences), distinct
    source sentences across all splits, deterministic for ``spec``."""
    rng = random.Random(spec.seed)
    gen = Generator(Lexicon(spec, rng), rng)
    seen: set[str] = set()
    pairs: list[list[str]] = []
    while len(pairs) < spec.n_train + spec.n_val + spec.n_test:
        src, tgt = gen.sentence(spec.min_len, spec.max_len)
        joined = " ".join(src)
        if joined not in seen:
            seen.add(joined)
            pairs.append([joined, " ".join(tgt)])
    a, b = spec.n_train, spec.n_train + spec.n_val
    return {"train": pairs[:a], "val": pairs[a:b], "test": pairs[b:]}


def cache_params(spec: PairSpec) -> dict:
    return {"generator": "translation-pair", "version": GENERATOR_VERSION, **asdict(spec)}
