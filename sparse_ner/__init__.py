"""sparse_ner: named-entity taggers trained from sparse binary (Prodigy ``ner.teach``) answers.

Public API (imported lazily, so ``import sparse_ner`` is cheap):

- ``load(path) -> Tagger``: an exported model folder, on CPU in eval mode; ``export(tagger, folder, config)``.
- ``Tagger``: encoder -> dropout -> linear -> :class:`CRF`; ``tagger.tag(examples)`` gives, per example,
  ``ScoredSpan(start, end_inclusive, label, score)`` with ``score = P(span is an entity)``;
  ``tagger.span_probs(examples, spans)`` that probability for given ``(start, end, label)`` spans;
  ``tagger.loss(batch)`` is the partial-label NLL on a batch from ``tagger.make_batch(examples)`` (the
  tagger decides what its batches hold; ``make_batch(encoder, examples, tags, scheme)`` is the plain form).
- ``TaggerConfig``: the tagger's options, declared once (training's ``--model.*``, the loop's cold
  model and the simulation's ``tagger:`` read it); ``TaggerConfig(...).build(labels, vocab_words)``.
- ``CRF``: the exact partial-label CRF (``nll``, ``nll_and_marginals``, ``log_partition``, ``marginals``,
  ``decode`` -> ``(paths, scores)``, ``posterior`` -> unary and pairwise marginals, ``span_probs``).
- ``read_examples(path, labels=None, complete=None, stats=None)``: db-out JSONL -> merged ``Example`` s;
  ``ReadStats``; ``read_columns(path, encoding)``: column files -> complete ``Example`` s; ``tokenize``.
- ``EntityF1``: entity-level precision / recall / F1 (a torchmetrics ``Metric``).
- ``TaggerModule``, ``TaggerDataModule``: the Lightning pieces behind ``python -m sparse_ner.train``.
- ``predict_tasks(tagger, tasks)``: tag db-out-style dicts; ``predict_file(model, input, output)``;
  ``evaluate(model, gold)``: P/R/F1 dict.
- The commands as typed functions: ``fit(config, data=..., model=..., trainer=...) -> FitResult``
  (``.model`` is the exported folder), ``review_file(data, output, model=... | config=..., folds=...)``,
  ``merge_files(original, corrections, output)``. Every output is written atomically, never over an input.
- ``OnlineTagger``: the model in the annotation loop (``update(answers)``, ``model(stream)`` ->
  ``(score, task)``, ``warm_start(texts)`` on the patterns' matches, ``to_disk`` / ``from_disk``);
  ``prefer_uncertain`` sorter; ``PatternMatcher``,
  ``read_patterns`` for match-pattern cold starts (needs spaCy: the ``online`` extra).
- ``to_spacy(model, nlp=None)``: the tagger as a spaCy pipeline component (``ner``: ``doc.ents``, scored
  ``doc.spans``, ``score``); ``sparse-ner to-spacy MODEL OUT_DIR`` writes a folder for ``spacy.load``.
- ``score_examples(tagger, examples) -> [Review]``: how likely each annotation is a mistake (``review.SCORES``);
  ``strip_predicted`` (Prodigy ``before_db``); ``merge_corrections(original, corrections)``: corrections replace answers.

Command lines: ``python -m sparse_ner.train --config configs/wikigold_quickstart.yaml``,
``python -m sparse_ner.predict MODEL IN.jsonl -o OUT.jsonl``, ``python -m sparse_ner.evaluate MODEL GOLD``
``python -m sparse_ner.simulate --config configs/simulate_conll.yaml`` (also ``sparse-ner train|predict|
evaluate|simulate ...``); Prodigy recipes ``sparse_ner.teach`` and ``sparse_ner.correct``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "load": "sparse_ner.core.export",
    "export": "sparse_ner.core.export",
    "Tagger": "sparse_ner.core.tagger",
    "ScoredSpan": "sparse_ner.core.tagger",
    "make_batch": "sparse_ner.core.tagger",
    "TaggerConfig": "sparse_ner.core.tagger",
    "CRF": "sparse_ner.core.crf",
    "Example": "sparse_ner.data.example",
    "Span": "sparse_ner.data.example",
    "Token": "sparse_ner.data.example",
    "read_examples": "sparse_ner.data.prodigy",
    "ReadStats": "sparse_ner.data.prodigy",
    "read_columns": "sparse_ner.data.columns",
    "tokenize": "sparse_ner.data.tokenize",
    "EntityF1": "sparse_ner.core.metrics",
    "TaggerModule": "sparse_ner.training.module",
    "TaggerDataModule": "sparse_ner.training.datamodule",
    "predict_tasks": "sparse_ner.core.predict",
    "predict_file": "sparse_ner.core.predict",
    "fit": "sparse_ner.training.train",
    "review_file": "sparse_ner.review.run:review",  # not `review`/`merge`: those name subpackages/modules
    "merge_files": "sparse_ner.review.merge:merge",
    "evaluate": "sparse_ner.core.evaluate",
    "score_examples": "sparse_ner.review.score",
    "Review": "sparse_ner.review.score",
    "strip_predicted": "sparse_ner.review.tasks",
    "merge_corrections": "sparse_ner.review.merge",
    "OnlineTagger": "sparse_ner.loop.online",
    "prefer_uncertain": "sparse_ner.loop.selection",
    "PatternMatcher": "sparse_ner.loop.patterns",
    "read_patterns": "sparse_ner.loop.patterns",
    "to_spacy": "sparse_ner.integrations.spacy",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module, _, attr = _EXPORTS[name].partition(":")
        value = getattr(importlib.import_module(module), attr or name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sparse_ner' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
