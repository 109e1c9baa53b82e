"""The embedded sentiment data: templated product reviews where one sentence, read by its scope,
decides the label.

A review names its product in its first sentence, then shuffles neutral sentences (shipping,
colours, who it was bought for) and *distractor opinions* (what a friend said, what the reviewer
expected, other products the reviewer owns), with exactly one *verdict* sentence of the reviewer
on the review's product at a random position:

    "i bought a kettle for my cousin in may . in the end my friend found it awful . overall the
     toaster is great . although the lid is great , overall the kettle is not reliable . it
     arrived on a friday in a red box ."                                           -> negative

The label is the polarity of the verdict's main clause. What makes it hard (each a knob of
``ReviewSpec`` and of the presets' data section):

- ``min_sentences``/``max_sentences``: how many neutral and distractor sentences surround the
  verdict. Long reviews make a classifier that reads one summary vector at the end (the final
  LSTM state, the ``none`` baseline) carry the verdict across the rest.
- ``distractor_rate``: share of those sentences that are opinions, with the same sentiment words
  and negations as verdicts but a polarity independent of the label, so counting positive and
  negative words, or averaging them (the ``uniform`` baseline), is not enough.
- ``hard_distractor_rate``: share of the distractors that imitate a verdict ("in the end my
  friend found it awful", "my sister thinks this kettle is great", "overall my old kettle was
  poor"): only the subject (the reviewer, this product, now) separates them from the verdict.
- ``other_product_rate``: share of the distractors that are a verdict's very words about another
  product ("overall the toaster is great" in a review of a kettle): only the product, named in
  the first sentence, tells them from the verdict, so each opinion must be matched against the
  review's product across the whole review.
- ``negation_rate``: chance that a clause (verdict, concession or distractor) is negated, which
  flips its polarity; the negation is either next to the adjective ("not bad", "never
  reliable", "not at all flimsy") or several words before it ("i do not think this kettle is
  great", "i would not say ...").
- ``contrast_rate``: chance that the verdict holds a concession of the opposite polarity,
  before or after its main clause ("although the lid is great , overall this kettle is awful",
  "... but in the end i found it ...", "overall this kettle is poor , although the lid is
  great"): the main clause decides, the concession's words point the other way.
- ``not_only_rate``: chance that the verdict is a "not only ... but also" sentence: it holds
  a "not" that negates nothing, both adjectives carry the label's polarity.
- ``lexicon_size``/``lexicon_zipf``: how many sentiment words per polarity, and how skewed their
  frequencies are (word r ~ 1 / (r + 1) ** zipf, as in natural text): with a long skewed tail
  some verdicts use a word the training reviews hold only a few times (its polarity must be
  learnt from those few, while distractors use it with either polarity).

Every label follows from the text by these rules (no label noise); the difficulty is in the
scopes and the look-alike distractors.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, fields

GENERATOR_VERSION = 2
PRODUCTS = ("phone", "headset", "charger", "blender", "camera", "laptop", "speaker", "kettle", "keyboard",
            "printer", "router", "toaster", "monitor", "vacuum", "lamp", "mixer")
PEOPLE = ("sister", "brother", "friend", "neighbour", "boss", "father", "mother", "cousin", "roommate",
          "wife", "husband", "son", "daughter")
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = ("january", "march", "may", "june", "august", "october", "december")
COLOURS = ("red", "black", "white", "grey", "blue", "green", "silver")
NUMBERS = ("two", "three", "four", "five", "six", "ten", "twelve")
PARTS = ("battery", "screen", "cable", "button", "lid", "handle", "case", "plug", "strap", "remote")
ROOMS = ("kitchen", "office", "garage", "bedroom", "car", "hallway")
# Sentiment words by decreasing frequency (see ``lexicon_size`` and ``lexicon_zipf``).
POSITIVE = ("great", "excellent", "reliable", "sturdy", "wonderful", "fantastic", "solid", "impressive",
            "good", "perfect", "durable", "pleasant", "superb", "brilliant", "lovely", "dependable", "handy",
            "terrific", "outstanding", "marvellous", "splendid", "flawless", "nice", "decent", "robust",
            "elegant", "quiet", "sleek", "efficient", "comfortable", "responsive", "convenient", "intuitive",
            "fabulous", "remarkable", "stellar", "admirable", "delightful", "exceptional", "sensible")
NEGATIVE = ("awful", "terrible", "flimsy", "useless", "disappointing", "poor", "horrible", "bad", "cheap",
            "annoying", "faulty", "fragile", "dreadful", "shoddy", "lousy", "defective", "noisy", "clunky",
            "mediocre", "unreliable", "abysmal", "atrocious", "subpar", "frustrating", "pathetic",
            "worthless", "broken", "dismal", "inferior", "awkward", "sluggish", "unstable", "unpleasant",
            "dodgy", "rubbish", "woeful", "lacklustre", "crummy", "junky", "appalling")
NEUTRAL = (
    "i also own a {other} and a {other} .",
    "it arrived on a {day} in a {colour} box .",
    "the {part} is {colour} and about {number} inches long .",
    "shipping took {number} days and the tracking number worked .",
    "i have used it {number} times since {month} .",
    "my {person} uses a {other} from another store .",
    "the manual has {number} pages and comes in {number} languages .",
    "i mostly use it in the {room} on {day} mornings .",
    "it came with a {part} and a spare {part} .",
    "before this i owned a {colour} {other} for {number} years .",
    "the {part} clicks into place and the {part} slides out .",
    "i paid for it with a gift card from my {person} .",
)
# Slots: {neg} a negation next to the adjective ("" or one of NEGATIONS); {not} a negation a few
# words before it ("" or "not "); {adj} the clause's adjective; {adj2} a second one of the same
# polarity. A template's clause polarity is that of {adj}, flipped when {neg}/{not} is filled.
VERDICT = (  # the reviewer's verdict on this product
    "overall the {product} is {neg}{adj} .",
    "in the end i found it {neg}{adj} .",
    "honestly my new {product} is {neg}{adj} .",
    "after a few weeks i can say it is {neg}{adj} .",
    "i do {not}think the {product} is really {adj} .",
    "i would {not}say my new {product} is {adj} .",
)
CONTRAST = (  # {concession} is a clause of the opposite polarity; the verdict's main clause decides
    "although {concession} , overall the {product} is {neg}{adj} .",
    "{concession} but in the end i found it {neg}{adj} .",
    "even though {concession} , honestly my new {product} is {neg}{adj} .",
    "overall the {product} is {neg}{adj} , although {concession} .",
    "after a few weeks i can say it is {neg}{adj} , even though {concession} .",
)
CONCESSION = (
    "the {part} is {neg}{adj}",
    "my {person} found it {neg}{adj}",
    "it looked {neg}{adj} at first",
    "the reviews online said it was {neg}{adj}",
)
NOT_ONLY = (  # "not" without negation: the label is the polarity of both adjectives
    "not only is the {product} {adj} , it is also {adj2} .",
    "the {product} is not only {adj} but also {adj2} .",
    "in the end i found it not just {adj} but {adj2} .",
)
DISTRACTOR = (  # opinions that are not the reviewer's verdict on this product
    "my {person} said it was {neg}{adj} .",
    "the reviews online claimed it was {neg}{adj} .",
    "i expected it to be {neg}{adj} .",
    "the {product} i had before was {neg}{adj} .",
    "at the store the {part} looked {neg}{adj} .",
)
HARD_DISTRACTOR = (  # look like a verdict; only the subject (someone else, the past) differs
    "my {person} thinks this {product} is {neg}{adj} .",
    "overall my old {product} was {neg}{adj} .",
    "in the end my {person} found it {neg}{adj} .",
    "honestly my old {product} was {neg}{adj} .",
    "my {person} would {not}say this {product} is {adj} .",
    "the seller says this {product} is not only {adj} but also {adj2} .",
    "although the box was {adj} , my {person} says the {part} is {neg}{adj} .",
)
OTHER_PRODUCT = (  # a verdict's very words, about another product the reviewer owns ({other})
    "overall the {other} is {neg}{adj} .",
    "i do {not}think the {other} is really {adj} .",
    "not only is the {other} {adj} , it is also {adj2} .",
    "the {other} is not only {adj} but also {adj2} .",
)
INTRO = "i bought a {product} for my {person} in {month} ."  # first sentence: names the review's product
NEGATIONS = ("not ", "never ", "not at all ")


@dataclass(frozen=True)
class ReviewSpec:
    """Parameters of the generated reviews (all of them key the cache); see the module docstring."""

    seed: int = 0
    n_train: int = 4000
    n_val: int = 500
    n_test: int = 1000
    min_sentences: int = 4  # neutral + distractor sentences around the verdict
    max_sentences: int = 12
    distractor_rate: float = 0.5  # share of the non-verdict sentences that are distractor opinions
    hard_distractor_rate: float = 0.3  # share of the distractors that imitate a verdict
    other_product_rate: float = 0.3  # share of the distractors in a verdict's words about another product
    negation_rate: float = 0.4  # chance that a clause is negated (flips its polarity)
    contrast_rate: float = 0.3  # chance that the verdict holds a concession of the opposite polarity
    not_only_rate: float = 0.15  # chance that the verdict is "not only A but also B" (no flip)
    lexicon_size: int = 12  # sentiment words per polarity (the most frequent of POSITIVE, NEGATIVE)
    lexicon_zipf: float = 0.0  # word r of the lexicon has frequency ~ 1 / (r + 1) ** lexicon_zipf

    def __post_init__(self) -> None:
        for name in ("seed", "n_train", "n_val", "n_test", "min_sentences", "max_sentences", "lexicon_size"):
            value, least = getattr(self, name), 0 if name in ("seed", "min_sentences") else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
        if self.min_sentences > self.max_sentences:
            raise ValueError(f"min_sentences={self.min_sentences} > max_sentences={self.max_sentences}")
        for name in RATES:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        if self.lexicon_size > len(POSITIVE):
            raise ValueError(f"lexicon_size must be <= {len(POSITIVE)}, got {self.lexicon_size}")
        if isinstance(self.lexicon_zipf, bool) or not isinstance(self.lexicon_zipf, (int, float)) \
                or self.lexicon_zipf < 0:
            raise ValueError(f"lexicon_zipf must be a number >= 0, got {self.lexicon_zipf!r}")
        if self.hard_distractor_rate + self.other_product_rate > 1.0:
            raise ValueError(f"hard_distractor_rate + other_product_rate must be <= 1, got "
                             f"{self.hard_distractor_rate} + {self.other_product_rate}")
        if self.contrast_rate + self.not_only_rate > 1.0:
            raise ValueError(f"contrast_rate + not_only_rate must be <= 1, got "
                             f"{self.contrast_rate} + {self.not_only_rate}")


RATES = ("distractor_rate", "hard_distractor_rate", "other_product_rate", "negation_rate", "contrast_rate",
         "not_only_rate")
SPEC_KEYS = tuple(f.name for f in fields(ReviewSpec))


def _fill(template: str, rng: random.Random, **fixed: str) -> str:
    """Fill the slots; ``{other}`` is a product other than ``fixed["product"]``."""
    slots = {"product": PRODUCTS, "person": PEOPLE, "day": DAYS, "month": MONTHS, "colour": COLOURS,
             "number": NUMBERS, "part": PARTS, "room": ROOMS,
             "other": tuple(p for p in PRODUCTS if p != fixed.get("product"))}
    text = template
    while "{" in text:  # fill slots one at a time so repeated slots get independent words
        start = text.index("{")
        name = text[start + 1:text.index("}", start)]
        word = fixed[name] if name in fixed else rng.choice(slots[name])
        text = text[:start] + word + text[start + len(name) + 2:]
    return text


def _adjective(polarity: int, rng: random.Random, spec: ReviewSpec) -> str:
    words = (POSITIVE if polarity else NEGATIVE)[:spec.lexicon_size]
    weights = [1.0 / (rank + 1) ** spec.lexicon_zipf for rank in range(len(words))]
    return rng.choices(words, weights)[0]


def _clause(template: str, polarity: int, rng: random.Random, spec: ReviewSpec, **fixed: str) -> str:
    """``template`` filled so that its clause has ``polarity`` (1 positive, 0 negative)."""
    negated = "{neg}" in template or "{not}" in template
    negated = negated and rng.random() < spec.negation_rate
    words = int(polarity != negated)  # a negation flips the adjective's polarity
    neg = rng.choice(NEGATIONS) if negated else ""
    return _fill(template, rng, adj=_adjective(words, rng, spec), adj2=_adjective(words, rng, spec), neg=neg,
                 **{"not": "not " if negated else ""}, **fixed)


def verdict(rng: random.Random, spec: ReviewSpec, label: int, product: str) -> str:
    """The reviewer's verdict on ``product``, a sentence whose main clause has the polarity ``label``."""
    kind = rng.random()
    if kind < spec.contrast_rate:
        concession = _clause(rng.choice(CONCESSION), 1 - label, rng, spec, product=product)
        return _clause(rng.choice(CONTRAST), label, rng, spec, concession=concession, product=product)
    if kind < spec.contrast_rate + spec.not_only_rate:
        return _clause(rng.choice(NOT_ONLY), label, rng, spec, product=product)
    return _clause(rng.choice(VERDICT), label, rng, spec, product=product)


def other_sentence(rng: random.Random, spec: ReviewSpec, product: str) -> str:
    """A neutral sentence or a distractor opinion (of a polarity independent of the label)."""
    if rng.random() >= spec.distractor_rate:
        return _fill(rng.choice(NEUTRAL), rng, product=product)
    kind = rng.random()
    pool = (OTHER_PRODUCT if kind < spec.other_product_rate else
            HARD_DISTRACTOR if kind < spec.other_product_rate + spec.hard_distractor_rate else DISTRACTOR)
    return _clause(rng.choice(pool), rng.randrange(2), rng, spec, product=product)


def review_sentences(rng: random.Random, spec: ReviewSpec) -> tuple[list[str], int, int]:
    """(sentences, index of the verdict among them, label 1 positive / 0 negative); the first
    sentence names the product, the verdict is anywhere after it."""
    label, product = rng.randrange(2), rng.choice(PRODUCTS)
    count = rng.randint(spec.min_sentences, spec.max_sentences)
    sentences = [other_sentence(rng, spec, product) for _ in range(count)]
    at = rng.randint(0, len(sentences))
    sentences.insert(at, verdict(rng, spec, label, product))
    return [_fill(INTRO, rng, product=product)] + sentences, at + 1, label


def review(rng: random.Random, spec: ReviewSpec) -> tuple[str, int]:
    """One review and its label (1 positive, 0 negative)."""
    sentences, _, label = review_sentences(rng, spec)
    return " ".join(sentences), label


def generate_reviews(spec: ReviewSpec) -> dict[str, list[list]]:
    """``{"train"|"val"|"test": [[review, label], ...]}``, deterministic for ``spec``."""
    rng = random.Random(spec.seed)
    rows = [list(review(rng, spec)) for _ in range(spec.n_train + spec.n_val + spec.n_test)]
    a, b = spec.n_train, spec.n_train + spec.n_val
    return {"train": rows[:a], "val": rows[a:b], "test": rows[b:]}


def cache_params(spec: ReviewSpec) -> dict:
    return {"generator": "sentiment-reviews", "version": GENERATOR_VERSION, **asdict(spec)}
