"""EntityF1 against seqeval, DDP-style state merging, and the report table."""

from __future__ import annotations

import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sparse_ner.core.metrics import EntityF1, format_report
from sparse_ner.tags import decode_tags, spans_to_tags

import seqeval.metrics as seqeval  # noqa: E402
from seqeval.scheme import IOB2  # noqa: E402

LABELS = ["PER", "ORG", "LOC"]


def random_spans(rng: random.Random, length: int) -> list[tuple[int, int, str]]:
    """Random non-overlapping spans over ``length`` tokens."""
    spans, t = [], 0
    while t < length:
        if rng.random() < 0.35:
            end = min(length - 1, t + rng.randint(0, 3))
            spans.append((t, end, rng.choice(LABELS)))
            t = end + 1
        else:
            t += 1
    return spans


def random_corpus(seed: int, n: int = 40) -> tuple[list[list[str]], list[list[str]]]:
    """Gold and predicted IOB2 tag sequences; predictions share some gold spans."""
    rng = random.Random(seed)
    gold, pred = [], []
    for _ in range(n):
        length = rng.randint(0, 12)
        g = random_spans(rng, length)
        p = [s for s in g if rng.random() < 0.6]
        taken = {t for s, e, _ in p for t in range(s, e + 1)}
        p += [s for s in random_spans(rng, length) if not taken & set(range(s[0], s[1] + 1))]
        p = sorted(set(p))
        p = [s for i, s in enumerate(p) if i == 0 or s[0] > p[i - 1][1]]  # drop overlaps
        gold.append(spans_to_tags(length, g))
        pred.append(spans_to_tags(length, p))
    return gold, pred


def entity_f1(gold: list[list[str]], pred: list[list[str]]) -> dict[str, float]:
    metric = EntityF1(LABELS)
    metric.update([decode_tags(p) for p in pred], [decode_tags(g) for g in gold])
    return {k: float(v) for k, v in metric.compute().items()}


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), strict=st.booleans())
def test_agrees_with_seqeval(seed: int, strict: bool) -> None:
    gold, pred = random_corpus(seed)
    kw = {"mode": "strict", "scheme": IOB2} if strict else {}
    ours = entity_f1(gold, pred)
    kw["zero_division"] = 0
    assert ours["precision"] == pytest.approx(seqeval.precision_score(gold, pred, **kw))
    assert ours["recall"] == pytest.approx(seqeval.recall_score(gold, pred, **kw))
    assert ours["f1"] == pytest.approx(seqeval.f1_score(gold, pred, **kw))
    report = seqeval.classification_report(gold, pred, output_dict=True, **kw)
    for label in LABELS:
        row = report.get(label, {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 0})
        assert ours[f"{label}_precision"] == pytest.approx(row["precision"])
        assert ours[f"{label}_recall"] == pytest.approx(row["recall"])
        assert ours[f"{label}_f1"] == pytest.approx(row["f1-score"])
        assert ours[f"{label}_support"] == row["support"]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_agrees_with_seqeval_default_mode_on_invalid_sequences(seed: int) -> None:
    """decode_tags is lenient like conlleval, so seqeval's default mode agrees on any tags."""
    rng = random.Random(seed)
    tags = ["O"] + [f"{p}-{label}" for label in LABELS for p in "BI"]
    gold = [[rng.choice(tags) for _ in range(rng.randint(0, 10))] for _ in range(30)]
    pred = [[rng.choice(tags) for _ in g] for g in gold]
    ours = entity_f1(gold, pred)
    assert ours["precision"] == pytest.approx(seqeval.precision_score(gold, pred, zero_division=0))
    assert ours["recall"] == pytest.approx(seqeval.recall_score(gold, pred, zero_division=0))
    assert ours["f1"] == pytest.approx(seqeval.f1_score(gold, pred, zero_division=0))


def test_halves_sum_to_the_whole() -> None:
    """DDP sums tp/fp/fn across ranks: two ranks on halves equal one metric on everything."""
    gold, pred = random_corpus(7, n=60)
    P, G = [decode_tags(p) for p in pred], [decode_tags(g) for g in gold]
    whole, left, right = EntityF1(LABELS), EntityF1(LABELS), EntityF1(LABELS)
    whole.update(P, G)
    left.update(P[:25], G[:25])
    right.update(P[25:], G[25:])
    for name in ("tp", "fp", "fn"):
        assert torch.equal(getattr(left, name) + getattr(right, name), getattr(whole, name))
        assert getattr(whole, name).shape == (len(LABELS),)
    left.merge_state(right)  # what the "sum" reduction does across ranks
    merged, expected = left.compute(), whole.compute()
    assert merged.keys() == expected.keys()
    for key in expected:
        assert torch.allclose(merged[key], expected[key]), key


@pytest.mark.filterwarnings("ignore:The ``compute`` method")
def test_exact_match_only_and_empty() -> None:
    metric = EntityF1(["PER", "LOC"])
    assert float(metric.compute()["f1"]) == 0.0  # nothing seen: zeros, no NaN
    metric.update([[(0, 1, "PER"), (3, 3, "LOC")]], [[(0, 1, "PER"), (3, 4, "LOC")]])
    out = metric.compute()
    assert float(out["precision"]) == 0.5 and float(out["recall"]) == 0.5
    assert float(out["PER_f1"]) == 1.0 and float(out["LOC_f1"]) == 0.0
    assert float(out["LOC_support"]) == 1.0


def test_rejects_unknown_labels_and_ragged_batches() -> None:
    metric = EntityF1(["PER"])
    with pytest.raises(ValueError, match="MISC"):
        metric.update([[(0, 0, "MISC")]], [[]])
    with pytest.raises(ValueError, match="sentences"):
        metric.update([[]], [])


def test_format_report() -> None:
    metric = EntityF1(["PER", "LOC"])
    metric.update([[(0, 1, "PER")]], [[(0, 1, "PER"), (2, 2, "LOC")]])
    text = format_report(metric.compute())
    lines = text.splitlines()
    assert "precision" in lines[0] and "support" in lines[0]
    assert lines[1].split()[0] == "PER" and lines[2].split()[0] == "LOC"
    assert lines[-1].split()[:2] == ["micro", "avg"]
    assert lines[-1].split()[-1] == "2"
