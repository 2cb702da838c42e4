"""The scores relative to the data (``label_token``, ``combined``) and scoring at a temperature."""

from __future__ import annotations

import math

import pytest

from sparse_ner.data.columns import make_example
from sparse_ner.review.score import Review, add_relative_scores, rank, score_examples

from test_review import gold, tagger, with_spans  # noqa: F401  (the module-scoped fixture)


def _review(index: int, odds: float, disagreement: list[tuple[int, float]], worst: float = 0.0) -> Review:
    ex = make_example(["w"] * len(disagreement), ["O"] * len(disagreement), "bio")
    return Review(index, ex, {"span_odds": odds, "worst_span": worst}, [], disagreement=disagreement)


def test_label_token_normalizes_per_class() -> None:
    """A doubted O token (a missed entity) outranks a MISC token doubted as much as MISC tokens usually are,
    although its raw disagreement is 6x smaller: what ``token`` gets wrong."""
    O, MISC = 0, 2
    reviews = [
        _review(0, 0.0, [(O, 0.05), (O, 0.001)]),  # an O token the model thinks is an entity
        _review(1, 0.0, [(MISC, 0.3), (O, 0.001)]),  # an ordinary MISC
        _review(2, 0.0, [(MISC, 0.3), (O, 0.001)]),
        _review(3, 0.0, [(O, 0.001), (O, 0.001)]),
    ]
    add_relative_scores(reviews)
    o_mean = (0.05 + 0.001 * 5) / 6
    assert reviews[0].scores["label_token"] == pytest.approx(0.05 / o_mean)
    assert reviews[1].scores["label_token"] == pytest.approx(1.0)
    assert [r.index for r in rank(reviews, "label_token")][0] == 0
    assert reviews[3].scores["label_token"] < 1.0


def test_combined_is_fishers_method_on_empirical_p_values() -> None:
    reviews = [
        _review(0, 5.0, [(0, 0.001)], worst=1.0),  # an annotated span the model would change, ordinary tokens
        _review(1, 0.0, [(0, 0.05)], worst=3.0),  # a very doubted O token and a surprising span: a missed entity, first
        _review(2, 2.0, [(0, 0.04)], worst=2.0),  # a bit of everything, never the strongest
        _review(3, 0.0, [(0, 0.001)], worst=0.0),  # clean
    ]
    add_relative_scores(reviews)
    # p-values (fraction scoring >= it): span_odds 1/4, 1, 2/4, 1; label_token 1, 1/4, 2/4, 1; worst_span 3/4, 1/4, 2/4, 1
    p = [(1 / 4, 1, 3 / 4), (1, 1 / 4, 1 / 4), (1 / 2, 1 / 2, 1 / 2), (1, 1, 1)]
    expected = [sum(-math.log(x) for x in ps) / 3 for ps in p]
    assert [r.scores["combined"] for r in reviews] == pytest.approx(expected)
    assert [r.index for r in rank(reviews, "combined")] == [1, 2, 0, 3]
    assert reviews[3].scores["combined"] == 0.0  # last on every evidence: p = 1


def test_combined_finds_a_swapped_and_a_dropped_entity(tagger) -> None:  # noqa: F811
    examples = gold(60, seed=7)
    changed = {}
    for i, ex in enumerate(examples):
        keys = [s.key for s in ex.accepted]
        if keys and len(changed) < 2 and i >= 30:  # late in the data: ties keep the data order
            s, e, label = keys[0]
            new = [(s, e, "LOC" if label == "PER" else "PER")] + keys[1:] if not changed else keys[1:]
            changed[i] = with_spans(ex, new)
    data = [changed.get(i, ex) for i, ex in enumerate(examples)]
    reviews = score_examples(tagger, data)
    for score in ("combined", "label_token"):
        top = [r.index for r in rank(reviews, score)[:6]]
        assert set(changed) <= set(top), (score, top, sorted(changed))


def test_temperature_flattens_and_keeps_the_prediction(tagger) -> None:  # noqa: F811
    examples = gold(20, seed=8)
    cold, warm = score_examples(tagger, examples), score_examples(tagger, examples, temperature=3.0)
    assert [r.predicted[:3] and [p[:3] for p in r.predicted] for r in cold] == [
        r.predicted[:3] and [p[:3] for p in r.predicted] for r in warm
    ]
    assert sum(r.scores["token"] for r in warm) > sum(r.scores["token"] for r in cold)
    same = score_examples(tagger, examples, temperature=1.0)
    assert [r.scores["loss"] for r in same] == pytest.approx([r.scores["loss"] for r in cold])
    with pytest.raises(ValueError):
        score_examples(tagger, examples[:1], temperature=0.0)


def test_the_review_scores_without_the_prediction_time_o_bias(tagger) -> None:  # noqa: F811
    examples = gold(20, seed=9)
    plain = score_examples(tagger, examples)
    tagger.o_bias = 4.0
    try:
        biased = score_examples(tagger, examples)
        assert tagger.o_bias == 4.0  # restored
    finally:
        tagger.o_bias = 0.0
    assert [r.scores["loss"] for r in biased] == pytest.approx([r.scores["loss"] for r in plain])
    assert [r.predicted for r in biased] == [r.predicted for r in plain]
