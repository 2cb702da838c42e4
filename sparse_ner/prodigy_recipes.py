"""Prodigy recipes with a sparse_ner model in the loop: ``sparse_ner.teach`` and ``sparse_ner.correct``.

Registered through the ``prodigy_recipes`` entry point (``pyproject.toml``), so after ``pip install
-e .`` Prodigy finds them::

    prodigy sparse_ner.teach my_dataset ./model news.jsonl --label ORG,PER --patterns patterns.jsonl
    prodigy sparse_ner.correct my_dataset_gold ./model news.jsonl --label ORG,PER

``MODEL`` is a folder: an exported model or one saved by :meth:`OnlineTagger.to_disk` (its answer
memory is restored), or, when it does not exist yet, a cold model is built from ``--label`` and
``--encoder`` (the small encoder's vocabulary from the source texts, read once up front) and saved
there. The model is saved every ``--save-every`` updates and when the server stops, so a restart
continues where it left off; the saved folder is what ``python -m sparse_ner.predict`` loads.

Prodigy is imported only when a recipe is registered or run. The components (:func:`teach_stream`,
:func:`correct_stream`, :func:`make_update`, :func:`before_db`) are plain functions.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import srsly

from sparse_ner.online import OnlineTagger
from sparse_ner.selection import prefer_uncertain

try:  # registered only when Prodigy imports this module through its entry point
    from prodigy.core import recipe as _recipe
except ImportError:  # without Prodigy the recipes stay plain functions

    def _recipe(name: str, **args: Any) -> Callable:
        def wrap(fn: Callable) -> Callable:
            fn.recipe_name = name  # type: ignore[attr-defined]
            return fn

        return wrap


def load_model(model: str | Path, labels: Sequence[str] | None = None, source: Iterable[dict] = (),
               encoder: str = "small", patterns: str | Path | None = None) -> OnlineTagger:  # fmt: skip
    """The model folder if it exists (patterns given here replace saved ones), else a cold model."""
    from sparse_ner.patterns import read_patterns

    pats = read_patterns(patterns, labels) if patterns else None
    folder = Path(model)
    if (folder / "tagger.json").exists():
        online = OnlineTagger.from_disk(folder)
        if labels and set(labels) != set(online.labels):
            raise ValueError(f"{folder} was trained for labels {online.labels}, not {list(labels)}")
        if pats:
            from sparse_ner.patterns import PatternMatcher

            online.matcher = PatternMatcher(pats, online.labels)
        return online
    if not labels:
        raise ValueError(f"{folder} is not a model folder: give --label to start a new model there")
    return OnlineTagger.from_config(labels, encoder, texts=list(source), patterns=pats)


def teach_stream(online: OnlineTagger, source: Iterable[dict], algorithm: str = "ema",
                 bias: float = 0.0) -> Iterator[dict]:  # fmt: skip
    """Binary questions: one span per task, the uncertain ones (``prefer_uncertain``; a larger
    ``bias`` is stricter: only spans more uncertain than the running mean + bias * std)."""
    return prefer_uncertain(online(source), algorithm=algorithm, bias=bias)  # type: ignore[arg-type]


def correct_stream(online: OnlineTagger, source: Iterable[dict]) -> Iterator[dict]:
    """Whole texts with the model's spans pre-filled, for the ``ner_manual`` view."""
    for task in online.predict(source):
        task = dict(task)
        task["spans"] = [{**s, "score": s.get("score")} for s in task.get("spans", [])]
        yield task


def make_update(online: OnlineTagger, folder: str | Path | None = None, save_every: int = 10) -> Callable:
    """Prodigy's ``update`` callback: learn, and save the model every ``save_every`` calls."""

    def update(answers: list[dict]) -> float:
        loss = online.update(answers)
        if folder is not None and save_every > 0 and online.n_updates % save_every == 0:
            online.to_disk(folder)
        return loss

    return update


def before_db(answers: list[dict]) -> list[dict]:
    """Answers as stored: a copy with ``meta.score`` rounded and span scores dropped from
    ``ner_manual`` answers (the model's guesses are not part of the annotation)."""
    out = []
    for task in answers:
        task = copy.deepcopy(task)
        if task.get("_view_id") in ("ner_manual", "spans_manual"):
            for span in task.get("spans", []):
                span.pop("score", None)
        meta = task.get("meta")
        if isinstance(meta, dict) and isinstance(meta.get("score"), float):
            meta["score"] = round(meta["score"], 4)
        out.append(task)
    return out


def _read(source: str) -> list[dict]:
    return [t for t in srsly.read_jsonl(source) if isinstance(t, dict) and isinstance(t.get("text"), str)]


def _components(dataset: str, model: str, source: str, label: str | None, patterns: str | None,
                encoder: str, save_every: int, idle: bool = True
                ) -> tuple[OnlineTagger, list[dict], Callable, Callable]:  # fmt: skip
    labels = [x.strip() for x in label.split(",") if x.strip()] if label else None
    tasks = _read(source)
    online = load_model(model, labels, tasks, encoder, patterns)
    update = make_update(online, model, save_every)
    stop = online.start_idle_training() if idle else None  # learn from the answers while the annotator reads

    def on_exit(controller: Any = None) -> None:
        if stop is not None:
            stop.set()
        online.to_disk(model)

    return online, tasks, update, on_exit


@_recipe(
    "sparse_ner.teach",
    dataset=("Dataset to save answers to", "positional", None, str),
    model=("Model folder (created when missing)", "positional", None, str),
    source=("JSONL file of texts", "positional", None, str),
    label=("Comma-separated labels", "option", "l", str),
    patterns=("Patterns JSONL for a cold start", "option", "pt", str),
    encoder=("Encoder of a new model: small, minilm or a folder", "option", "e", str),
    save_every=("Save the model every N updates", "option", "s", int),
    bias=("Uncertainty sorter strictness (0, the default, did best in the CoNLL simulation; 1 asks fewer)", "option",
          "b", float),
    no_idle=("Do not keep training on the answers between updates (a background thread)", "flag", "ni", bool),
)
def teach(dataset: str, model: str, source: str, label: str | None = None, patterns: str | None = None,
          encoder: str = "small", save_every: int = 10, bias: float = 0.0, no_idle: bool = False) -> dict:  # fmt: skip
    """Binary NER annotation with the model in the loop (accept / reject each suggested span)."""
    online, tasks, update, on_exit = _components(dataset, model, source, label, patterns, encoder, save_every,
                                                 idle=not no_idle)  # fmt: skip
    return {
        "dataset": dataset,
        "view_id": "ner",
        "stream": teach_stream(online, tasks, bias=bias),
        "update": update,
        "before_db": before_db,
        "on_exit": on_exit,
        "config": {"lang": "en", "label": ",".join(online.labels), "batch_size": 10},
    }


@_recipe(
    "sparse_ner.correct",
    dataset=("Dataset to save answers to", "positional", None, str),
    model=("Model folder (created when missing)", "positional", None, str),
    source=("JSONL file of texts", "positional", None, str),
    label=("Comma-separated labels", "option", "l", str),
    encoder=("Encoder of a new model: small, minilm or a folder", "option", "e", str),
    save_every=("Save the model every N updates", "option", "s", int),
    no_idle=("Do not keep training on the answers between updates (a background thread)", "flag", "ni", bool),
)
def correct(dataset: str, model: str, source: str, label: str | None = None, encoder: str = "small",
            save_every: int = 10, no_idle: bool = False) -> dict:  # fmt: skip
    """Fix the model's spans by hand (``ner_manual``); each complete answer updates the model."""
    online, tasks, update, on_exit = _components(dataset, model, source, label, None, encoder, save_every,
                                                 idle=not no_idle)  # fmt: skip
    return {
        "dataset": dataset,
        "view_id": "ner_manual",
        "stream": correct_stream(online, tasks),
        "update": update,
        "before_db": before_db,
        "on_exit": on_exit,
        "config": {"lang": "en", "labels": online.labels, "batch_size": 10},
    }


__all__ = ["before_db", "correct", "correct_stream", "load_model", "make_update", "teach", "teach_stream"]
