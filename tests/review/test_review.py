"""Review scores, review tasks, the before_db hook, fold assignment, and the review CLI."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
import torch

from sparse_ner.data.columns import make_example
from sparse_ner.data.example import Example, Span
from sparse_ner.core.tagger import Tagger, make_batch
from sparse_ner.review.score import SCORES, rank, score_examples
from sparse_ner.review.tasks import review_task, strip_predicted
from sparse_ner.tags import spans_to_tags

from synthetic import make_corpus, sentence, train_args

LABELS = ["LOC", "PER"]


def gold(n: int, seed: int = 0) -> list[Example]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words, spans = sentence(rng)
        out.append(make_example(words, spans_to_tags(len(words), spans), "bio"))
    return out


def with_spans(ex: Example, keys: list[tuple[int, int, str]], complete: bool = True,
               rejected: list[tuple[int, int, str]] = ()) -> Example:  # fmt: skip
    tok = ex.tokens
    span = lambda s, e, label: Span(tok[s].start, tok[e].end, s, e, label)  # noqa: E731
    return Example(ex.text, tok, [span(*k) for k in keys], [span(*k) for k in rejected], complete=complete)


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    """A tiny tagger fit on clean synthetic sentences (a few seconds on CPU)."""
    from sparse_ner.core.encoders import build_encoder

    torch.manual_seed(0)
    train = gold(200)
    enc = build_encoder("small", vocab_words=[ex.words for ex in train], min_count=1, hidden=32, word_dim=16,
                        char_out=8, char_dim=8)  # fmt: skip
    model = Tagger(enc, LABELS, dropout=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    for step in range(40):
        batch = make_batch(enc, train[(step * 20) % 200 :][:20], model.tags, model.scheme)
        loss = model.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def test_corrupted_annotations_rank_first(tagger: Tagger) -> None:
    examples = gold(60, seed=1)
    corrupted = {}
    for i in (3, 17, 42):  # swap a label, drop an entity, shift a boundary
        ex = examples[i]
        keys = [s.key for s in ex.accepted]
        assert keys, "the generator gave a sentence without entities"
        s, e, label = keys[0]
        if i == 3:
            keys[0] = (s, e, "LOC" if label == "PER" else "PER")
        elif i == 17:
            keys = keys[1:]
        else:
            keys[0] = (s, e + 1, label) if e + 1 < len(ex) and all(k[0] != e + 1 for k in keys) else (s - 1, e, label)
        corrupted[i] = with_spans(ex, keys)
    data = [corrupted.get(i, ex) for i, ex in enumerate(examples)]
    reviews = score_examples(tagger, data, batch_size=16)
    assert [r.index for r in reviews] == list(range(60))
    for score in ("span_odds", "worst_span", "loss", "margin"):
        top = {r.index for r in rank(reviews, score)[:6]}
        assert set(corrupted) <= top, (score, [(r.index, round(r.scores[score], 2)) for r in rank(reviews, score)[:8]])


def test_scores_are_what_they_say(tagger: Tagger) -> None:
    ex = next(ex for ex in gold(10, seed=2) if ex.accepted)
    (r,) = score_examples(tagger, [ex])
    # loss: the CRF's partial-label NLL of the example's own annotation
    batch = make_batch(tagger.encoder, [ex], tagger.tags, tagger.scheme)
    with torch.no_grad():
        assert r.scores["loss"] == pytest.approx(float(tagger.loss(batch)), abs=1e-4)
    # worst_span: the most surprising accepted span (complete: or predicted span it lacks)
    emissions = tagger.emissions(batch["inputs"]).detach()
    mask = batch["inputs"]["word_mask"]
    keys = [s.key for s in ex.accepted]
    p_acc = tagger.crf.span_probs(emissions, mask, [keys])[0]
    extra = [(s, e, lab, p) for s, e, lab, p in r.predicted if (s, e, lab) not in keys]
    expected = max([-math.log(p) for p in p_acc] + [-math.log(1 - p) for *_, p in extra])
    assert r.scores["worst_span"] == pytest.approx(expected, rel=1e-4)
    # span_odds: the best alternative (another label, a boundary moved by one) against each accepted span
    alts = [[(s, e, x) for x in LABELS if x != lab] + [(a, b, lab) for a, b in ((s - 1, e), (s + 1, e), (s, e - 1), (s, e + 1))
             if 0 <= a <= b < len(ex)] for s, e, lab in keys]  # fmt: skip
    odds = [math.log(max(tagger.crf.span_probs(emissions, mask, [al])[0])) - math.log(p) for al, p in zip(alts, p_acc)]
    odds += [math.log(p) - math.log(1 - p) for *_, p in extra]
    assert r.scores["span_odds"] == pytest.approx(max(0.0, *odds), rel=1e-4, abs=1e-6)
    # margin: 0 when the annotation is the model's Viterbi path
    viterbi = with_spans(ex, [(s, e, lab) for s, e, lab, _ in r.predicted])
    (rv,) = score_examples(tagger, [viterbi])
    assert rv.scores["margin"] == pytest.approx(0.0, abs=1e-4) and rv.scores["f1"] == 0.0
    assert all(0.0 <= r.scores[k] <= 1.0 for k in ("f1", "token"))
    assert set(r.scores) == set(SCORES)
    assert r.type_probs.shape == (len(ex), 1 + len(LABELS))


def test_progress_bars_count_every_text_and_change_nothing(tagger: Tagger, capsys: pytest.CaptureFixture) -> None:
    from sparse_ner.core.evaluate import evaluate_tagger

    examples = gold(70, seed=4)
    quiet = score_examples(tagger, examples, batch_size=32)
    assert capsys.readouterr().err == ""
    shown = score_examples(tagger, examples, batch_size=32, progress=True)
    err = capsys.readouterr().err
    assert "review: scoring" in err and "70/70" in err
    assert [r.scores for r in shown] == [r.scores for r in quiet]
    plain = evaluate_tagger(tagger, examples, batch_size=8)
    assert evaluate_tagger(tagger, examples, batch_size=8, progress=True) == plain  # 8 * 16 < 70: one chunk
    assert "evaluate" in capsys.readouterr().err
    assert evaluate_tagger(tagger, examples, batch_size=2) == evaluate_tagger(tagger, examples, batch_size=64)


def test_binary_answers_score_accepts_and_rejects(tagger: Tagger) -> None:
    ex = next(ex for ex in gold(10, seed=3) if ex.accepted)
    (s, e, label) = ex.accepted[0].key
    wrong = "LOC" if label == "PER" else "PER"
    accept_wrong = with_spans(ex, [(s, e, wrong)], complete=False)
    reject_right = with_spans(ex, [], complete=False, rejected=[(s, e, label)])
    accept_right = with_spans(ex, [(s, e, label)], complete=False)
    empty = with_spans(ex, [], complete=False)
    r_aw, r_rr, r_ar, r_e = score_examples(tagger, [accept_wrong, reject_right, accept_right, empty])
    batch = make_batch(tagger.encoder, [ex])
    emissions = tagger.emissions(batch["inputs"]).detach()
    p_right, p_wrong = tagger.crf.span_probs(emissions, batch["inputs"]["word_mask"], [[(s, e, label), (s, e, wrong)]])[0]
    assert r_aw.scores["worst_span"] == pytest.approx(-math.log(p_wrong), rel=1e-4)
    assert r_rr.scores["worst_span"] == pytest.approx(-math.log(1 - p_right), rel=1e-4)
    assert r_aw.scores["worst_span"] > r_ar.scores["worst_span"] and r_rr.scores["worst_span"] > r_ar.scores["worst_span"]
    assert r_rr.scores["span_odds"] == pytest.approx(max(0.0, math.log(p_right / (1 - p_right))), rel=1e-4, abs=1e-6)
    assert r_aw.scores["span_odds"] > r_ar.scores["span_odds"]
    assert r_rr.scores["f1"] == 1.0 and r_ar.scores["f1"] == 0.0  # a predicted rejected span is a false positive
    assert r_e.scores["loss"] == pytest.approx(0.0, abs=1e-5) and r_e.scores["worst_span"] == 0.0


def test_review_task_shows_both_and_before_db_restores_the_annotation(tagger: Tagger) -> None:
    ex = next(ex for ex in gold(10, seed=4) if ex.accepted)
    keys = [s.key for s in ex.accepted]
    binary = with_spans(ex, keys[:1], complete=False, rejected=[(0, 0, "LOC")] if keys[0][0] != 0 else [(1, 1, "LOC")])
    for example in (ex, binary):
        (r,) = score_examples(tagger, [example])
        task = review_task(r, "loss", rank_=1)
        assert task["_view_id"] == "spans_manual" and task["meta"]["rank"] == 1
        assert task["meta"]["review_score"] == pytest.approx(r.scores["loss"], abs=1e-4)
        predicted = [sp for sp in task["spans"] if sp["label"].endswith(":PREDICTED")]
        assert len(predicted) == len(r.predicted) and all(0 <= sp["score"] <= 1 for sp in predicted)
        for sp in task["spans"]:
            assert example.text[sp["start"] : sp["end"]] == " ".join(example.words[sp["token_start"] : sp["token_end"] + 1])
        (saved,) = strip_predicted([{**task, "answer": "accept"}])
        assert [(sp["token_start"], sp["token_end"], sp["label"]) for sp in saved["spans"]] == [s.key for s in example.accepted]
        assert saved["_view_id"] == ("spans_manual" if example.complete else "ner")
        assert task["spans"] != saved["spans"] or not predicted  # the hook did not mutate the task


def test_fold_assignment_is_stable_and_by_text() -> None:
    from sparse_ner.review.folds import assign_folds

    examples = gold(100, seed=5)
    for i, ex in enumerate(examples):
        ex.input_hash = i
    folds = assign_folds(examples, 3)
    assert set(folds) == {0, 1, 2} and min(folds.count(k) for k in range(3)) > 15
    assert assign_folds(examples[::-1], 3) == folds[::-1]  # independent of order
    assert assign_folds(examples, 3, seed=1) != folds
    with pytest.raises(ValueError):
        assign_folds(examples, 1)


def test_review_cli_with_a_model(tagger: Tagger, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from sparse_ner.core.export import export
    from sparse_ner.cli.review import main

    export(tagger, tmp_path / "model")
    paths = make_corpus(tmp_path, n_train=60, n_gold=10)
    out = tmp_path / "review.jsonl"
    assert main([str(paths["train"]), "-o", str(out), "--model", str(tmp_path / "model"), "--score", "loss"]) == 0
    tasks = [json.loads(line) for line in out.read_text().splitlines()]
    scores = [t["meta"]["review_score"] for t in tasks]
    assert scores == sorted(scores, reverse=True) and [t["meta"]["rank"] for t in tasks] == list(range(1, len(tasks) + 1))
    assert len({t["_input_hash"] for t in tasks}) == len(tasks) > 20
    assert all(t["meta"]["review_method"] == "loss" for t in tasks)
    html = (tmp_path / "review.html").read_text()
    assert "annotated \\ predicted" in html and "Hardest" in html
    err = capsys.readouterr().err
    assert "review of" in err and "hardest" in err


def test_review_cli_out_of_fold(tmp_path: Path) -> None:
    """Two fold models, one epoch: each text is scored by the model that was not trained on it."""
    from sparse_ner.cli.review import main

    paths = make_corpus(tmp_path, n_train=60, n_gold=10)
    args = train_args(paths, tmp_path / "unused", epochs=1)
    config = tmp_path / "config.yaml"
    keep = ("--data.dev", "--data.batch_size", "--model.", "--trainer.max_epochs", "--trainer.accelerator",
            "--trainer.enable_progress_bar")  # fmt: skip
    import yaml

    flat = dict(a.removeprefix("--").split("=", 1) for a in args if a.startswith(keep))
    nested: dict = {}
    for k, v in flat.items():
        section, option = k.split(".", 1)
        nested.setdefault(section, {})[option] = yaml.safe_load(v)
    config.write_text(yaml.safe_dump(nested))
    out, models = tmp_path / "review.jsonl", tmp_path / "folds"
    assert main([str(paths["train"]), "-o", str(out), "--config", str(config), "--folds", "2",
                 "--models-dir", str(models), "--trainer.max_epochs=1"]) == 0  # fmt: skip
    tasks = [json.loads(line) for line in out.read_text().splitlines()]
    assert {t["meta"]["fold"] for t in tasks} == {0, 1}
    for k in (0, 1):
        trained_on = {json.loads(line)["_input_hash"] for line in (models / f"fold{k}_train.jsonl").read_text().splitlines()}
        held_out = {t["_input_hash"] for t in tasks if t["meta"]["fold"] == k}
        assert held_out and not (held_out & trained_on)
        assert (models / f"fold{k}" / "model" / "tagger.json").exists()


def test_bench_corruption_is_seeded_and_counted() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_review", Path(__file__).resolve().parents[2] / "scripts" / "bench_review.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    examples = gold(400, seed=6)
    out, changed, counts = bench.corrupt(examples, seed=0)
    again, changed2, _ = bench.corrupt(examples, seed=0)
    assert changed == changed2 and [[s.key for s in e.accepted] for e in out] == [[s.key for s in e.accepted] for e in again]
    n = sum(len(e.accepted) for e in examples)
    assert counts["swap"] == round(0.05 * n) and counts["delete"] == round(0.02 * n)
    assert counts["shift"] + counts["shift_impossible"] == round(0.02 * n)
    assert changed == {i for i, (a, b) in enumerate(zip(examples, out)) if [s.key for s in a.accepted] != [s.key for s in b.accepted]}
    assert all(e.text == o.text for e, o in zip(examples, out))


def test_bench_corruption_never_makes_overlapping_entities() -> None:
    import importlib.util

    from sparse_ner.core.lattice import annotation_of

    spec = importlib.util.spec_from_file_location("bench_review", Path(__file__).resolve().parents[2] / "scripts" / "bench_review.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    # two entities one token apart: shifting both toward the gap must not make them overlap
    words = ["Anna", "and", "Rome", "x"]
    tags = ["B-PER", "O", "B-LOC", "O"]
    ex = make_example(words, tags, "bio")
    assert len(ex.accepted) == 2
    for seed in range(40):
        out, _, _ = bench.corrupt([ex] * 20, seed=seed, swap=0.0, shift=1.0, delete=0.0)
        for o in out:
            annotation_of(o).check()
