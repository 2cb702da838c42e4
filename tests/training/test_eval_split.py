"""Training from db-out answers alone: a held-out split of the answers selects the model, binary dev
or test data is scored as binary, and ``entity_ratio: auto`` is measured on complete annotations."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from synthetic import make_corpus, train_args  # noqa: E402  (tests/synthetic.py)


def without(args: list[str], prefix: str) -> list[str]:
    return [a for a in args if not a.startswith(prefix)]


def test_without_a_dev_file_held_out_answers_select_the_model(tmp_path: Path, capsys) -> None:
    from sparse_ner.cli.train import main

    paths = make_corpus(tmp_path, n_train=200)
    args = without(train_args(paths, tmp_path / "runs", epochs=2), "--data.dev")
    assert main([*args, "--data.eval_split=0.25"]) == 0
    err = capsys.readouterr().err
    assert "training texts held out (eval_split 0.25, by _input_hash, seed 0)" in err
    (metrics,) = (tmp_path / "runs").rglob("metrics.csv")
    rows = [r for r in csv.DictReader(metrics.open()) if r.get("val_binary")]
    assert rows and all(float(r["val_binary"]) == 1.0 for r in rows)  # scored as binary answers
    assert all(r["val_reject_avoid"] != "" and r["val_agreement"] != "" for r in rows)


def test_a_dev_file_of_teach_answers_is_scored_as_binary(tmp_path: Path) -> None:
    from sparse_ner.cli.train import main

    paths = make_corpus(tmp_path, n_train=200)
    args = without(train_args(paths, tmp_path / "runs", epochs=1), "--data.dev")
    assert main([*args, f"--data.dev={paths['train']}"]) == 0
    (metrics,) = (tmp_path / "runs").rglob("metrics.csv")
    rows = [r for r in csv.DictReader(metrics.open()) if r.get("val_binary")]
    assert rows and float(rows[-1]["val_binary"]) == 1.0


def test_dev_and_eval_split_together_are_refused(tmp_path: Path) -> None:
    from sparse_ner.training.datamodule import TaggerDataModule

    with pytest.raises(ValueError, match="not both"):
        TaggerDataModule("train.jsonl", dev="dev.jsonl", eval_split=0.2)
    with pytest.raises(ValueError, match="between 0 and 1"):
        TaggerDataModule("train.jsonl", eval_split=20)


def test_the_split_is_by_text_and_does_not_depend_on_the_budget(tmp_path: Path) -> None:
    from sparse_ner.training.datamodule import TaggerDataModule

    paths = make_corpus(tmp_path, n_train=300)
    quiet = {"eval_split": 0.3}
    small = TaggerDataModule(str(paths["train"]), max_tasks=150, **quiet)
    full = TaggerDataModule(str(paths["train"]), **quiet)
    small.setup("fit"), full.setup("fit")
    held_small = {ex.input_hash for ex in small.dev_examples}
    held_full = {ex.input_hash for ex in full.dev_examples}
    trained_full = {ex.input_hash for ex in full.train_examples}
    assert held_small <= held_full and not held_full & trained_full  # a text stays on its side
    share = len(held_full) / (len(held_full) + len(trained_full))
    assert 0.15 < share < 0.45


def test_evaluate_on_teach_answers_says_it_is_binary(tmp_path: Path, capsys) -> None:
    from sparse_ner.cli import main as sparse_ner

    paths = make_corpus(tmp_path, n_train=120)
    assert sparse_ner(["train", *train_args(paths, tmp_path / "runs", epochs=1)]) == 0
    capsys.readouterr()
    assert sparse_ner(["evaluate", str(tmp_path / "runs" / "model"), str(paths["train"]), "--json"]) == 0
    out = capsys.readouterr()
    result = json.loads(out.out)
    assert result["binary"] == 1.0 and "reject_avoid" in result
    assert "binary answers" in out.err
    assert sparse_ner(["evaluate", str(tmp_path / "runs" / "model"), str(paths["train"])]) == 0
    assert "scored on binary answers" in capsys.readouterr().out


def test_auto_entity_ratio_is_measured_on_complete_annotations() -> None:
    from sparse_ner.data.example import Example, Span, Token
    from sparse_ner.training.entity_ratio import FALLBACK, MIN_TOKENS, auto_entity_ratio

    tokens = [Token(w, i * 2, i * 2 + 1) for i, w in enumerate("a b c d e f g h i j".split())]
    entity = Span(0, 3, 0, 1, "PER")  # 2 of 10 tokens
    complete = [Example("a b c d e f g h i j", tokens, [entity], complete=True) for _ in range(MIN_TOKENS // 10)]
    binary = [Example("a b c d e f g h i j", tokens, []) for _ in range(3)]
    assert auto_entity_ratio(complete)[0] == pytest.approx(0.2)
    value, why = auto_entity_ratio(binary, complete)
    assert value == pytest.approx(0.2) and "dev" in why
    value, why = auto_entity_ratio(binary, binary)  # nothing to measure or estimate it on: the fallback, said
    assert value == FALLBACK and "--model.entity_ratio" in why
    assert auto_entity_ratio(complete[:5], None)[0] == FALLBACK  # too few tokens to measure


def test_binary_answers_alone_estimate_the_ratio_from_their_accepts() -> None:
    from sparse_ner.data.example import Example, Span, Token
    from sparse_ner.training.entity_ratio import auto_entity_ratio

    # 400 texts of 10 tokens, each with one entity token ("Paris", 10% of the tokens); half of the
    # Paris tokens were asked about and accepted, the other half never asked about
    words = "Paris is a city with many old streets and cafes".split()
    tokens = [Token(w, i * 2, i * 2 + len(w)) for i, w in enumerate(words)]
    paris = Span(0, 5, 0, 0, "LOC")
    examples = [Example(" ".join(words), tokens, [paris] if i % 2 else [], rejected=[] if i % 2 else
                        [Span(9, 11, 2, 2, "LOC")]) for i in range(400)]  # fmt: skip
    value, why = auto_entity_ratio(examples, None)
    assert value == pytest.approx(0.1, abs=0.002) and "estimated from the accepted spans" in why
    # the accepted share alone (0.05) would be half the truth


def test_training_resolves_auto_and_exports_the_number(tmp_path: Path, capsys) -> None:
    from sparse_ner.cli.train import main

    paths = make_corpus(tmp_path, n_train=120, n_gold=800)  # repeated sentences merge: ~300 distinct texts
    assert main(train_args(paths, tmp_path / "runs", epochs=1)) == 0  # entity_ratio: the default, auto
    assert re.search(r"entity_ratio auto: 0\.\d+, the share of entity tokens in the \d+ complete dev texts",
                     capsys.readouterr().out)
    options = json.loads((tmp_path / "runs" / "model" / "tagger.json").read_text())
    ratio = json.dumps(options)
    assert '"entity_ratio": "auto"' not in ratio and '"entity_ratio": 0.' in ratio
