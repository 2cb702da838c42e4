"""The scores relative to the data (``label_token``, ``combined``) and scoring at a temperature."""

from __future__ import annotations

import pytest

from sparse_ner.data.columns import make_example
from sparse_ner.review.score import Review, add_relative_scores, rank, score_examples

from test_review import gold, tagger, with_spans  # noqa: F401  (the module-scoped fixture)


def _review(index: int, loss: float, disagreement: list[tuple[int, float]], worst: float = 0.0) -> Review:
    ex = make_example(["w"] * len(disagreement), ["O"] * len(disagreement), "bio")
    return Review(index, ex, {"loss": loss, "worst_span": worst}, [], disagreement=disagreement)


def test_label_token_normalizes_per_class() -> None:
    """A doubted O token (a missed entity) outranks a MISC token doubted as much as MISC tokens usually are,
    although its raw disagreement is 6x smaller: what ``token`` gets wrong."""
    O, MISC = 0, 2
    reviews = [
        _review(0, 1.0, [(O, 0.05), (O, 0.001)]),  # an O token the model thinks is an entity
        _review(1, 1.0, [(MISC, 0.3), (O, 0.001)]),  # an ordinary MISC
        _review(2, 1.0, [(MISC, 0.3), (O, 0.001)]),
        _review(3, 1.0, [(O, 0.001), (O, 0.001)]),
    ]
    add_relative_scores(reviews)
    o_mean = (0.05 + 0.001 * 5) / 6
    assert reviews[0].scores["label_token"] == pytest.approx(0.05 / o_mean)
    assert reviews[1].scores["label_token"] == pytest.approx(1.0)
    assert [r.index for r in rank(reviews, "label_token")][0] == 0
    assert reviews[3].scores["label_token"] < 1.0


def test_combined_is_the_mean_percentile_of_loss_label_token_and_worst_span() -> None:
    reviews = [
        _review(0, 5.0, [(0, 0.001)], worst=1.0),  # a high loss, ordinary tokens
        _review(1, 0.1, [(0, 0.05)], worst=3.0),  # a small loss, a very doubted O token, a surprising span
        _review(2, 6.0, [(0, 0.04)], worst=2.0),  # all high: first
        _review(3, 0.0, [(0, 0.001)], worst=0.0),
    ]
    add_relative_scores(reviews)
    # percentiles: loss 2/3, 1/3, 1, 0; label_token 1/6 (tied with review 3), 1, 2/3, 1/6; worst 1/3, 1, 2/3, 0
    expected = [(2 / 3 + 1 / 6 + 1 / 3) / 3, (1 / 3 + 1 + 1) / 3, (1 + 2 / 3 + 2 / 3) / 3, (0 + 1 / 6 + 0) / 3]
    assert [r.scores["combined"] for r in reviews] == pytest.approx(expected)
    assert [r.index for r in rank(reviews, "combined")] == [1, 2, 0, 3]


def test_combined_finds_a_swapped_and_a_missing_entity(tagger) -> None:  # noqa: F811
    examples = gold(60, seed=7)
    changed = {}
    for i, ex in enumerate(examples):
        keys = [s.key for s in ex.accepted]
        if keys and len(changed) < 2:
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
