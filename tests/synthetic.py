"""A tiny synthetic corpus (people and cities in templates) shared by the training and review tests."""

from __future__ import annotations

import json
import random
from pathlib import Path

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
