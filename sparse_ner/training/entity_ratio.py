"""``entity_ratio: auto``: the expected share of entity tokens, measured on the data instead of guessed.

The expected-entity-ratio penalty (:func:`sparse_ner.core.losses.entity_ratio_penalty`) keeps a model
trained on sparse answers from tagging every unannotated token as an entity (or none). Its target is
a property of the corpus (CoNLL-2003 news: ~17% of tokens; WNUT-17 social media: ~6-9%), and a
wrong target costs F1 (BENCHMARKS.md). ``auto`` measures it where the data says it exactly, in this order:

1. the complete annotations among the training answers (``ner_manual`` / ``spans_manual`` accepts,
   or a column file), when they hold at least :data:`MIN_TOKENS` tokens;
2. the complete annotations of the dev data (a gold dev file, or complete texts held out by
   ``eval_split``), same minimum;
3. otherwise (binary answers only) the ratio cannot be read off the data: :data:`FALLBACK` is used
   and the message says so (give ``--model.entity_ratio`` or a few hundred complete annotations).

The value chosen and where it came from are printed when training starts and stored with the model.
"""

from __future__ import annotations

from typing import Sequence

from sparse_ner.data.example import Example

MIN_TOKENS = 1000  # fewer complete tokens than this give too noisy a share (+-0.01 at ~17%)
FALLBACK = 0.15  # the paper's and CoNLL-like news' value


def entity_token_share(examples: Sequence[Example]) -> tuple[float, int]:
    """``(share of tokens inside accepted spans, tokens)`` over the *complete* examples."""
    tokens = entities = 0
    for ex in examples:
        if ex.complete:
            tokens += len(ex.tokens)
            entities += sum(s.token_end - s.token_start + 1 for s in ex.accepted)
    return (entities / tokens if tokens else 0.0), tokens


def auto_entity_ratio(train: Sequence[Example], dev: Sequence[Example] | None = None) -> tuple[float, str]:
    """The ``auto`` entity ratio and a sentence saying where it came from (see the module docstring)."""
    for name, examples in (("training", train), ("dev", dev or [])):
        share, tokens = entity_token_share(examples)
        if tokens >= MIN_TOKENS:
            texts = sum(ex.complete for ex in examples)
            return share, f"entity_ratio auto: {share:.4f}, the share of entity tokens in the {texts} complete {name} texts ({tokens} tokens)"
    return FALLBACK, (f"entity_ratio auto: {FALLBACK} (no complete annotations of at least {MIN_TOKENS} tokens to "
                      "measure it on; give --model.entity_ratio, a gold --data.dev, or some ner_manual answers)")  # fmt: skip
