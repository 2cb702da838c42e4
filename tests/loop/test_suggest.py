"""The suggester (sparse_ner.loop.suggest): exact span probabilities, one-span tasks with their own
hashes, spans already answered, pattern gating and warm-up, the calibration hookup, pre-annotation."""

from __future__ import annotations

import pytest
import torch

from sparse_ner.data.example import Example
from sparse_ner.data.hashes import input_hash
from sparse_ner.data.tokenize import tokenize
from sparse_ner.loop.memory import AnswerMemory
from sparse_ner.loop.online import cold_tagger
from sparse_ner.loop.patterns import PatternMatcher
from sparse_ner.data.io import DataError
from sparse_ner.loop.suggest import Suggester, format_task, tokens_of

LABELS = ["LOC", "PER"]
TEXTS = ["Alice flew to Paris today .", "Bob met Alice in Berlin .", "Paris is far from Berlin .",
         "Carol and Bob stayed home ."]  # fmt: skip
SMALL = {"word_dim": 16, "char_dim": 8, "char_out": 8, "shape_dim": 4, "hidden": 16}


def make(patterns=None, device: str = "cpu", **options) -> Suggester:
    torch.manual_seed(0)
    tagger = cold_tagger(LABELS, {"encoder_options": SMALL, "dropout": 0.0}, texts=TEXTS)
    tagger = tagger.to(device).eval()
    matcher = PatternMatcher(patterns, LABELS) if patterns else None
    return Suggester(tagger, AnswerMemory(LABELS, tagger.encoder.featurize), matcher=matcher, **options)


def test_score_gives_candidates_and_extra_spans_with_probabilities():
    suggester = make(threshold=0.0, max_suggestions=2, max_len=1)
    examples = [Example(t, tokenize(t)) for t in TEXTS[:2]]
    scored = suggester.score(examples, [[(0, 1, "PER")], []])
    assert [len(s) for s in scored] == [3, 2]  # two candidates each, plus the extra span of the first text
    assert (0, 1, "PER") == scored[0][-1][:3]
    assert all(0.0 <= p <= 1.0 for spans in scored for *_, p in spans)
    again = suggester.score(examples[:1], [[(0, 1, "PER")]])[0]  # a text's scores do not depend on its batch
    assert [p for *_, p in again] == pytest.approx([p for *_, p in scored[0]], abs=1e-5)


def test_stream_yields_one_span_per_task_and_skips_answered_spans():
    suggester = make(threshold=0.0, max_suggestions=3, batch_size=2, calibrate=False)
    stream = [{"text": t, "meta": {"source": "x"}} for t in TEXTS[:3]] + [{"text": "  "}]
    pairs = list(suggester(stream))
    assert len(pairs) == 3 * 3 and [t["text"] for _, t in pairs] == [t for t in TEXTS[:3] for _ in range(3)]
    for score, t in pairs:
        assert len(t["spans"]) == 1 and t["meta"]["score"] == round(score, 6) and t["meta"]["source"] == "x"
        assert t["_input_hash"] == input_hash(t["text"]) and t["tokens"] and "calibrated" not in t["meta"]
    assert len({t["_task_hash"] for _, t in pairs}) == len(pairs)
    _, first = pairs[0]
    suggester.memory.add([{**first, "answer": "ignore"}])
    assert first["spans"] not in [t["spans"] for _, t in suggester([{"text": first["text"]}])]


def test_threshold_and_limit():
    suggester = make(threshold=0.0, max_suggestions=1)
    assert len(list(suggester([{"text": TEXTS[0]}]))) == 1
    assert list(make(threshold=1.0)([{"text": TEXTS[0]}])) == []  # nothing is that sure


def test_patterns_are_offered_at_one_half_while_cold_then_gated_by_precision():
    patterns = [{"label": "LOC", "pattern": "Paris", "id": "paris"}, {"label": "PER", "pattern": "Bob", "id": "bob"}]
    suggester = make(patterns=patterns, pattern_warmup=10)
    pairs = list(suggester([{"text": t} for t in TEXTS]))
    assert sorted(t["meta"]["pattern"] for _, t in pairs) == ["bob", "bob", "paris", "paris"]
    assert all(s == 0.5 for s, _ in pairs)  # the cold model suggests nothing itself (entity prior)
    suggester.memory.add([{**t, "answer": "reject", "meta": {"pattern": "bob"}}
                          for t in [format_task({"text": x}, Example(x, tokenize(x)), input_hash(x), 0, 0, "PER", {})
                                    for x in (f"Bob {i} ." for i in range(5))]])  # fmt: skip
    assert not suggester.pattern_ok("bob") and suggester.pattern_ok("paris") and suggester.pattern_ok("unseen")
    later = list(suggester([{"text": "Bob saw Paris ."}]))
    assert [t["meta"]["pattern"] for _, t in later] == ["paris"]
    suggester.memory.n_answers = 10  # warm: the model's own (calibrated) probability
    ((score, task),) = suggester([{"text": "Bob saw Paris ."}])
    assert score == pytest.approx(task["meta"]["calibrated"], abs=1e-6) and score < 0.5


def test_pattern_patience_gives_a_pattern_heard_often_enough_the_models_score():
    patterns = [{"label": "LOC", "pattern": "Paris", "id": "paris"}, {"label": "PER", "pattern": "Bob", "id": "bob"}]
    suggester = make(patterns=patterns, pattern_warmup=1000, pattern_patience=4)
    accepted = [format_task({"text": x}, Example(x, tokenize(x)), input_hash(x), 0, 0, "PER", {})
                for x in (f"Bob {i} ." for i in range(2))]  # fmt: skip
    suggester.memory.add([{**t, "answer": "accept", "meta": {"pattern": "bob"}} for t in accepted])
    assert suggester.pattern_heard("bob") == 0.5 and suggester.pattern_heard("paris") == 0.0
    scores = {t["meta"]["pattern"]: (s, t["meta"]["calibrated"]) for s, t in suggester([{"text": "Bob saw Paris ."}])}
    g = suggester.memory.n_answers / 1000  # the global warm-up: far off
    assert scores["paris"][0] == pytest.approx((1 - g) * 0.5 + g * scores["paris"][1], abs=1e-6)  # not answered yet
    assert scores["bob"][0] == pytest.approx(0.5 * 0.5 + 0.5 * scores["bob"][1], abs=1e-6)  # half way
    suggester.memory.add([{**t, "answer": "reject", "meta": {"pattern": "bob"}}
                          for t in [format_task({"text": x}, Example(x, tokenize(x)), input_hash(x), 0, 0, "PER", {})
                                    for x in (f"Bob {i} !" for i in range(3))]])  # fmt: skip
    assert suggester.pattern_heard("bob") == 1.0  # 5 answers >= 4: the model's own score
    scores = {t["meta"]["pattern"]: (s, t["meta"]["calibrated"]) for s, t in suggester([{"text": "Bob saw Paris ."}])}
    g = suggester.memory.n_answers / 1000
    assert scores["bob"][0] == pytest.approx(scores["bob"][1], abs=1e-6)
    assert scores["paris"][0] == pytest.approx((1 - g) * 0.5 + g * scores["paris"][1], abs=1e-6)
    assert make(patterns=patterns).pattern_heard("bob") == 0.0  # off by default


def test_answers_to_its_own_suggestions_calibrate_the_scores():
    suggester = make(threshold=0.0, max_suggestions=2)
    pairs = list(suggester([{"text": t} for t in TEXTS]))
    assert all(round(s, 6) == t["meta"]["score"] == t["meta"]["calibrated"] for s, t in pairs)  # identity yet
    foreign = format_task({"text": TEXTS[0]}, Example(TEXTS[0], tokenize(TEXTS[0])), input_hash(TEXTS[0]), 0, 0,
                          "LOC", {})  # fmt: skip
    suggester.observe([{**foreign, "_task_hash": 1, "answer": "accept"}])  # not offered by it: ignored
    assert not suggester.calibrator.points
    suggester.observe([{**t, "answer": "reject"} for _, t in pairs] + [{**t, "answer": "ignore"} for _, t in pairs])
    assert len(suggester.calibrator.points) == len(pairs) and suggester.calibrator.b < 0
    suggester.observe([{**t, "answer": "accept"} for _, t in pairs])  # each offer counts once
    assert len(suggester.calibrator.points) == len(pairs)
    score, task = next(iter(suggester([{"text": "Eve went to Oslo ."}])))
    assert score == pytest.approx(suggester.calibrator(task["meta"]["score"]), abs=1e-5)
    assert score < task["meta"]["score"]


def test_format_task_and_tokens_of():
    text = "Alice flew to Paris ."
    given = [{"text": w.text, "start": w.start, "end": w.end, "id": i} for i, w in enumerate(tokenize(text))]
    task = {"text": text, "tokens": given, "answer": "accept", "spans": [], "_task_hash": 5, "meta": {"a": 1}}
    tokens = tokens_of(task)
    assert [t.text for t in tokens] == ["Alice", "flew", "to", "Paris", "."]
    assert [t.ws for t in tokens] == [True, True, True, True, False]  # no "ws" given: read from the text
    out = format_task(task, Example(text, tokens), 42, 3, 3, "LOC", {"score": 0.5})
    assert out["spans"] == [{"start": 14, "end": 19, "token_start": 3, "token_end": 3, "label": "LOC"}]
    assert out["tokens"] is given and out["meta"] == {"score": 0.5} and "answer" not in out
    assert out["_input_hash"] == 42 and out["_task_hash"] != 5
    other = format_task(task, Example(text, tokens), 42, 0, 0, "PER", {})
    assert other["_task_hash"] != out["_task_hash"]
    assert tokens_of({"text": text}) == tokenize(text)


def test_stream_task_with_tokens_that_do_not_fit_its_text_is_logged_and_skipped(caplog):
    suggester = make(threshold=0.0)
    bad = {"text": "Eve went to Oslo .", "tokens": [{"text": "Eve", "start": 0, "end": 3}, {"text": "Oslo", "start": 40, "end": 44}]}
    with caplog.at_level("WARNING", logger="sparse_ner.loop.suggest"):
        out = [task for _, task in suggester([bad, {"text": TEXTS[0]}])]
    assert out and all(task["text"] == TEXTS[0] for task in out)  # the good task is still scored
    assert suggester.skipped_tasks == 1 and "stream task: tokens do not match the text" in caplog.text
    with pytest.raises(DataError):
        tokens_of(bad)


def test_predict_fills_spans_in_batches():
    suggester = make(batch_size=2)
    out = list(suggester.predict([{"text": t, "meta": {"i": i}} for i, t in enumerate(TEXTS)]))
    assert [t["meta"]["i"] for t in out] == [0, 1, 2, 3] and all("spans" in t and t["tokens"] for t in out)


@pytest.mark.gpu  # run on a GPU machine: pytest -m gpu (deselected by default)
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_scores_on_the_gpu_match_the_cpu():
    examples = [Example(t, tokenize(t)) for t in TEXTS]
    cpu = make(threshold=0.0).score(examples, [[]] * len(examples))
    gpu = make(threshold=0.0, device="cuda").score(examples, [[]] * len(examples))
    assert [[s[:3] for s in x] for x in cpu] == [[s[:3] for s in x] for x in gpu]
    assert [p for x in gpu for *_, p in x] == pytest.approx([p for x in cpu for *_, p in x], abs=1e-4)
