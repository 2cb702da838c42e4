"""Review a dataset end to end: score every example, write the Prodigy review tasks and the HTML report.

:func:`review` is what ``python -m sparse_ner.review`` (:mod:`sparse_ner.cli.review`) runs: score with
one exported model (``model``, in-sample when it was trained on the data) or with ``folds``
out-of-fold models trained from a YAML ``config`` (:mod:`sparse_ner.review.folds`); rank hardest
first (:mod:`sparse_ner.review.score`); write ``spans_manual`` tasks (:mod:`sparse_ner.review.tasks`)
and an HTML report (:mod:`sparse_ner.review.report`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from sparse_ner.data.example import Example
from sparse_ner.review.score import DEFAULT_SCORE, SCORES, Review, rank, score_examples
from sparse_ner.review.tasks import write_tasks

DEFAULT_FOLDS = 3  # out-of-fold models when none is given; how K was chosen: see BENCHMARKS.md


@dataclass(frozen=True)
class Reviewed:
    """What :func:`review` wrote, and the ranking it wrote."""

    tasks: str | Path  # the review JSONL ("-": stdout)
    html: Path | None  # the HTML report (None when the tasks went to stdout and no html path was given)
    ranked: list[Review]  # every scored example, hardest first (the tasks hold the first `top`)
    score: str  # the ranking score
    source: str  # where the scores came from, as the report says it


def read_data(path: str | Path, labels: Sequence[str] | None = None, column_encoding: str = "iob1") -> list[Example]:
    """Examples of a db-out JSONL file (merged per text) or a column file; the reader's report to stderr."""
    from sparse_ner.data.read import read_any

    return read_any(path, gold=False, labels=labels, column_encoding=column_encoding, name="review")


def review(
    data: str | Path,
    output: str | Path,
    model: str | Path | None = None,
    config: str | Path | None = None,
    folds: int | None = None,
    score: str = DEFAULT_SCORE,
    *,
    top: int | None = None,
    html: str | Path | None = None,
    report_top: int = 50,
    column_encoding: str = "iob1",
    training: Mapping[str, Any] | None = None,
    models_dir: str | Path | None = None,
    seed: int = 0,
    batch_size: int = 64,
    progress: bool = False,
) -> Reviewed:
    """Rank the examples of ``data`` hardest first; write review tasks to ``output`` and an HTML report.

    Give exactly one of ``model`` (an exported model folder) and ``config`` (a training YAML: ``folds``
    models, default :data:`DEFAULT_FOLDS`, each trained on the other folds with ``training`` section
    overrides, see :func:`~sparse_ner.training.train.fit`; ``models_dir`` keeps them, ``seed`` assigns
    the folds). ``top`` writes only the N hardest tasks; the report (``html``, default ``output`` with
    ``.html``; none when ``output`` is ``-`` and no ``html`` is given) shows ``report_top`` examples.
    ``progress`` shows a progress bar on stderr while examples are scored. Raises ``ValueError`` on
    conflicting arguments or when no example of ``data`` is usable (nothing is written then).
    """
    if (model is None) == (config is None):
        raise ValueError("give one of model (score with it) and config (train out-of-fold models)")
    if model is not None and (folds is not None or training):
        raise ValueError("folds and training need config (a given model is not retrained)")
    if score not in SCORES:
        raise ValueError(f"unknown score {score!r}; expected one of {', '.join(SCORES)}")
    if model is not None:
        from sparse_ner.core.export import load

        tagger = load(model)
        reviews = score_examples(tagger, read_data(data, tagger.labels, column_encoding), batch_size, progress=progress)
        source = f"model {model} (in-sample if it was trained on this data)"
    else:
        from sparse_ner.review.folds import out_of_fold

        k = DEFAULT_FOLDS if folds is None else folds
        reviews = out_of_fold(read_data(data, None, column_encoding), config, k, training=training,
                              models_dir=models_dir, seed=seed, batch_size=batch_size, progress=progress)  # fmt: skip
        source = f"{k}-fold out-of-fold models trained with {config}"
    if not reviews:
        raise ValueError(f"no usable examples in {data}")
    write_tasks(reviews, output, score, top)

    from sparse_ner.review.report import html_report

    ranked = rank(reviews, score)
    report = None
    if str(output) != "-" or html:
        report = Path(html) if html else Path(output).with_suffix(".html")
        report.write_text(html_report(ranked, score, top=report_top, source=source), encoding="utf8")
    return Reviewed(tasks=output, html=report, ranked=ranked, score=score, source=source)
