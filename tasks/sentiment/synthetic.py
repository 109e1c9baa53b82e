"""The embedded sentiment data: templated product reviews where only one sentence decides the label.

A review is a shuffle of neutral sentences (shipping, colours, who it was bought for) and
*distractor opinions* (what a friend said, what the reviewer expected, another product), with
exactly one *verdict* sentence of the reviewer at a random position:

    "i bought this kettle for my cousin in may . my friend said it was awful . ... overall this
     kettle is not disappointing . it arrived on a friday in a red box ."          -> positive

- the label is the polarity of the verdict, flipped by negation ("not bad" is positive);
- distractor opinions use the same sentiment words with a polarity independent of the label,
  so counting positive and negative words is not enough;
- the verdict sits anywhere in a long review, so a classifier reading one summary vector at the
  end (the final LSTM state) must carry it across the rest, while attention pooling can pick it
  out wherever it is.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

GENERATOR_VERSION = 1
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
POSITIVE = ("great", "excellent", "reliable", "sturdy", "wonderful", "fantastic", "solid", "impressive",
            "good", "perfect")
NEGATIVE = ("awful", "terrible", "flimsy", "useless", "disappointing", "poor", "horrible", "bad", "cheap",
            "annoying")
NEUTRAL = (
    "i bought this {product} for my {person} in {month} .",
    "it arrived on a {day} in a {colour} box .",
    "the {part} is {colour} and about {number} inches long .",
    "shipping took {number} days and the tracking number worked .",
    "i have used it {number} times since {month} .",
    "my {person} uses a {product} from another store .",
    "the manual has {number} pages and comes in {number} languages .",
    "i mostly use it in the {room} on {day} mornings .",
    "it came with a {part} and a spare {part} .",
    "before this i owned a {colour} {product} for {number} years .",
    "the {part} clicks into place and the {part} slides out .",
    "i paid for it with a gift card from my {person} .",
)
DISTRACTOR = (  # opinions that are not the reviewer's verdict on this product
    "my {person} said it was {adj} .",
    "the reviews online claimed it was {adj} .",
    "i expected it to be {adj} .",
    "the {product} i had before was {adj} .",
    "at the store the {part} looked {adj} .",
)
VERDICT = (  # {neg} is "" or a negation that flips the adjective's polarity
    "overall this {product} is {neg}{adj} .",
    "in the end i found it {neg}{adj} .",
    "honestly my new {product} is {neg}{adj} .",
    "after a few weeks i can say it is {neg}{adj} .",
)
NEGATIONS = ("not ", "never ", "not at all ")


@dataclass(frozen=True)
class ReviewSpec:
    """Parameters of the generated reviews (all of them key the cache)."""

    seed: int = 0
    n_train: int = 4000
    n_val: int = 500
    n_test: int = 1000
    min_sentences: int = 4  # neutral + distractor sentences around the verdict
    max_sentences: int = 12
    distractor_rate: float = 0.4  # share of the non-verdict sentences that are distractor opinions
    negation_rate: float = 0.4

    def __post_init__(self) -> None:
        for name in ("seed", "n_train", "n_val", "n_test", "min_sentences", "max_sentences"):
            value, least = getattr(self, name), 0 if name in ("seed", "min_sentences") else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
        if self.min_sentences > self.max_sentences:
            raise ValueError(f"min_sentences={self.min_sentences} > max_sentences={self.max_sentences}")
        for name in ("distractor_rate", "negation_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)!r}")


def _fill(template: str, rng: random.Random, **fixed: str) -> str:
    slots = {"product": PRODUCTS, "person": PEOPLE, "day": DAYS, "month": MONTHS, "colour": COLOURS,
             "number": NUMBERS, "part": PARTS, "room": ROOMS, "adj": POSITIVE + NEGATIVE}
    text = template
    while "{" in text:  # fill slots one at a time so repeated slots get independent words
        start = text.index("{")
        name = text[start + 1:text.index("}", start)]
        word = fixed[name] if name in fixed else rng.choice(slots[name])
        text = text[:start] + word + text[start + len(name) + 2:]
    return text


def review(rng: random.Random, spec: ReviewSpec) -> tuple[str, int]:
    """One review and its label (1 positive, 0 negative)."""
    label = rng.randrange(2)
    negated = rng.random() < spec.negation_rate
    adj = rng.choice(POSITIVE if label != negated else NEGATIVE)  # negation flips the polarity
    verdict = _fill(rng.choice(VERDICT), rng, adj=adj, neg=rng.choice(NEGATIONS) if negated else "")
    others = [_fill(rng.choice(DISTRACTOR if rng.random() < spec.distractor_rate else NEUTRAL), rng)
              for _ in range(rng.randint(spec.min_sentences, spec.max_sentences))]
    others.insert(rng.randint(0, len(others)), verdict)
    return " ".join(others), label


def generate_reviews(spec: ReviewSpec) -> dict[str, list[list]]:
    """``{"train"|"val"|"test": [[review, label], ...]}``, deterministic for ``spec``."""
    rng = random.Random(spec.seed)
    rows = [list(review(rng, spec)) for _ in range(spec.n_train + spec.n_val + spec.n_test)]
    a, b = spec.n_train, spec.n_train + spec.n_val
    return {"train": rows[:a], "val": rows[a:b], "test": rows[b:]}


def cache_params(spec: ReviewSpec) -> dict:
    return {"generator": "sentiment-reviews", "version": GENERATOR_VERSION, **asdict(spec)}
