"""The Prodigy recipe ``sparse_ner.review``: correct the hardest examples in ``spans_manual``.

``prodigy sparse_ner.review DATASET REVIEW.jsonl`` serves the output of ``python -m
sparse_ner.review`` (:mod:`sparse_ner.review.tasks`): each task shows the annotation's spans and the
model's ``LABEL:PREDICTED`` spans; ``before_db`` (:func:`~sparse_ner.review.tasks.strip_predicted`)
drops the predicted ones, so accepting a task unchanged saves the original annotation. Registered
through the ``prodigy_recipes`` entry point; importing this module does not import torch.
"""

# No `from __future__ import annotations` in this module: Prodigy >= 1.12 reads the signature with radicli.

from typing import Any, Dict, Iterable, Iterator

from sparse_ner.data.hashes import REVIEW_TASK_KEYS, set_hashes
from sparse_ner.data.prodigy_stream import RecipeError, make_stream, read_source, recipe

BATCH_SIZE = 10


def review_stream(stream: Iterable[dict]) -> Iterator[dict]:
    """Review tasks with fresh task hashes (over the spans and ``_review``), so a review answer is
    never taken for a duplicate of the original answer on the same text."""
    for task in stream:
        yield set_hashes(dict(task), overwrite=True, task_keys=REVIEW_TASK_KEYS)


@recipe(
    "sparse_ner.review",
    dataset=("Dataset to save the reviewed answers to", "positional", None, str),
    source=("Review JSONL written by python -m sparse_ner.review", "positional", None, str),
)
def review(dataset: str, source: str) -> Dict[str, Any]:
    """Correct the hardest examples: the annotation's spans plus the model's ``LABEL:PREDICTED`` spans."""
    from sparse_ner.review.tasks import labels_of_tasks, strip_predicted

    try:
        labels = labels_of_tasks(read_source(source))  # one pass for the labels, nothing held
    except RecipeError as e:
        raise SystemExit(f"sparse_ner.review: {e}") from None
    return {
        "dataset": dataset,
        "view_id": "spans_manual",
        "stream": make_stream(read_source(source), review_stream),
        "before_db": strip_predicted,
        "config": {"labels": labels, "exclude_by": "task", "batch_size": BATCH_SIZE},
    }


__all__ = ["review", "review_stream"]
