"""Which questions to ask: candidate spans from CRF marginals, and sorters over ``(score, task)``.

Candidates
    :func:`candidate_spans` proposes, per text, every span whose start tag ``B-L`` has marginal
    probability at least ``threshold`` and whose inside tokens each have ``I-L`` (BIOES: ``I-L`` or
    ``E-L``) at least ``threshold``, up to ``max_len`` tokens. Their exact probabilities then come
    from :meth:`sparse_ner.core.crf.CRF.span_probs`.

Sorters (Prodigy's contract: an iterable of ``(score, task)`` in, tasks out, lazily)
    - :func:`prefer_uncertain`: the annotator sees the spans the model is least sure of. Each
      task's uncertainty is ``u = 1 - |2 score - 1|`` (1 at 0.5, 0 at 0 or 1). ``"ema"`` keeps an
      exponential moving average and variance of ``u`` and yields a task when ``u >= min(mean +
      bias * std, max of the last window u)``, so it adapts to however sure the model currently is.
      The cap keeps it from stalling: ``u`` is at most 1, and when most tasks sit near 1 (pattern
      matches of a cold model) and a few near 0, ``mean + std`` is above 1 and nothing would
      pass, for the rest of the stream. ``"probability"`` yields each task with probability ``u``. ``by_text=True`` selects whole texts (the sum of
      their spans' ``u``) and asks all their spans, so the answers on a text constrain each other;
      ``by_label=True`` keeps one running threshold per label (measured level with one, so off by default).
    - :func:`in_order`: every task, in stream order (no selection; the "random order" baseline when
      the stream is shuffled).
"""

from __future__ import annotations

import math
import random
from collections import deque
from typing import Iterable, Iterator, Literal

import torch

from sparse_ner.tags import Scheme, TokenSpan, split_tag


def candidate_spans(marginals: torch.Tensor, lengths: list[int], tags: list[str], scheme: Scheme,
                    threshold: float = 0.1, max_len: int = 8, limit: int | None = None
                    ) -> list[list[TokenSpan]]:  # fmt: skip
    """Spans of each text that the marginals ``(B, T, K)`` make plausible (see module docstring).

    With ``limit``, at most that many spans per text: highest ``min(P(start), P(inside) of each token)`` first."""
    starts: dict[int, str] = {}
    inside: dict[str, list[int]] = {}
    for k, tag in enumerate(tags):
        prefix, label = split_tag(tag)
        if prefix in ("B", "S"):
            starts[k] = label
        if prefix in ("I", "E"):
            inside.setdefault(label, []).append(k)
    labels = sorted(set(starts.values()))
    out: list[list[TokenSpan]] = [[] for _ in lengths]
    if not labels:
        return out
    start_p = torch.stack([marginals[..., [k for k, lb in starts.items() if lb == lab]].sum(-1)
                           for lab in labels])  # (L, B, T)  # fmt: skip
    in_p = torch.stack([marginals[..., inside.get(lab, [])].sum(-1) for lab in labels])  # (L, B, T)
    hits = (start_p >= threshold).nonzero().tolist()  # [[label, text, start], ...] in that order
    sp, ip = start_p.tolist(), in_p.tolist()
    ranked: list[list[tuple[float, TokenSpan]]] = [[] for _ in lengths]
    for li, b, s in hits:
        n = lengths[b]
        if s >= n:
            continue
        lab, row, weakest = labels[li], ip[li][b], sp[li][b][s]
        ranked[b].append((weakest, (s, s, lab)))
        e = s + 1
        while e < n and e - s < max_len and row[e] >= threshold:
            weakest = min(weakest, row[e])
            ranked[b].append((weakest, (s, e, lab)))
            e += 1
    for b, r in enumerate(ranked):
        r.sort(key=lambda x: -x[0])
        out[b] = sorted(span for _, span in r[:limit])
    return out


def uncertainty(score: float) -> float:
    """``1 - |2 score - 1|``: 1 for a coin flip, 0 for a sure yes or no."""
    return 1.0 - abs(2.0 * float(score) - 1.0)


def _by_text(scored: Iterable[tuple[float, dict]]) -> Iterator[list[tuple[float, dict]]]:
    """Consecutive pairs grouped by the task's ``_input_hash`` (the scorer yields a text's spans together)."""
    group: list[tuple[float, dict]] = []
    for pair in scored:
        if group and pair[1].get("_input_hash") != group[0][1].get("_input_hash"):
            yield group
            group = []
        group.append(pair)
    if group:
        yield group


class _Threshold:
    """The ``"ema"`` rule's running state: a moving mean and variance of ``u`` and the last ``window`` values."""

    def __init__(self, decay: float, window: int):
        self.decay, self.mean, self.var = decay, 0.0, 0.0
        self.recent: deque[float] = deque(maxlen=max(1, window))

    def passes(self, u: float, bias: float) -> bool:
        if not self.recent:  # the first value starts the mean
            self.mean = u
        diff = u - self.mean
        self.mean += self.decay * diff
        self.var = (1 - self.decay) * (self.var + self.decay * diff * diff)
        self.recent.append(u)
        return u >= min(self.mean + bias * math.sqrt(self.var), max(self.recent))


def _label(group: list[tuple[float, dict]]) -> str | None:
    spans = group[0][1].get("spans") or [{}]
    return spans[0].get("label")


def prefer_uncertain(scored: Iterable[tuple[float, dict]], algorithm: Literal["ema", "probability"] = "ema",
                     bias: float = 0.0, decay: float = 0.05, seed: int = 0, by_text: bool = False,
                     window: int = 50, by_label: bool = False) -> Iterator[dict]:  # fmt: skip
    """Yield the tasks of ``(score, task)`` pairs whose score is uncertain (see module docstring).

    ``by_text``: select whole texts instead of single spans. A text's uncertainty is the sum of its
    spans' ``u``, and a selected text has all its suggested spans asked, so the answers on it
    constrain each other (an accept next to a reject says more than either alone).
    ``by_label`` (``"ema"``, single spans): each label keeps its own running threshold, so a label whose
    suggestions the model is surer of (a label it has hardly learned) is still asked about, its most
    uncertain spans first, instead of being crowded out by the other labels' coin flips.
    """
    if algorithm not in ("ema", "probability"):
        raise ValueError(f"algorithm must be 'ema' or 'probability', not {algorithm!r}")
    rng = random.Random(seed)
    thresholds: dict[str | None, _Threshold] = {}
    groups = _by_text(scored) if by_text else ([pair] for pair in scored)
    for group in groups:
        u = sum(uncertainty(score) for score, _ in group)
        if algorithm == "probability":
            if rng.random() < min(1.0, u):
                yield from (task for _, task in group)
            continue
        key = _label(group) if by_label and not by_text else None
        rule = thresholds.get(key) or thresholds.setdefault(key, _Threshold(decay, window))
        if rule.passes(u, bias):
            yield from (task for _, task in group)


def in_order(scored: Iterable[tuple[float, dict]]) -> Iterator[dict]:
    """Every task, in order: no selection."""
    for _, task in scored:
        yield task


__all__ = ["candidate_spans", "in_order", "prefer_uncertain", "uncertainty"]
