"""Entity P/R/F1 of an exported model on gold data or on binary answers: :func:`evaluate`.

GOLD is JSONL with complete annotations (every entity in ``spans``) or a column file in ``encoding``.
A db-out file of binary answers (``ner.teach``) is detected (:func:`sparse_ner.data.read.is_binary`)
and scored on what its answers say, never as if it were complete (see
:class:`~sparse_ner.core.metrics.EntityF1`: ``binary`` in the result is the share of such texts).
The command line is ``python -m sparse_ner.evaluate MODEL GOLD [--encoding iob1] [--json]``
(:mod:`sparse_ner.cli.evaluate`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sparse_ner.data.read import read_any


def evaluate(model: str | Path, gold: str | Path, encoding: str = "iob1", batch_size: int = 64,
             progress: bool = False) -> dict[str, float]:  # fmt: skip
    """``EntityF1.compute()`` of the model's predictions on ``gold`` (floats); ``progress``: a progress
    bar on stderr."""
    from sparse_ner.core.export import load

    tagger = load(model)
    examples = read_any(gold, gold="auto", labels=tagger.labels, column_encoding=encoding, name="gold")
    if not examples:
        raise ValueError(f"{gold}: no usable example to evaluate on (see the reader's report above)")
    return evaluate_tagger(tagger, examples, batch_size, progress)


def evaluate_tagger(tagger: Any, examples: list, batch_size: int = 64, progress: bool = False) -> dict[str, float]:
    """``EntityF1.compute()`` of ``tagger``'s predictions on ``examples`` (gold or binary; floats)."""
    from sparse_ner.core.metrics import EntityF1
    from sparse_ner.core.progress import progress_bar

    metric = EntityF1(tagger.labels)
    preds = []
    step = batch_size * 16
    with progress_bar(len(examples), progress, "evaluate") as bar:
        for i in range(0, len(examples), step):
            chunk = examples[i : i + step]
            preds += tagger.tag(chunk, batch_size=batch_size)
            bar.update(len(chunk))
    metric.update([[s[:3] for s in spans] for spans in preds], [[s.key for s in ex.accepted] for ex in examples],
                  [[s.key for s in ex.rejected] for ex in examples], [ex.complete for ex in examples])  # fmt: skip
    return {k: float(v) for k, v in metric.compute().items()}
