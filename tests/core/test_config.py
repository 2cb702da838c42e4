"""The tagger's options are declared once (:class:`TaggerConfig`) and the signatures that repeat them
(``TaggerModule``'s ``--model.*`` options, ``Tagger``'s keywords) keep its names, defaults and types."""

from __future__ import annotations

import dataclasses
import inspect
import json
import typing

import pytest
import torch

from sparse_ner.core.tagger import HEAD_OPTIONS, TaggerConfig
from sparse_ner.core.export import export, load
from sparse_ner.core.tagger import Tagger
from sparse_ner.data.columns import make_example
from sparse_ner.training.module import TaggerModule

SMALL = {"min_count": 1, "hidden": 8, "word_dim": 4, "char_dim": 4, "char_out": 4, "shape_dim": 4}
WORDS = [["Anna", "lives", "in", "Rome"], ["Bob", "left", "Paris"]]


def declared(function: typing.Callable, names: typing.Iterable[str]) -> dict[str, tuple[object, object]]:
    """``name -> (type, default)`` of the parameters ``names`` of ``function``."""
    hints = typing.get_type_hints(function)
    params = inspect.signature(function).parameters
    return {name: (hints.get(name), params[name].default) for name in names if name in params}


def fields() -> dict[str, tuple[object, object]]:
    hints = typing.get_type_hints(TaggerConfig)
    return {f.name: (hints[f.name], f.default) for f in dataclasses.fields(TaggerConfig)}


def test_the_training_module_declares_the_tagger_options_of_the_config():
    module_options = set(inspect.signature(TaggerModule.__init__).parameters) - {"self"}
    assert set(TaggerConfig.names()) <= module_options, "TaggerModule lacks tagger options"
    not_tagger = module_options - set(TaggerConfig.names())
    assert not_tagger == {"labels", "lr", "encoder_lr", "weight_decay", "warmup", "decay"}, (
        "a new TaggerModule option: a tagger option belongs in TaggerConfig, else add it here"
    )
    # training measures the entity ratio on its data by default; a bare tagger (the loop) has it off
    # and tunes the O bias on dev after training
    assert declared(TaggerModule.__init__, TaggerConfig.names()) == {**fields(), "entity_ratio": (fields()["entity_ratio"][0], "auto"),
                                                                     "o_bias": (fields()["o_bias"][0], "auto")}


def test_the_tagger_declares_the_head_options_of_the_config():
    head = ("scheme", *HEAD_OPTIONS)
    assert set(HEAD_OPTIONS) | {"encoder", "encoder_options", "scheme"} == set(TaggerConfig.names())
    tagger_options = set(inspect.signature(Tagger.__init__).parameters) - {"self", "encoder", "labels"}
    assert tagger_options == set(head)
    expected = {k: v for k, v in fields().items() if k in head}
    expected["entity_ratio"] = (float | None, None)  # a tagger takes a number: "auto" is resolved before
    expected["o_bias"] = (float, 0.0)
    assert declared(Tagger.__init__, head) == expected


def test_the_module_builds_its_tagger_from_its_hyperparameters():
    module = TaggerModule(encoder_options=SMALL, dropout=0.0, factored=True, reject_prior=0.3, lr=0.1)
    assert module.tagger_config == TaggerConfig(encoder_options=SMALL, dropout=0.0, factored=True, reject_prior=0.3,
                                                entity_ratio="auto", o_bias="auto")
    tagger = module.build(["LOC", "PER"], WORDS)
    assert tagger.factored and tagger.reject_prior == 0.3 and tagger.options["dropout"] == 0.0
    assert tagger.o_bias == 0.0  # "auto": none until training tunes it


def test_parse_checks_the_keys():
    assert TaggerConfig.parse(None) == TaggerConfig()
    assert TaggerConfig.parse("minilm") == TaggerConfig(encoder="minilm")
    assert TaggerConfig.parse({"dropout": 0.1}) == TaggerConfig(dropout=0.1)
    config = TaggerConfig(factored=True)
    assert TaggerConfig.parse(config) is config
    with pytest.raises(ValueError, match="unknown tagger options \\['dropuot'\\]; expected some of .*'dropout'"):
        TaggerConfig.parse({"dropuot": 0.1})
    with pytest.raises(ValueError, match="reject_prior"):
        TaggerConfig(reject_prior=1.0)
    with pytest.raises(ValueError, match="scheme"):
        TaggerConfig(scheme="iob")  # type: ignore[arg-type]


def test_built_tagger_exports_in_the_same_format(tmp_path):
    torch.manual_seed(0)
    config = TaggerConfig(encoder_options=SMALL, scheme="bioes", entity_ratio=0.1, reject_prior=0.2)
    tagger = config.build(["LOC", "PER"], WORDS).eval()
    export(tagger, tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "tagger.json").read_text())
    assert set(meta) == {"format", "labels", "tags", "scheme", "encoder", *HEAD_OPTIONS}
    assert {k: meta[k] for k in HEAD_OPTIONS} == config.head_options() and meta["scheme"] == "bioes"
    examples = [make_example(w, ["O"] * len(w)) for w in WORDS]
    assert load(tmp_path / "m").tag(examples) == tagger.tag(examples)


def test_the_batch_has_the_strict_lattice_exactly_when_the_reject_prior_needs_it():
    ex = make_example(["Anna", "lives", "in", "Rome"], ["B-PER", "O", "O", "B-LOC"])
    ex.rejected = [dataclasses.replace(ex.accepted[0], label="LOC")]
    ex.accepted = []
    ex.complete = False
    plain = TaggerConfig(encoder_options=SMALL).build(["LOC", "PER"], WORDS)
    prior = TaggerConfig(encoder_options=SMALL, reject_prior=0.5).build(["LOC", "PER"], WORDS)
    assert "strict_lattice" not in plain.make_batch([ex]) and "strict_lattice" in prior.make_batch([ex])
    assert torch.isfinite(prior.loss(prior.make_batch([ex])))


@pytest.mark.gpu  # run on a GPU machine: pytest -m gpu (deselected by default; scripts/gpu_session.sh runs it)
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_the_reject_prior_loss_on_the_gpu_matches_the_cpu():
    """The strict lattice (rejected spans ruled out for every label) travels to the device with the batch."""
    ex = make_example(["Anna", "lives", "in", "Rome"], ["B-PER", "O", "O", "B-LOC"])
    ex.rejected = [dataclasses.replace(ex.accepted[0], label="LOC"), dataclasses.replace(ex.accepted[1], label="PER")]
    ex.accepted = ex.accepted[1:]
    ex.complete = False
    torch.manual_seed(0)
    tagger = TaggerConfig(encoder_options=SMALL, reject_prior=0.5, dropout=0.0).build(["LOC", "PER"], WORDS).eval()
    cpu = tagger.loss(tagger.make_batch([ex]))
    tagger = tagger.cuda()
    batch = tagger.to_device(tagger.make_batch([ex]))
    assert batch["strict_lattice"].base_of.device.type == "cuda"
    gpu = tagger.loss(batch)
    assert gpu.device.type == "cuda" and float(gpu) == pytest.approx(float(cpu), rel=1e-4)
