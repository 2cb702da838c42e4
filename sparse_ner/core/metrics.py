"""Entity-level exact-match precision, recall and F1 as a ``torchmetrics.Metric``.

A predicted span counts as a true positive only when a gold span of the same sentence has the same
start, end (inclusive) and label, as in conlleval and seqeval. Counts live in three ``(L,)``
tensors summed across processes, so the metric is exact under DDP.
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
        for name in ("tp", "fp", "fn"):
            self.add_state(name, default=torch.zeros(L, dtype=torch.long), dist_reduce_fx="sum")

    def update(
        self, preds: Sequence[Sequence[TokenSpan]], targets: Sequence[Sequence[TokenSpan]]
    ) -> None:
        """Add one batch: per sentence, the predicted and the gold spans."""
        if len(preds) != len(targets):
            raise ValueError(f"{len(preds)} predicted sentences but {len(targets)} gold sentences")
        tp, fp, fn = set(), set(), set()
        for i, (p, g) in enumerate(zip(preds, targets)):
            p = {(int(s), int(e), label) for s, e, label in p}
            g = {(int(s), int(e), label) for s, e, label in g}
            tp |= {(i, s) for s in p & g}
            fp |= {(i, s) for s in p - g}
            fn |= {(i, s) for s in g - p}
        for name, spans in (("tp", tp), ("fp", fp), ("fn", fn)):
            setattr(self, name, getattr(self, name) + self._count(spans).to(self.device))

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
        return out


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    return torch.where(den > 0, num / den.clamp(min=1e-12), torch.zeros_like(num))


def format_report(result: dict[str, torch.Tensor | float], digits: int = 4) -> str:
    """A seqeval-style table: one row per label (found from ``{label}_f1`` keys), then micro avg."""
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
    return "\n".join(lines)
