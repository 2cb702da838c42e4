"""Entity-level exact-match precision, recall and F1 as a ``torchmetrics.Metric``, on complete
annotations and on binary answers.

A predicted span counts as a true positive only when a gold span of the same sentence has the same
start, end (inclusive) and label, as in conlleval and seqeval. Counts live in ``(L,)`` tensors summed
across processes, so the metric is exact under DDP.

Binary answers (``ner.teach``) only say something about the spans that were answered, so on a
sentence that is not complete the counts are restricted to them: a predicted span is a true
positive when it was accepted, a false positive only when it was *rejected* (a predicted span nobody
was asked about is not counted), and an accepted span not predicted is a false negative. So
``recall`` is the share of accepted spans the model predicts exactly, ``reject_avoid`` the share of
rejected spans it does not predict, ``agreement`` the share of all answers it agrees with, and
``f1`` is the F1 over the answered spans: an estimate of entity F1 that is exact on complete
annotations (where every span is answered: the ones annotated are accepts, all others rejects) and
optimistic in precision on binary answers (spurious spans outside the answers go unseen). ``binary``
is the share of sentences scored from binary answers; a report of a result with ``binary > 0`` says
so (:func:`format_report`).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torchmetrics import Metric

from sparse_ner.tags import TokenSpan

_FIELDS = ("precision", "recall", "f1", "support")


class EntityF1(Metric):
    """Micro and per-label entity P/R/F1 over token spans ``(start, end_inclusive, label)``.

    ``compute()`` returns ``precision``, ``recall``, ``f1`` (micro), ``support`` (gold spans) and,
    for every label, ``{label}_precision``, ``{label}_recall``, ``{label}_f1``,
    ``{label}_support``. A ratio with a zero denominator is 0, as in seqeval.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, labels: Sequence[str], **kwargs):
        super().__init__(**kwargs)
        self.labels = list(labels)
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"duplicate labels in {self.labels}")
        self._index = {label: i for i, label in enumerate(self.labels)}
        L = len(self.labels)
        # tp/fp/fn as above; rejected: rejected spans; hit: rejected spans predicted anyway
        for name in ("tp", "fp", "fn", "rejected", "hit"):
            self.add_state(name, default=torch.zeros(L, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("sentences", default=torch.zeros(2, dtype=torch.long), dist_reduce_fx="sum")  # complete, binary

    def update(
        self,
        preds: Sequence[Sequence[TokenSpan]],
        targets: Sequence[Sequence[TokenSpan]],
        rejected: Sequence[Sequence[TokenSpan]] | None = None,
        complete: Sequence[bool] | None = None,
    ) -> None:
        """Add one batch: per sentence, the predicted and the gold (accepted) spans; for binary answers
        also the ``rejected`` spans and ``complete`` False (default: every sentence complete)."""
        n = len(preds)
        rejected = [[] for _ in range(n)] if rejected is None else rejected
        complete = [True] * n if complete is None else complete
        if not len(targets) == len(rejected) == len(complete) == n:
            raise ValueError(f"{n} predicted sentences but {len(targets)} gold sentences "
                             f"({len(rejected)} rejected lists, {len(complete)} complete flags)")  # fmt: skip
        counts: dict[str, set] = {name: set() for name in ("tp", "fp", "fn", "rejected", "hit")}
        for i, (p, g, r, whole) in enumerate(zip(preds, targets, rejected, complete)):
            p = {(int(s), int(e), label) for s, e, label in p}
            g = {(int(s), int(e), label) for s, e, label in g}
            r = {(int(s), int(e), label) for s, e, label in r} - g
            counts["tp"] |= {(i, s) for s in p & g}
            counts["fp"] |= {(i, s) for s in (p - g if whole else p & r)}
            counts["fn"] |= {(i, s) for s in g - p}
            counts["rejected"] |= {(i, s) for s in r}
            counts["hit"] |= {(i, s) for s in p & r}
        for name, spans in counts.items():
            setattr(self, name, getattr(self, name) + self._count(spans).to(self.device))
        binary = sum(not c for c in complete)
        self.sentences += torch.tensor([n - binary, binary], device=self.device)

    def _count(self, spans: set) -> torch.Tensor:
        """Per-label counts ``(L,)`` of ``(sentence, span)`` pairs."""
        ids = []
        for _, (_, _, label) in spans:
            if label not in self._index:
                raise ValueError(f"span label {label!r} not in the metric's labels {self.labels}")
            ids.append(self._index[label])
        return torch.bincount(torch.tensor(ids, dtype=torch.long), minlength=len(self.labels))

    def compute(self) -> dict[str, torch.Tensor]:
        tp, fp, fn = self.tp.float(), self.fp.float(), self.fn.float()  # (L,)
        out: dict[str, torch.Tensor] = {}
        for prefix, (t, p, n) in [("", (tp.sum(), fp.sum(), fn.sum()))] + [
            (f"{label}_", (tp[i], fp[i], fn[i])) for i, label in enumerate(self.labels)
        ]:
            precision = _ratio(t, t + p)
            recall = _ratio(t, t + n)
            out[f"{prefix}precision"] = precision
            out[f"{prefix}recall"] = recall
            out[f"{prefix}f1"] = _ratio(2 * precision * recall, precision + recall)
            out[f"{prefix}support"] = t + n
        rejected, hit = self.rejected.sum().float(), self.hit.sum().float()
        out["reject_avoid"] = _ratio(rejected - hit, rejected)
        out["agreement"] = _ratio(tp.sum() + rejected - hit, tp.sum() + fn.sum() + rejected)
        out["binary"] = _ratio(self.sentences[1].float(), self.sentences.sum().float())
        return out


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    return torch.where(den > 0, num / den.clamp(min=1e-12), torch.zeros_like(num))


def format_report(result: dict[str, torch.Tensor | float], digits: int = 4) -> str:
    """A seqeval-style table: one row per label (found from ``{label}_f1`` keys), then micro avg; on
    binary answers (``result["binary"] > 0``) a header says what the figures mean and the reject and
    answer agreement follow."""
    labels = [k[: -len("_f1")] for k in result if k.endswith("_f1")]
    rows = [(label, *(float(result[f"{label}_{f}"]) for f in _FIELDS)) for label in labels]
    rows.append(("micro avg", *(float(result[f]) for f in _FIELDS)))
    width = max([len(r[0]) for r in rows] + [9])
    lines = [f"{'':>{width}}  {'precision':>9}  {'recall':>9}  {'f1':>9}  {'support':>9}"]
    for i, (name, p, r, f, s) in enumerate(rows):
        if i == len(rows) - 1:
            lines.append("")
        cells = "  ".join(f"{x:>9.{digits}f}" for x in (p, r, f))
        lines.append(f"{name:>{width}}  {cells}  {int(s):>9d}")
    binary = float(result.get("binary", 0.0))
    if binary > 0:
        lines.insert(0, f"scored on binary answers ({binary:.0%} of the texts), not on complete annotation: "
                        "recall = accepted spans predicted exactly, precision = predicted answered spans "
                        "that were accepted, support = accepted spans")  # fmt: skip
        lines.append(f"rejected spans avoided: {float(result['reject_avoid']):.{digits}f}   "
                     f"agreement with all answers: {float(result['agreement']):.{digits}f}")  # fmt: skip
    return "\n".join(lines)
