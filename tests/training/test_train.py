"""End to end: train on a tiny synthetic corpus, export, reload, predict, evaluate; CLI smoke tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]

from synthetic import make_corpus, train_args  # noqa: E402  (tests/synthetic.py)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from sparse_ner.cli.train import main

    folder = tmp_path_factory.mktemp("train")
    paths = make_corpus(folder)
    assert main(train_args(paths, folder / "runs")) == 0
    return {**paths, "model": folder / "runs" / "model", "runs": folder / "runs"}


def test_train_exports_a_model_that_reloads_identically(trained: dict[str, Path]) -> None:
    import sparse_ner
    from sparse_ner.data.read import read_any

    model = trained["model"]
    assert {"tagger.json", "config.yaml"} <= {p.name for p in model.iterdir()}
    from sparse_ner.training.o_bias import GRID

    assert json.loads((model / "tagger.json").read_text())["o_bias"] in GRID  # tuned on dev (o_bias: auto)
    tagger = sparse_ner.load(model)
    again = sparse_ner.load(model)
    examples = read_any(trained["test"], gold=True)
    first = tagger.tag(examples, batch_size=7)
    assert first == again.tag(examples, batch_size=7)  # a reload predicts identically
    other = again.tag(examples, batch_size=64)  # batching changes padding, not predictions
    assert [[s[:3] for s in x] for x in first] == [[s[:3] for s in x] for x in other]
    assert [s.score for x in first for s in x] == pytest.approx([s.score for x in other for s in x], abs=1e-5)
    assert all(0.0 <= s.score <= 1.0 for spans in first for s in spans)
    # the exported weights are those of the best checkpoint
    (ckpt,) = trained["runs"].rglob("best-*.ckpt")
    state = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    exported = tagger.state_dict()
    assert set(exported) == {k.removeprefix("tagger.") for k in state if k.startswith("tagger.")}
    for key, value in exported.items():
        assert torch.equal(value, state[f"tagger.{key}"]), key


def test_checkpoint_and_config_are_logged(trained: dict[str, Path]) -> None:
    assert list(trained["runs"].rglob("*.ckpt")), "no checkpoint written"
    assert list(trained["runs"].rglob("config.yaml")), "resolved config not saved"
    assert list(trained["runs"].rglob("metrics.csv")), "no CSV log"


def test_evaluate_cli(trained: dict[str, Path]) -> None:
    from sparse_ner.core.evaluate import evaluate

    result = evaluate(trained["model"], trained["test"])
    assert 0.0 <= result["f1"] <= 1.0
    out = subprocess.run([sys.executable, "-m", "sparse_ner.evaluate", str(trained["model"]), str(trained["test"]),
                          "--json"], capture_output=True, text=True, check=True)  # fmt: skip
    assert json.loads(out.stdout)["f1"] == pytest.approx(result["f1"])


def test_train_help() -> None:
    out = subprocess.run([sys.executable, "-m", "sparse_ner.train", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "--data.max_tasks" in out.stdout and "--export_dir" in out.stdout


def test_train_cli_with_overrides(tmp_path: Path) -> None:
    paths = make_corpus(tmp_path, n_train=40, n_gold=10)
    cmd = [sys.executable, "-m", "sparse_ner.train", *train_args(paths, tmp_path / "runs", epochs=1),
           "--data.max_tasks=30", "--data.scheme=bioes", "--model.transitions=false"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "exported model" in out.stdout
    meta = json.loads((tmp_path / "runs" / "model" / "tagger.json").read_text())
    assert meta["scheme"] == "bioes" and meta["transitions"] is False


def test_every_input_path_is_checked_before_reading(tmp_path: Path) -> None:
    from sparse_ner.training.datamodule import TaggerDataModule

    paths = make_corpus(tmp_path)
    dm = TaggerDataModule(str(paths["train"]), str(paths["dev"]), test=str(tmp_path / "tset.jsonl"))
    with pytest.raises(FileNotFoundError, match=r"data.test: no such file: .*tset.jsonl"):
        dm.setup("fit")
    assert dm.train_examples is None  # nothing was read
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(ValueError, match="holds no usable example"):
        TaggerDataModule(str(empty), str(paths["dev"])).setup("fit")


def test_a_pretrained_encoder_that_knows_too_few_training_words_is_warned_about(capsys) -> None:
    from sparse_ner.training.module import TaggerModule

    module = TaggerModule(encoder="minilm", entity_ratio=0.1)
    module.build(["NAME"], [list("高勇：男，中国国籍，无境外居留权，")])  # MiniLM: [UNK] for half the characters
    out = capsys.readouterr().out
    assert "[model] warning: the tokenizer of minilm does not know" in out and "--model.encoder small" in out
    module.build(["PER"], [["Alice", "flew", "to", "Paris", "."]])
    assert "warning" not in capsys.readouterr().out
