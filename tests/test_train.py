"""End to end: train on a tiny synthetic corpus, export, reload, predict, evaluate; CLI smoke tests."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

FIRST = ["John", "Mary", "Anna", "Peter", "Laura", "Tom"]
LAST = ["Smith", "Jones", "Miller", "Brown"]
CITIES = ["Paris", "London", "Berlin", "Madrid", "Rome"]
TEMPLATES = [
    ("{p} lives in {c} .", True, True),
    ("Yesterday {p} flew to {c} .", True, True),
    ("The weather in {c} is nice .", False, True),
    ("{p} said nothing .", True, False),
    ("Nobody knows why .", False, False),
]


def _record(words: list[str], spans: list[tuple[int, int, str]], view: str, answer: str) -> dict:
    tokens, text, pos = [], "", 0
    for i, w in enumerate(words):
        tokens.append({"text": w, "start": pos, "end": pos + len(w), "id": i, "ws": i + 1 < len(words)})
        pos += len(w) + 1
    text = " ".join(words)
    sp = [{"start": tokens[s]["start"], "end": tokens[e]["end"], "token_start": s, "token_end": e, "label": lab}
          for s, e, lab in spans]  # fmt: skip
    return {"text": text, "tokens": tokens, "spans": sp, "_view_id": view, "answer": answer}


def sentence(rng: random.Random) -> tuple[list[str], list[tuple[int, int, str]]]:
    template, _, _ = rng.choice(TEMPLATES)
    person = [rng.choice(FIRST)] + ([rng.choice(LAST)] if rng.random() < 0.5 else [])
    words, spans = [], []
    for piece in template.split():
        if piece == "{p}":
            spans.append((len(words), len(words) + len(person) - 1, "PER"))
            words += person
        elif piece == "{c}":
            spans.append((len(words), len(words), "LOC"))
            words.append(rng.choice(CITIES))
        else:
            words.append(piece)
    return words, spans


def make_corpus(folder: Path, n_train: int = 120, n_gold: int = 30, seed: int = 0) -> dict[str, Path]:
    """Teach-style training answers and complete gold dev/test files, in ``folder``."""
    rng = random.Random(seed)
    train = []
    for _ in range(n_train):
        words, spans = sentence(rng)
        if spans and rng.random() < 0.6:
            train.append(_record(words, [rng.choice(spans)], "ner", "accept"))
        elif spans:  # a wrong label, or a boundary off by one
            s, e, lab = rng.choice(spans)
            wrong = (s, e, "LOC" if lab == "PER" else "PER") if rng.random() < 0.5 else (s, min(e + 1, len(words) - 1), lab)
            train.append(_record(words, [wrong], "ner", "reject" if wrong != (s, e, lab) else "accept"))
        else:
            train.append(_record(words, [(0, 0, "PER")], "ner", "reject"))
    paths = {"train": folder / "train.jsonl"}
    for name in ("dev", "test"):
        paths[name] = folder / f"{name}.jsonl"
        gold = [_record(*sentence(rng), "ner_manual", "accept") for _ in range(n_gold)]
        paths[name].write_text("".join(json.dumps(r) + "\n" for r in gold))
    paths["train"].write_text("".join(json.dumps(r) + "\n" for r in train))
    return paths


def train_args(paths: dict[str, Path], out: Path, epochs: int = 3) -> list[str]:
    return [
        f"--data.train={paths['train']}",
        f"--data.dev={paths['dev']}",
        f"--data.test={paths['test']}",
        "--data.batch_size=16",
        "--model.encoder=small",
        '--model.encoder_options={"min_count": 1, "hidden": 32, "word_dim": 16, "char_out": 8, "char_dim": 8}',
        "--model.lr=0.01",
        f"--trainer.max_epochs={epochs}",
        "--trainer.accelerator=cpu",
        "--trainer.enable_progress_bar=false",
        f"--trainer.default_root_dir={out}",
        f"--export_dir={out / 'model'}",
    ]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from sparse_ner.train import main

    folder = tmp_path_factory.mktemp("train")
    paths = make_corpus(folder)
    assert main(train_args(paths, folder / "runs")) == 0
    return {**paths, "model": folder / "runs" / "model", "runs": folder / "runs"}


def test_train_exports_a_model_that_reloads_identically(trained: dict[str, Path]) -> None:
    import sparse_ner
    from sparse_ner.datamodule import read_any

    model = trained["model"]
    assert {"tagger.json", "config.yaml"} <= {p.name for p in model.iterdir()}
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
    from sparse_ner.evaluate import evaluate

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
