"""``entity_ratio: auto``: the expected share of entity tokens, measured on the data instead of guessed.

The expected-entity-ratio penalty (:func:`sparse_ner.core.losses.entity_ratio_penalty`) keeps a model
trained on sparse answers from tagging every unannotated token as an entity (or none). Its target is
a property of the corpus (CoNLL-2003 news: ~17% of tokens; WNUT-17 social media: ~6-9%), and a
wrong target costs F1 (BENCHMARKS.md). ``auto`` measures it where the data says it exactly, in this order:

1. the complete annotations among the training answers (``ner_manual`` / ``spans_manual`` accepts,
   or a column file), when they hold at least :data:`MIN_TOKENS` tokens;
2. the complete annotations of the dev data (a gold dev file, or complete texts held out by
   ``eval_split``), same minimum;
3. otherwise (binary answers only) it is *estimated* from the accepted spans as a class prior from
   positive and unlabeled data (:func:`positive_unlabeled_ratio`, Elkan & Noto 2008): accepted spans
   are a sample of the entities, so the entity share is the accepted share divided by ``c``, the
   chance that an entity token is in an accepted span; ``c`` is the mean, over accepted tokens, of how
   often the other occurrences of the same word are accepted too. Measured on simulated teach answers
   (BENCHMARKS.md): CoNLL-2003 0.161 / 0.154 for true 0.166 / 0.164 (2,000 / all tasks), WNUT-17
   0.078 for 0.050, Resume NER 0.670 for 0.637. It overestimates where entity words are also common
   words, and it assumes accepts sample the entities evenly (a real ``ner.teach`` session asks about
   what the model is unsure of). The penalty's margin (``ratio_margin``, 0.05) absorbs errors of
   that size;
4. with too little evidence (:data:`MIN_ACCEPTED` accepted tokens on repeated words), :data:`FALLBACK`,
   and the message says so (give ``--model.entity_ratio`` or a few hundred complete annotations).

The value chosen and where it came from are printed when training starts and stored with the model.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

from sparse_ner.data.example import Example

MIN_TOKENS = 1000  # fewer complete tokens than this give too noisy a share (+-0.01 at ~17%)
FALLBACK = 0.15  # the paper's and CoNLL-like news' value
MIN_ACCEPTED = 150  # accepted tokens on words seen twice or more, for the positive-unlabeled estimate


def entity_token_share(examples: Sequence[Example]) -> tuple[float, int]:
    """``(share of tokens inside accepted spans, tokens)`` over the *complete* examples."""
    tokens = entities = 0
    for ex in examples:
        if ex.complete:
            tokens += len(ex.tokens)
            entities += sum(s.token_end - s.token_start + 1 for s in ex.accepted)
    return (entities / tokens if tokens else 0.0), tokens


def positive_unlabeled_ratio(examples: Sequence[Example]) -> tuple[float, int]:
    """``(estimated share of entity tokens, accepted tokens used)`` of the sparse examples, from their
    accepted spans alone (Elkan & Noto's ``e1`` with a word-level, leave-one-out classifier; see the
    module docstring). ``(0.0, n)`` when fewer than :data:`MIN_ACCEPTED` accepted tokens fall on
    words that occur twice or more."""
    seen: Counter = Counter()  # word -> occurrences
    accepted: Counter = Counter()  # word -> occurrences inside an accepted span
    tokens = inside = 0
    for ex in examples:
        if ex.complete:
            continue
        covered = {i for s in ex.accepted for i in range(s.token_start, s.token_end + 1)}
        for i, token in enumerate(ex.tokens):
            seen[token.text] += 1
            if i in covered:
                accepted[token.text] += 1
        tokens += len(ex.tokens)
        inside += len(covered)
    # c = E[g(x) | x accepted], g(word) = share of the word's *other* occurrences that are accepted
    used = sum(n for word, n in accepted.items() if seen[word] > 1)
    if used < MIN_ACCEPTED or not tokens:
        return 0.0, used
    c = sum(n * (n - 1) / (seen[word] - 1) for word, n in accepted.items() if seen[word] > 1) / used
    if c <= 0:
        return 0.0, used
    return min(1.0, inside / (c * tokens)), used


def auto_entity_ratio(train: Sequence[Example], dev: Sequence[Example] | None = None) -> tuple[float, str]:
    """The ``auto`` entity ratio and a sentence saying where it came from (see the module docstring)."""
    for name, examples in (("training", train), ("dev", dev or [])):
        share, tokens = entity_token_share(examples)
        if tokens >= MIN_TOKENS:
            texts = sum(ex.complete for ex in examples)
            return share, f"entity_ratio auto: {share:.4f}, the share of entity tokens in the {texts} complete {name} texts ({tokens} tokens)"
    share, used = positive_unlabeled_ratio(train)
    if share > 0:
        return share, (f"entity_ratio auto: {share:.4f}, estimated from the accepted spans of the binary answers "
                       f"({used} accepted tokens on repeated words; no complete annotations of at least {MIN_TOKENS} "
                       "tokens to measure it on: give a gold --data.dev or --model.entity_ratio to set it)")  # fmt: skip
    return FALLBACK, (f"entity_ratio auto: {FALLBACK} (no complete annotations of at least {MIN_TOKENS} tokens to "
                      f"measure it on, and too few accepted spans to estimate it; give --model.entity_ratio, "
                      "a gold --data.dev, or some ner_manual answers)")  # fmt: skip
