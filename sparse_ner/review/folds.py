"""Out-of-fold scores: train K taggers, each without one fold, and score each fold with its own.

Texts are assigned to folds by a seeded hash of their ``_input_hash`` (so every answer on one text
lands in the same fold, independently of file order). Each model is trained by
:func:`sparse_ner.training.train.fit` with the given YAML config, its ``data.train`` replaced by the
other folds (written as db-out JSONL: the original records of sparse texts, a ``ner_manual`` accept
for complete ones), no test set and no ``max_tasks`` cap; ``training`` holds section overrides of the
config (e.g. ``{"trainer": {"max_epochs": 5}}``). The dev set of the config still selects each
model's checkpoint.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

from sparse_ner.data.example import Example
from sparse_ner.data.hashes import hash32, input_hash
from sparse_ner.data.io import write_jsonl
from sparse_ner.data.prodigy import examples_to_tasks
from sparse_ner.review.score import Review, add_relative_scores, score_examples


def fold_of(example: Example, folds: int, seed: int = 0) -> int:
    """The fold of a text: a stable hash of its input hash, seeded."""
    key = example.input_hash if example.input_hash is not None else input_hash(example.text)
    return hash32("fold", str(seed), str(key)) % folds


def assign_folds(examples: Sequence[Example], folds: int, seed: int = 0) -> list[int]:
    if folds < 2:
        raise ValueError(f"out-of-fold scoring needs at least 2 folds, got {folds}")
    return [fold_of(ex, folds, seed) for ex in examples]


def write_examples(examples: Sequence[Example], path: Path) -> None:
    write_jsonl(examples_to_tasks(examples), path)


def train_fold(train: Sequence[Example], config: str | Path, folder: Path, name: str,
               training: Mapping[str, Any] | None = None) -> Path:  # fmt: skip
    """Train one tagger on ``train`` with ``config`` (and ``training`` section overrides); return its model folder."""
    from sparse_ner.training.train import fit

    folder.mkdir(parents=True, exist_ok=True)
    data = folder / f"{name}_train.jsonl"
    write_examples(train, data)
    sections = dict(training or {})
    sections["data"] = {**sections.get("data", {}), "train": str(data), "test": None, "max_tasks": None}
    sections["trainer"] = {**sections.get("trainer", {}), "default_root_dir": str(folder / name)}
    sections["model"] = {"o_bias": 0.0, **sections.get("model", {})}  # review scores without it (review.score)
    sections.update(run_name=name, export_dir=folder / name / "model")
    return fit(config, **sections).model


def out_of_fold(
    examples: Sequence[Example],
    config: str | Path,
    folds: int,
    *,
    training: Mapping[str, Any] | None = None,
    models_dir: str | Path | None = None,
    seed: int = 0,
    batch_size: int = 64,
    progress: bool = False,
) -> list[Review]:
    """Every example scored by the model trained on the other folds, in data order (``Review.fold`` set).

    ``models_dir`` keeps the fold models and their training files (default: a temporary folder);
    ``progress``: a progress bar on stderr while each fold is scored."""
    from sparse_ner.core.export import load

    assignment = assign_folds(examples, folds, seed)
    reviews: list[Review | None] = [None] * len(examples)
    with tempfile.TemporaryDirectory(prefix="sparse_ner_folds_") as tmp:
        root = Path(models_dir) if models_dir else Path(tmp)
        for k in range(folds):
            held = [i for i, f in enumerate(assignment) if f == k]
            if not held:
                continue
            train = [ex for ex, f in zip(examples, assignment) if f != k]
            tagger = load(train_fold(train, config, root, f"fold{k}", training))
            bar = f"review: scoring fold {k + 1} of {folds}" if progress else False
            for i, r in zip(held, score_examples(tagger, [examples[i] for i in held], batch_size, progress=bar)):
                r.index, r.fold = i, k
                reviews[i] = r
    return add_relative_scores([r for r in reviews if r is not None])
