"""Which learning rate the encoder gets when none is given: the head's for the small encoder (trained
from scratch), PRETRAINED_LR for a pretrained transformer, offline and in the loop alike."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from sparse_ner.core.encoders import PRETRAINED_LR, encoder_lr
from sparse_ner.loop.defaults import TRANSFORMER_LR
from sparse_ner.loop.learner import make_optimizer
from sparse_ner.training.module import TaggerModule

WORDS = [["Anna", "lives", "in", "Paris", "."], ["w1", "w2"]]


def group_lrs(module: TaggerModule) -> tuple[set[float], set[float]]:
    """(initial learning rates of the encoder's groups, of the head's) from configure_optimizers."""
    module._trainer = SimpleNamespace(estimated_stepping_batches=10)  # all configure_optimizers reads of it
    optimizer = module.configure_optimizers()["optimizer"]
    encoder_ids = {id(p) for p in module.tagger.encoder.parameters()}
    enc = {g["initial_lr"] for g in optimizer.param_groups if all(id(p) in encoder_ids for p in g["params"])}
    head = {g["initial_lr"] for g in optimizer.param_groups if not any(id(p) in encoder_ids for p in g["params"])}
    assert len(optimizer.param_groups) == len([g for g in optimizer.param_groups if g["initial_lr"] in enc | head])
    return enc, head


def test_the_loop_and_offline_training_share_the_pretrained_rate():
    assert TRANSFORMER_LR == PRETRAINED_LR == 1e-4


@pytest.mark.parametrize("given", [None, 3e-5])
def test_a_pretrained_encoder_does_not_take_the_heads_rate(bert_folder, given):
    module = TaggerModule(encoder=str(bert_folder), lr=2e-3, encoder_lr=given, entity_ratio=None)
    module.build(["LOC", "PER"], WORDS)
    expected = PRETRAINED_LR if given is None else given
    assert group_lrs(module) == ({expected}, {2e-3})
    assert encoder_lr(module.tagger.encoder, 2e-3, given) == expected
    assert make_optimizer(module.tagger, 2e-3, given).param_groups[0]["lr"] == expected  # the loop's optimizer


def test_the_small_encoder_learns_at_the_heads_rate_unless_told():
    module = TaggerModule(encoder_options={"min_count": 1, "hidden": 8, "word_dim": 4}, lr=2e-3, entity_ratio=None)
    module.build(["LOC", "PER"], WORDS)
    assert group_lrs(module) == ({2e-3}, {2e-3})
    module = TaggerModule(encoder_options={"min_count": 1, "hidden": 8, "word_dim": 4}, lr=2e-3, encoder_lr=5e-4,
                          entity_ratio=None)  # fmt: skip
    module.build(["LOC", "PER"], WORDS)
    assert group_lrs(module) == ({5e-4}, {2e-3})
