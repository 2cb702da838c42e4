"""Review tasks for Prodigy: one ``spans_manual`` task per reviewed text, and how answers are saved.

:func:`review_task` shows the annotation's spans plus the model's spans labelled
``LABEL:PREDICTED`` (with their probability in ``score``); ``meta`` carries the review score and
``_review`` what :func:`strip_predicted` (Prodigy ``before_db``) and :mod:`sparse_ner.review.merge`
need to save the reviewed annotation faithfully. Each task has a fresh ``_task_hash`` (over the spans
and ``_review``), so a review answer is never taken for a duplicate of the original answer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

from sparse_ner.data.example import Example
from sparse_ner.review.score import DEFAULT_SCORE, Review, rank

PREDICTED = ":PREDICTED"


def _span(ex: Example, s: int, e: int, label: str, **extra: Any) -> dict:
    return {"start": ex.tokens[s].start, "end": ex.tokens[e].end, "token_start": s, "token_end": e,
            "label": label, **extra}  # fmt: skip


def review_task(review: Review, score: str = DEFAULT_SCORE, rank_: int | None = None) -> dict:
    """The ``spans_manual`` task of one reviewed example (see the module docstring)."""
    from sparse_ner.data.hashes import REVIEW_TASK_KEYS, set_hashes
    from sparse_ner.data.hashes import input_hash
    from sparse_ner.data.prodigy import token_dicts

    ex = review.example
    original = [_span(ex, s.token_start, s.token_end, s.label) for s in ex.accepted]
    predicted = [_span(ex, s, e, label + PREDICTED, score=round(p, 4)) for s, e, label, p in review.predicted]
    spans = sorted(original + predicted, key=lambda d: (d["token_start"], d["token_end"], d["label"]))
    in_hash = ex.input_hash if ex.input_hash is not None else input_hash(ex.text)
    first_meta = next((t["meta"] for t in ex.tasks if isinstance(t.get("meta"), dict)), {})
    meta = {**first_meta, "review_score": round(review.scores[score], 4), "review_method": score}
    if rank_ is not None:
        meta["rank"] = rank_
    if review.fold is not None:
        meta["fold"] = review.fold
    only = [t for t in ex.tasks if "_task_hash" in t]
    info = {
        "complete": ex.complete,
        "rejected": [_span(ex, s.token_start, s.token_end, s.label) for s in ex.rejected],
        "scores": {k: round(v, 6) for k, v in review.scores.items()},
    }
    if len(ex.tasks) == 1 and only:  # what `merge --key task` matches
        info["task_hash"] = only[0]["_task_hash"]
    task = {"text": ex.text, "tokens": token_dicts(ex.tokens), "spans": spans, "meta": meta, "_input_hash": in_hash,
            "_view_id": "spans_manual", "_review": info}  # fmt: skip
    # a fresh task hash (over the spans and _review): never a duplicate of the original answer
    task["_task_hash"] = set_hashes(dict(task), overwrite=True, task_keys=REVIEW_TASK_KEYS)["_task_hash"]
    return task


def strip_predicted(examples: list[dict]) -> list[dict]:
    """Prodigy ``before_db``: drop the ``LABEL:PREDICTED`` spans, so an unchanged accept saves the
    original annotation.

    A text whose original annotation was binary (not complete) is saved as a binary ``ner`` accept
    of its spans (an accepted spans_manual task would claim every other token is ``O``); its
    original rejects stay in ``_review`` and :mod:`sparse_ner.review.merge` writes them back.
    """
    out = []
    for eg in examples:
        eg = dict(eg)
        eg["spans"] = [s for s in eg.get("spans", []) if not str(s.get("label", "")).endswith(PREDICTED)]
        if eg.get("_review", {}).get("complete") is False:
            eg["_view_id"] = "ner"
        out.append(eg)
    return out


def labels_of_tasks(tasks: Iterable[dict]) -> list[str]:
    """Every span label of the review tasks, originals first, then their ``:PREDICTED`` twins."""
    found = {s["label"].removesuffix(PREDICTED) for t in tasks for s in t.get("spans", [])}
    return sorted(found) + [label + PREDICTED for label in sorted(found)]




def write_tasks(reviews: Sequence[Review], path: str | Path, score: str = DEFAULT_SCORE,
                top: int | None = None) -> list[dict]:  # fmt: skip
    """Write the ranked review tasks (``-`` is stdout); return them."""
    from sparse_ner.data.io import write_jsonl

    tasks = [review_task(r, score, i + 1) for i, r in enumerate(rank(reviews, score)[:top])]
    write_jsonl(tasks, path)
    return tasks
