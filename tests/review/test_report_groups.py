"""The HTML report groups disagreements by kind, the most frequent (systematic) first."""

from __future__ import annotations

from sparse_ner.data.columns import make_example
from sparse_ner.review.report import html_report, patterns
from sparse_ner.review.score import Review


def _review(index: int, words: list[str], annotated: list, predicted: list) -> Review:
    ex = make_example(words, ["O"] * len(words), "bio")
    return Review(index, ex, {"loss": float(10 - index)}, [(*p, 0.9) for p in predicted], accepted=annotated)


def test_a_systematic_label_disagreement_comes_first() -> None:
    team = ["Leeds", "beat", "Chelsea", "2-1"]
    reviews = [
        _review(0, ["Paris", "is", "big"], [(0, 0, "LOC")], [(0, 0, "LOC")]),  # agrees
        _review(1, team, [(0, 0, "LOC"), (2, 2, "LOC")], [(0, 0, "ORG"), (2, 2, "ORG")]),  # LOC -> ORG twice
        _review(2, ["John", "Smith", "said"], [(0, 0, "PER")], [(0, 1, "PER")]),  # boundary
        _review(3, team, [(0, 0, "LOC")], [(0, 0, "ORG"), (2, 2, "ORG")]),  # LOC -> ORG, and a missing ORG
        _review(4, ["Smith", "won"], [(0, 0, "PER")], []),  # spurious PER
    ]
    pats = patterns(reviews)
    assert [(p.group, p.annotated, p.predicted, p.count) for p in pats] == [
        ("label", "LOC", "ORG", 3), ("boundary", "PER", "PER", 1), ("missing", "O", "ORG", 1),
        ("spurious", "PER", "O", 1),
    ]  # fmt: skip
    assert pats[0].ranks == [2, 4] and pats[0].words == {"Leeds": 2, "Chelsea": 1}
    page = html_report(reviews, "loss")
    assert page.index("Disagreements by kind") < page.index("Hardest")
    assert page.index("<b>label</b>: LOC &rarr; ORG") < page.index("<b>boundary</b>") < page.index("<b>spurious</b>")
