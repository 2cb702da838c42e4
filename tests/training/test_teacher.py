"""``--data.teacher``: a first model's posteriors weight the answers of a second training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from synthetic import make_corpus, train_args  # noqa: E402  (tests/synthetic.py)


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from sparse_ner.cli.train import main

    folder = tmp_path_factory.mktemp("teacher")
    paths = make_corpus(folder)
    assert main(train_args(paths, folder / "runs", epochs=2)) == 0
    return {**paths, "folder": folder, "model": folder / "runs" / "model"}


def test_priors_are_the_teachers_log_posteriors_on_the_binary_texts_only(first) -> None:
    import sparse_ner
    from sparse_ner.data.read import read_any
    from sparse_ner.training.teacher import FLOOR, attach_priors

    teacher = sparse_ner.load(first["model"])
    examples = read_any(first["train"], gold=False)
    examples.append(read_any(first["dev"], gold=True)[0])  # a complete text: nothing to weight
    n = attach_priors(str(first["model"]), examples, teacher.tags)
    assert n == len(examples) - 1 and examples[-1].prior is None
    want = teacher.token_marginals(examples[:5])  # with the teacher's O bias, as its predictions
    for ex, q in zip(examples, want):
        assert ex.prior.shape == (len(ex), len(teacher.tags)) and ex.prior.dtype == np.float32
        np.testing.assert_allclose(np.exp(ex.prior), q.clamp_min(FLOOR).numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="same labels and scheme"):
        attach_priors(str(first["model"]), examples, ["O", "B-X", "I-X"])


def test_a_batch_carries_the_prior_and_the_loss_uses_it(first) -> None:
    import sparse_ner
    from sparse_ner.data.read import read_any
    from sparse_ner.training.teacher import attach_priors

    tagger = sparse_ner.load(first["model"])
    tagger.eval()  # no dropout: the same emissions in both losses
    examples = read_any(first["train"], gold=False)[:8]
    plain = tagger.make_batch(examples)
    assert "prior" not in plain
    attach_priors(str(first["model"]), examples, tagger.tags)
    batch = tagger.make_batch(examples)
    T = batch["inputs"]["word_mask"].shape[1]
    assert batch["prior"].shape == (8, T, len(tagger.tags))
    for b, ex in enumerate(examples):  # padded with 0 (no weighting)
        assert torch.equal(batch["prior"][b, : len(ex)], torch.as_tensor(ex.prior))
        assert batch["prior"][b, len(ex) :].abs().sum() == 0
    with torch.no_grad():
        emissions = tagger.emissions(batch["inputs"])
        want = tagger.crf.nll(emissions, batch["lattice"], prior=batch["prior"]).mean()
        assert tagger.loss(batch).item() == pytest.approx(
            want.item() + tagger.ratio_weight * _ratio(tagger, emissions, batch), rel=1e-5)
        assert tagger.loss(batch).item() != pytest.approx(tagger.loss(plain).item(), rel=1e-3)
    examples[0].prior = examples[0].prior[:-1]
    with pytest.raises(ValueError, match="does not fit"):
        tagger.make_batch(examples)


def _ratio(tagger, emissions, batch) -> float:
    if tagger.entity_ratio is None:
        return 0.0
    from sparse_ner.core.losses import entity_ratio_penalty

    mask = batch["inputs"]["word_mask"]
    return entity_ratio_penalty(tagger.crf.marginals(emissions, mask), mask, tagger.entity_ratio,
                                tagger.ratio_margin).item()  # fmt: skip


def test_train_with_a_teacher(first, capsys) -> None:
    from sparse_ner.cli.train import main

    out = first["folder"] / "taught"
    assert main([*train_args(first, out, epochs=2), f"--data.teacher={first['model']}"]) == 0
    from sparse_ner.data.read import read_any

    texts = sum(not ex.complete for ex in read_any(first["train"], gold=False))
    assert f"[train] teacher {first['model']}: its posteriors weight the answers of {texts} texts" in capsys.readouterr().err
    assert (out / "model" / "tagger.json").is_file()
    assert "teacher" not in json.loads((out / "model" / "tagger.json").read_text())  # the model does not need it
    with pytest.raises(FileNotFoundError, match="data.teacher: no exported model"):
        main([*train_args(first, first["folder"] / "bad", epochs=1), f"--data.teacher={first['folder']}"])


def _source(first, folder: Path) -> tuple[Path, list[str]]:
    """A source JSONL: fresh texts (one twice, one with its own tokens), a text without words, a text of
    the training answers and one of the dev file."""
    from synthetic import sentence

    import random

    rng = random.Random(5)
    fresh = [" ".join(sentence(rng)[0]) + f" Note{i} ." for i in range(6)]  # not among the corpus's sentences
    train_text = json.loads(first["train"].read_text().splitlines()[0])["text"]
    dev_text = json.loads(first["dev"].read_text().splitlines()[0])["text"]
    first_word = fresh[1].split()[0]
    tokens = [{"text": first_word, "start": 0, "end": len(first_word), "id": 0}]
    records = [{"text": fresh[0]}, {"text": fresh[0]}, {"text": "  "}, {"text": train_text}, {"text": dev_text},
               {"text": fresh[1], "tokens": tokens}, *({"text": t} for t in fresh[2:])]  # fmt: skip
    path = folder / "source.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path, fresh


def test_read_texts_leaves_out_answered_repeated_and_empty_texts(first) -> None:
    from sparse_ner.data.io import DataError
    from sparse_ner.data.read import read_any, read_texts

    path, fresh = _source(first, first["folder"])
    skip = read_any(first["train"], gold=False) + read_any(first["dev"], gold=True)
    said: list[str] = []
    texts = read_texts(path, skip=skip, report=said.append)
    assert [ex.text for ex in texts] == fresh
    assert all(not ex.accepted and not ex.rejected and not ex.complete and ex.input_hash is not None for ex in texts)
    assert len(texts[1].tokens) == 1  # its own tokens, as given
    assert "6 unanswered texts (left out: 2 already in the training or evaluation data, 1 repeated, 1 without text)" in said[0]
    assert [ex.text for ex in read_texts(path, skip=skip, max_texts=2, report=said.append)] == fresh[:2]
    assert said[-1].endswith("stopped at max 2)")
    bad = first["folder"] / "bad.jsonl"
    bad.write_text('{"text": "a b"}\n{"text": "c d", "tokens": [{"text": "x", "start": 0, "end": 1}]}\n')
    with pytest.raises(DataError, match="bad.jsonl:2: tokens do not match"):
        read_texts(bad)
    with pytest.raises(ValueError, match="read from JSONL"):
        read_texts(first["folder"] / "texts.txt")


def test_train_with_unlabeled_texts_and_a_teacher(first, capsys) -> None:
    from sparse_ner.cli.train import main

    path, fresh = _source(first, first["folder"])
    out = first["folder"] / "unlabeled"
    args = [*train_args(first, out, epochs=1), f"--data.teacher={first['model']}", f"--data.unlabeled={path}"]
    assert main(args) == 0
    from sparse_ner.data.read import read_any

    texts = sum(not ex.complete for ex in read_any(first["train"], gold=False))
    err = capsys.readouterr().err
    assert f"its posteriors weight the answers of {texts} texts and {len(fresh)} unanswered texts (data.unlabeled)" in err
    assert (out / "model" / "tagger.json").is_file()
    with pytest.raises(ValueError, match="data.unlabeled needs data.teacher"):
        main([*train_args(first, first["folder"] / "bad", epochs=1), f"--data.unlabeled={path}"])
    with pytest.raises(FileNotFoundError, match="data.unlabeled: no such file"):
        main([*args[:-1], f"--data.unlabeled={first['folder'] / 'nope.jsonl'}"])


def test_unlabeled_texts_change_the_training(first) -> None:
    """The unanswered texts join the training examples (after the answered ones) with the teacher's priors."""
    from sparse_ner.training.datamodule import TaggerDataModule

    path, fresh = _source(first, first["folder"])
    plain = TaggerDataModule(str(first["train"]), dev=str(first["dev"]), teacher=str(first["model"]))
    more = TaggerDataModule(str(first["train"]), dev=str(first["dev"]), teacher=str(first["model"]), unlabeled=str(path),
                            max_unlabeled=4)  # fmt: skip
    plain.setup("fit")
    more.setup("fit")
    assert len(more.train_examples) == len(plain.train_examples) + 4 and more.n_unlabeled == 4
    assert [ex.text for ex in more.train_examples[-4:]] == fresh[:4]
    assert all(ex.prior is not None and ex.prior.shape[0] == len(ex) for ex in more.train_examples[-4:])
    with pytest.raises(ValueError, match="max_unlabeled must be at least 1"):
        TaggerDataModule(str(first["train"]), teacher=str(first["model"]), unlabeled=str(path), max_unlabeled=0)
