"""Tune the tagger's prediction-time ``O`` bias on the dev set after training.

A model trained on binary answers is told about a few spans per text and nothing about the other
words, so it tags more of them as entities than a model trained on complete annotation of the same
texts does (``BENCHMARKS.md``: its false positives are mostly on strings no answer touched). Adding
``b`` to the score of ``O`` at every word (``Tagger.o_bias``) is a prior shift: the CRF's sequence
probabilities are multiplied by ``exp(b * number of O words)`` and renormalized, so the decoder
keeps only the entities it is surer of. :func:`tune_o_bias` runs the encoder over the dev batches
once, decodes the cached emissions at each bias of :data:`GRID` and keeps the one with the best
entity F1 (the metric checkpoints are chosen by); ties go to the bias nearest 0.

Dev texts with complete annotation are what it tunes on when there are any. On binary answers the
F1 is optimistic in precision (a predicted span nobody asked about is not counted:
:class:`~sparse_ner.core.metrics.EntityF1`), so it favours recall: over all the biases it picked a
negative one on held-out CoNLL-2003 teach answers and lost up to 0.017 test F1 (``BENCHMARKS.md``).
Its blind spot only ever makes a positive bias look worse than it is, so on a dev set of binary
answers alone (``data.eval_split``) the bias is chosen among the values >= 0: on the same answers
that kept 0 or found +1.0 / +1.5 (test F1 +0.000 to +0.016), and on a simulated loop's answers +1.5
/ +2.0 (+0.000 / +0.016).
"""

from __future__ import annotations

from typing import Any, Iterable, NamedTuple, Sequence

import torch

from sparse_ner.core.metrics import EntityF1
from sparse_ner.core.tagger import Tagger
from sparse_ner.tags import decode_tags

GRID = (-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0)  # the biases tried (log-odds units)


class DevBatch(NamedTuple):
    """One dev batch as the tuning needs it: emissions without bias ``(B, T, K)``, ``mask (B, T)``
    and the batch's gold, rejected and complete lists (as :class:`EntityF1` takes them)."""

    emissions: torch.Tensor
    mask: torch.Tensor
    gold: list
    rejected: list
    complete: list


def collect(tagger: Tagger, batches: Iterable[dict]) -> list[DevBatch]:
    """Run the encoder once over ``batches`` (from the data module's dev loader) in eval mode, with
    the tagger's own bias set aside."""
    out = []
    with tagger.eval_without_o_bias(), torch.no_grad():
        for batch in batches:
            batch = tagger.to_device(batch)
            mask = batch["inputs"]["word_mask"]  # (B, T)
            out.append(DevBatch(tagger.emissions(batch["inputs"]), mask, batch["gold"],
                                batch.get("rejected") or [[] for _ in batch["gold"]],
                                batch.get("complete") or [True] * len(batch["gold"])))  # fmt: skip
    return out


def f1_at(tagger: Tagger, dev: Sequence[DevBatch], bias: float, complete_only: bool = False) -> dict[str, float]:
    """Entity P / R / F1 (:class:`EntityF1`) of the Viterbi spans of ``dev`` with ``bias`` on ``O``
    (``complete_only``: of its completely annotated texts alone)."""
    metric = EntityF1(tagger.labels)
    for b in dev:
        paths, _ = tagger.crf.decode(b.emissions + bias * tagger.is_o, b.mask)  # (B, T, K) + (K,)
        spans = [decode_tags([tagger.tags[k] for k in path], tagger.scheme) for path in paths]
        keep = [i for i, whole in enumerate(b.complete) if whole or not complete_only]
        metric.update([spans[i] for i in keep], [b.gold[i] for i in keep], [b.rejected[i] for i in keep],
                      [b.complete[i] for i in keep])  # fmt: skip
    return {k: float(v) for k, v in metric.compute().items() if k in ("precision", "recall", "f1")}


def tune_o_bias(tagger: Tagger, batches: Iterable[dict], grid: Sequence[float] = GRID) -> tuple[float, dict[float, dict]]:
    """Set ``tagger.o_bias`` to the bias of ``grid`` with the best dev F1 (ties: nearest 0) and return
    it with the scores of every bias tried: F1 on the completely annotated dev texts when there are
    any, else on the binary answers with only the biases >= 0 (module docstring)."""
    dev = collect(tagger, batches)
    complete = any(whole for b in dev for whole in b.complete)
    tried = [float(b) for b in grid if complete or b >= 0]
    scores = {b: f1_at(tagger, dev, b, complete_only=complete) for b in tried}
    best = best_of(scores)
    tagger.o_bias = best
    return best, scores


def best_of(scores: dict[float, dict[str, float]]) -> float:
    """The bias with the best F1 in ``scores`` (bias -> :func:`f1_at`); ties go to the one nearest 0."""
    return max(scores, key=lambda b: (round(scores[b]["f1"], 6), -abs(b)))


def describe(best: float, scores: dict[float, dict[str, Any]], complete: bool = True) -> str:
    """One line: the chosen bias and the dev F1 it gives against no bias."""
    at, zero = scores[best], scores.get(0.0)
    base = f" (no bias: {zero['f1']:.4f})" if zero is not None else ""
    on = "the complete dev texts" if complete else "the dev answers (binary: only biases >= 0 tried)"
    return (f"O bias {best:+.1f} chosen on {on}: F1 {at['f1']:.4f}, P {at['precision']:.4f}, "
            f"R {at['recall']:.4f}{base}")


__all__ = ["GRID", "best_of", "collect", "describe", "f1_at", "tune_o_bias"]
