"""The prediction-time O bias: where the tagger applies it, that it is saved, and how training tunes it."""

from __future__ import annotations

import pytest
import torch

from sparse_ner.core.export import export, load
from sparse_ner.core.tagger import TaggerConfig
from sparse_ner.data.columns import make_example
from sparse_ner.training.o_bias import GRID, DevBatch, f1_at, tune_o_bias

SMALL = {"min_count": 1, "hidden": 8, "word_dim": 4, "char_dim": 4, "char_out": 4, "shape_dim": 4}
WORDS = [["Anna", "lives", "in", "Rome"], ["Bob", "left", "Paris", "today"]]


def tiny_tagger(**options):
    torch.manual_seed(0)
    return TaggerConfig(encoder_options=SMALL, **options).build(["LOC", "PER"], WORDS)


def test_the_bias_moves_only_o_and_only_when_predicting(tmp_path):
    tagger = tiny_tagger()
    batch = tagger.make_batch([make_example(w, ["O"] * len(w)) for w in WORDS])
    tagger.eval()
    plain = tagger.emissions(batch["inputs"])  # (B, T, K)
    tagger.o_bias = 2.5
    shifted = tagger.emissions(batch["inputs"])
    assert tagger.tags[0] == "O"
    torch.testing.assert_close(shifted[..., 0], plain[..., 0] + 2.5)
    torch.testing.assert_close(shifted[..., 1:], plain[..., 1:])
    tagger.train()
    torch.manual_seed(1)
    a = tagger.emissions(batch["inputs"])
    tagger.o_bias = 0.0
    torch.manual_seed(1)  # the same dropout masks
    torch.testing.assert_close(tagger.emissions(batch["inputs"]), a)  # training never sees the bias
    # a large bias predicts no entity at all; the bias is saved with the model
    tagger.o_bias = 50.0
    examples = [make_example(w, ["O"] * len(w)) for w in WORDS]
    assert tagger.tag(examples) == [[], []]
    export(tagger, tmp_path / "m")
    again = load(tmp_path / "m")
    assert again.o_bias == 50.0 and again.tag(examples) == [[], []]


def dev_batch(scores: list[list[float]], gold: list[tuple[int, int, str]], rejected: list | None = None) -> tuple:
    """One sentence whose emission rows are ``scores`` (tags O, B-LOC, I-LOC, B-PER, I-PER); with
    ``rejected`` (a list) its annotation is binary answers, else complete."""
    emissions = torch.tensor([scores], dtype=torch.float32)  # (1, T, K)
    return DevBatch(emissions, torch.ones(1, len(scores), dtype=torch.bool), [gold], [rejected or []], [rejected is None])


def test_tuning_picks_the_bias_with_the_best_dev_f1_nearest_zero(monkeypatch):
    from sparse_ner.training import o_bias

    tagger = tiny_tagger(transitions=False)  # a softmax head: each word decoded on its own
    low = -9.0
    # word 0 is a LOC the model is sure of (3 over O), word 1 a false LOC it is less sure of (0.8 over O),
    # word 2 a PER at 1.2 over O that the gold also has
    dev = [dev_batch([[0, 3, low, low, low], [0, 0.8, low, low, low], [0, low, low, 1.2, low]],
                     [(0, 0, "LOC"), (2, 2, "PER")])]
    assert f1_at(tagger, dev, 0.0)["precision"] == pytest.approx(2 / 3)
    assert f1_at(tagger, dev, 0.5)["precision"] == pytest.approx(2 / 3)
    assert f1_at(tagger, dev, 1.0) == pytest.approx({"precision": 1.0, "recall": 1.0, "f1": 1.0})
    assert f1_at(tagger, dev, 1.5)["recall"] == pytest.approx(0.5)  # the PER is lost
    monkeypatch.setattr(o_bias, "collect", lambda tagger, batches: dev)  # these emissions, not an encoder's
    best, scores = tune_o_bias(tagger, [])
    assert best == 1.0 and tagger.o_bias == 1.0 and scores[1.0]["f1"] == 1.0 and set(scores) == set(GRID)
    # a dev set where no bias helps keeps 0 (the F1 is the same at -1 ... 2: the tie goes to 0)
    fair = [dev_batch([[0, 3, low, low, low], [2, 0, low, low, low]], [(0, 0, "LOC")])]
    monkeypatch.setattr(o_bias, "collect", lambda tagger, batches: fair)
    assert tune_o_bias(tagger, [])[0] == 0.0
    # binary answers: their F1 does not see a spurious span nobody asked about, so it favours recall.
    # Here they alone would ask for a negative bias (an accepted LOC at 0.8 under O): mixed with the
    # complete texts above they are left out; on their own only biases >= 0 are tried
    binary = [dev_batch([[0, -0.8, low, low, low], [0, 0.5, low, low, low]], [(0, 0, "LOC")], rejected=[])]
    assert f1_at(tagger, binary, -1.0)["f1"] > f1_at(tagger, binary, 0.0)["f1"]
    monkeypatch.setattr(o_bias, "collect", lambda tagger, batches: dev + binary)
    assert tune_o_bias(tagger, [])[0] == 1.0
    monkeypatch.setattr(o_bias, "collect", lambda tagger, batches: binary)
    best, scores = tune_o_bias(tagger, [])
    assert best == 0.0 and min(scores) == 0.0 and tagger.o_bias == 0.0
    # ... and a positive bias is still found where a rejected span goes away with it
    rejecting = [dev_batch([[0, 3, low, low, low], [0, 0.8, low, low, low]], [(0, 0, "LOC")], rejected=[(1, 1, "LOC")])]
    monkeypatch.setattr(o_bias, "collect", lambda tagger, batches: rejecting)
    assert tune_o_bias(tagger, [])[0] == 1.0


def test_collect_runs_the_encoder_without_the_bias_and_restores_it():
    from sparse_ner.training.o_bias import collect

    tagger = tiny_tagger()
    examples = [make_example(w, ["B-PER", "O", "O", "B-LOC"]) for w in WORDS]
    batch = tagger.make_batch(examples)
    tagger.o_bias = 3.0
    tagger.train()
    (got,) = collect(tagger, [batch])
    assert tagger.o_bias == 3.0 and tagger.training  # restored
    tagger.eval()
    tagger.o_bias = 0.0
    torch.testing.assert_close(got.emissions, tagger.emissions(batch["inputs"]))
    assert got.gold == batch["gold"] and got.complete == batch["complete"]


def test_eval_without_o_bias_restores_the_mode_and_bias_after_an_error():
    tagger = tiny_tagger()
    tagger.o_bias = 1.5
    tagger.train()
    try:
        with tagger.eval_without_o_bias() as same:
            assert same is tagger and not tagger.training and tagger.o_bias == 0.0
            raise KeyError("inside")
    except KeyError:
        pass
    assert tagger.training and tagger.o_bias == 1.5
    tagger.eval()
    with tagger.eval_without_o_bias():
        pass
    assert not tagger.training and tagger.o_bias == 1.5
