"""A first model's posteriors as a prior for a second training on the same answers (``--data.teacher``).

Binary answers constrain a few spans of a text and leave its other words free: the partial-label loss
``-log P(consistent)`` is as low for a model that tags a free word as an entity as for one that tags it
``O``, and a model trained on such answers tags more of the words nobody asked about than one trained
on complete annotation (BENCHMARKS.md: its gap to the gold model is precision on untouched words).

Trained a second time with a teacher (a model trained the usual way on the same answers), each text's
consistent taggings are weighted by the teacher's posterior ``q`` (with its O bias, so a little towards
``O``): the loss becomes ``-log sum_{y consistent} P(y) prod_t q_t(y_t)`` (the soft weighting of
Jie et al., 2019, "Better modeling of incomplete annotations for named entity recognition"), computed
exactly by the CRF's one forward pass with ``log q`` added to the consistent lattice's scores
(:meth:`sparse_ner.core.crf.CRF.nll`, ``prior``). Complete texts are unaffected (one consistent tagging).
The student starts from scratch; only the weighting of what the answers leave open comes from the teacher.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from sparse_ner.core.progress import progress_bar
from sparse_ner.data.example import Example

FLOOR = 1e-4  # q below this counts as this: a teacher's near-zero never forbids a tagging outright


def attach_priors(teacher_path: str, examples: Sequence[Example], tags: Sequence[str], progress: bool = False,
                  batch_size: int = 64) -> int:
    """Set ``prior`` (``log q``, ``(n_words, K)`` float32, columns in ``tags`` order) on every example that
    is not complete, from the exported model at ``teacher_path``; returns how many got one.

    The teacher runs on the current CUDA device when there is one (under DDP, each process's own), else
    on the CPU. Raises ``ValueError`` when the teacher's tags are not ``tags`` (another label set or scheme)."""
    import torch

    from sparse_ner.core.export import load

    teacher = load(teacher_path, device="cuda" if torch.cuda.is_available() else "cpu")
    if list(teacher.tags) != list(tags):
        raise ValueError(f"data.teacher {teacher_path} tags {teacher.tags}, this training tags {list(tags)}: "
                         f"train the teacher on the same labels and scheme")  # fmt: skip
    todo = [ex for ex in examples if not ex.complete and len(ex)]
    with progress_bar(len(todo), progress, "teacher posteriors") as bar:
        for i in range(0, len(todo), batch_size):
            chunk = todo[i : i + batch_size]
            for ex, q in zip(chunk, teacher.token_marginals(chunk, batch_size)):  # (n, K) each, O bias on
                ex.prior = np.log(q.double().clamp_min(FLOOR).numpy()).astype(np.float32)
            bar.update(len(chunk))
    return len(todo)


__all__ = ["FLOOR", "attach_priors"]
