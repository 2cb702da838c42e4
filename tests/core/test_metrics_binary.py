"""Entity P/R/F1 on binary answers: only the answered spans count, and a report says so."""

from __future__ import annotations

import pytest

from sparse_ner.core.metrics import EntityF1, format_report


def score(*args, **kwargs) -> dict[str, float]:
    metric = EntityF1(["LOC", "PER"])
    metric.update(*args, **kwargs)
    return {k: float(v) for k, v in metric.compute().items()}


def test_binary_answers_count_only_the_answered_spans() -> None:
    preds = [[(0, 0, "PER"), (2, 2, "LOC"), (4, 5, "PER")]]
    accepted = [[(0, 0, "PER"), (7, 7, "LOC")]]
    rejected = [[(2, 2, "LOC"), (9, 9, "PER")]]
    r = score(preds, accepted, rejected, [False])
    # (4, 5, PER) was never asked about: not a false positive; (2, 2, LOC) was rejected: one
    assert (r["precision"], r["recall"], r["f1"]) == pytest.approx((1 / 2, 1 / 2, 1 / 2))
    assert r["reject_avoid"] == pytest.approx(1 / 2)  # (9, 9, PER) avoided, (2, 2, LOC) not
    assert r["agreement"] == pytest.approx(2 / 4)  # one accept found, one reject avoided, of four answers
    assert r["binary"] == 1.0 and r["support"] == 2


def test_the_same_spans_as_a_complete_annotation_are_scored_as_gold() -> None:
    preds = [[(0, 0, "PER"), (2, 2, "LOC"), (4, 5, "PER")]]
    accepted = [[(0, 0, "PER"), (7, 7, "LOC")]]
    r = score(preds, accepted, [[]], [True])
    assert (r["precision"], r["recall"]) == pytest.approx((1 / 3, 1 / 2))  # every other span is a false positive
    assert r["binary"] == 0.0
    assert r == score(preds, accepted)  # the default: complete


def test_on_complete_annotations_the_answer_f1_is_the_entity_f1() -> None:
    # a complete annotation answers every span: annotated = accept, any other = reject
    preds = [[(0, 1, "PER"), (3, 3, "LOC")], [(1, 1, "LOC")]]
    gold = [[(0, 1, "PER"), (5, 5, "LOC")], [(1, 1, "PER")]]
    everything = [[(s, e, lab) for s in range(6) for e in range(s, 6) for lab in ("LOC", "PER")
                   if (s, e, lab) not in g] for g in gold]  # fmt: skip
    exact = score(preds, gold)
    as_answers = score(preds, gold, everything, [False, False])
    for key in ("precision", "recall", "f1", "support", "LOC_f1", "PER_f1"):
        assert as_answers[key] == pytest.approx(exact[key]), key


def test_the_report_says_when_it_is_binary() -> None:
    binary = format_report(score([[(0, 0, "PER")]], [[(0, 0, "PER")]], [[(2, 2, "LOC")]], [False]))
    assert "binary answers" in binary and "rejected spans avoided: 1.0000" in binary
    gold = format_report(score([[(0, 0, "PER")]], [[(0, 0, "PER")]]))
    assert "binary" not in gold and "rejected" not in gold


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="rejected lists"):
        score([[]], [[]], [[], []], [True])
