"""Review the hardest training examples: score every example's annotation against a model.

``python -m sparse_ner.review DATA -o REVIEW.jsonl --model MODEL`` scores with a trained model;
``python -m sparse_ner.review DATA -o REVIEW.jsonl --config CFG --folds K`` trains K models on the
other folds and scores each example with the model that did not see it (out-of-fold scores,
:mod:`sparse_ner.review.folds`). DATA is db-out JSONL (binary ``ner.teach`` answers or complete manual
annotations, merged per text) or a column file.

Scores (higher = more likely an annotation mistake; ``--score``). ``P(span)`` is the CRF's exact
probability that a span is an entity (:meth:`sparse_ner.core.crf.CRF.span_probs`):

- ``span_odds`` (see BENCHMARKS.md for how each score ranks real and synthetic mistakes): the log-odds, in nats, that
  the model prefers something else to a piece of the annotation, maximized over the pieces and
  floored at 0. For an accepted span, ``log P(best alternative) - log P(span)``, the alternatives
  being the same tokens with another label and the span with one boundary moved by one token (the
  mistakes annotators make); for a rejected span, ``log P / (1 - P)``; for a complete annotation,
  ``log P / (1 - P)`` of each predicted span it lacks. Ratios, not raw probabilities, so a model
  that is unsure everywhere (a rare label, a long entity) does not flag every correct annotation.
- ``worst_span``: the most surprising piece of the annotation, ``-log P(span)`` of an accepted
  span, ``-log(1 - P(span))`` of a rejected span or of a predicted span a complete annotation lacks.
- ``loss``: the partial-label NLL of the example's own annotation, ``-log P(annotation)``.
- ``loss_per_span``: ``loss`` divided by the number of annotated (accepted + rejected) spans.
- ``margin``: ``log P(best tag sequence) - log P(annotation)``, floored at 0: 0 when the model's
  Viterbi guess is consistent with the annotation.
- ``f1``: ``1 - F1`` of the prediction against the annotation (Prodigy's community recipe). For
  binary answers, rejected spans the model predicts are the false positives.
- ``token``: ``1 -`` the worst token's self-confidence, ``P(annotated entity type)`` from the CRF
  marginals (cleanlab's ``min`` / ``self_confidence`` ranking); for binary answers only tokens of
  accepted spans count.
- ``label_token``: ``token`` normalized per class: the worst token's ``1 - P(annotated type)``
  divided by that type's mean ``1 - P`` over all the examples scored together. A token annotated
  ``O`` that the model thinks is an entity (a missed entity) counts as much as a doubtful ``MISC``,
  although ``O`` tokens are doubted ~20x less often.
- ``combined`` (default): three kinds of evidence, each turned into an empirical p-value among the
  examples scored together (the fraction of them that score at least as high) and combined by
  Fisher's method, the mean of ``-log p``: ``span_odds`` (an annotated span the model would label or
  bound otherwise), ``worst_span`` (the most surprising span, or predicted span a complete
  annotation lacks) and ``label_token`` (the most surprising token for its class, missed entities
  included). No one of them finds every kind of real mistake (see BENCHMARKS.md); p-values make their
  scales comparable, and ``-log p`` lets one strong piece of evidence lift an example to the top.
  ``label_token`` and ``combined`` are relative scores (:data:`RELATIVE`), recomputed over all the
  reviews by :func:`add_relative_scores`.

The tasks written for Prodigy are made by :mod:`sparse_ner.review.tasks` and served by the recipe
``sparse_ner.review`` (:mod:`sparse_ner.review.recipe`): ``prodigy sparse_ner.review DATASET REVIEW.jsonl``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from sparse_ner.core.progress import progress_bar
from sparse_ner.data.example import Example
from sparse_ner.tags import TokenSpan

SCORES = ("span_odds", "worst_span", "loss", "loss_per_span", "margin", "f1", "token", "label_token", "combined")
RELATIVE = ("label_token", "combined")  # scores relative to the other examples scored with them
COMBINED = ("span_odds", "worst_span", "label_token")  # the evidence "combined" puts together
DEFAULT_SCORE = "combined"
EPS = 1e-12  # floor of probabilities inside logs



@dataclass
class Review:
    """One example scored against a model.

    ``predicted``: the model's Viterbi spans with ``P(span)``; ``evidence``: each piece of the
    annotation with its surprise in nats, as ``(kind, span, p, surprise)`` where ``kind`` is
    ``accept``, ``reject`` or ``missing`` (a predicted span a complete annotation lacks).
    """

    index: int
    example: Example
    scores: dict[str, float]
    predicted: list[tuple[int, int, str, float]]
    evidence: list[tuple[str, TokenSpan, float, float]] = field(default_factory=list)
    fold: int | None = None
    accepted: list[TokenSpan] = field(default_factory=list)  # the annotation in the model's labels
    rejected: list[TokenSpan] = field(default_factory=list)
    type_probs: Any = None  # (n, C) numpy: P(token's entity type), classes "O" + the tagger's labels
    disagreement: list[tuple[int, float]] = field(default_factory=list)  # (class, 1 - P(class)) per annotated token

    def score(self, name: str = DEFAULT_SCORE) -> float:
        return self.scores[name]


def _f1(accepted: set, rejected: set, predicted: set, complete: bool) -> float:
    tp = len(accepted & predicted)
    fn = len(accepted - predicted)
    fp = len(predicted - accepted) if complete else len(predicted & rejected)
    return 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)


def _log(p: float) -> float:
    return math.log(max(p, EPS))


def _surprise(p: float) -> float:
    return -_log(p)


def _alternatives(span: TokenSpan, n: int, labels: Sequence[str]) -> list[TokenSpan]:
    """The spans an annotator might have meant instead: another label, or one boundary moved by one."""
    s, e, label = span
    moved = [(s + ds, e + de) for ds, de in ((-1, 0), (1, 0), (0, -1), (0, 1))]
    return [(s, e, x) for x in labels if x != label] + [(a, b, label) for a, b in moved if 0 <= a <= b < n]


def _tempered(crf: Any, temperature: float) -> Any:
    """A copy of ``crf`` with its transition scores divided by ``temperature`` (emissions are divided by the caller)."""
    import copy

    import torch

    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if temperature == 1.0 or not crf.has_transitions:
        return crf
    out = copy.deepcopy(crf)
    with torch.no_grad():
        for p in (out.transitions, out.start_transitions, out.end_transitions):
            p.div_(temperature)
    return out


def score_examples(tagger: Any, examples: Sequence[Example], batch_size: int = 64,
                   start_index: int = 0, temperature: float = 1.0, progress: bool | str = False) -> list[Review]:  # fmt: skip
    """Score ``examples`` with ``tagger`` (a :class:`~sparse_ner.core.tagger.Tagger`): one :class:`Review` each.

    Spans with labels the tagger does not know are left out of the annotation it is scored on.
    ``temperature`` divides every CRF score (emissions and transitions) before scoring: > 1 flattens
    the model's probabilities, < 1 sharpens them (calibration; the Viterbi spans do not change).
    The tagger's prediction-time ``o_bias`` is set aside: an annotation is scored under the model's
    own distribution (the review's measurements in BENCHMARKS.md were made so). ``progress``: a
    progress bar on stderr (a string names it).
    """
    import torch

    from sparse_ner.core.lattice import Annotation, build_lattice
    from sparse_ner.tags import decode_tags, split_tag

    crf, known = _tempered(tagger.crf, temperature), set(tagger.labels)
    classes = ["O", *tagger.labels]
    # (K, C): tag -> entity-type class, to collapse B-/I- marginals as cleanlab expects
    collapse = torch.zeros(len(tagger.tags), len(classes))
    for k, tag in enumerate(tagger.tags):
        collapse[k, classes.index(split_tag(tag)[1] or "O")] = 1.0
    device = tagger.emit.weight.device
    reviews: list[Review] = []
    bar = progress_bar(len(examples), progress, "review: scoring")
    with tagger.eval_without_o_bias(), bar:
        for i in range(0, len(examples), batch_size):
            chunk = examples[i : i + batch_size]
            inputs = tagger.encoder.collate([tagger.encoder.featurize(ex.words) for ex in chunk])
            inputs = {k: v.to(device) for k, v in inputs.items()}
            mask = inputs["word_mask"]  # (B, T)
            T = mask.shape[1]
            anns = [Annotation(len(ex), sorted({s.key for s in ex.accepted if s.label in known}),
                               sorted({s.key for s in ex.rejected if s.label in known}), ex.complete)
                    for ex in chunk]  # fmt: skip
            with torch.no_grad():
                emissions = tagger.emissions(inputs) / temperature  # (B, T, K)
                lattice = build_lattice(anns, tagger.tags, tagger.scheme, length=T).to(device)
                nll = crf.nll(emissions, lattice)  # (B,): log Z - log Z(consistent)
                log_z_consistent = crf.log_partition(emissions, mask) - nll  # (B,)
                paths, best = crf.decode(emissions, mask)  # best (B,): the Viterbi path's score
            pred = [decode_tags([tagger.tags[k] for k in path], tagger.scheme) for path in paths]
            alts = [[_alternatives(span, len(ex), tagger.labels) for span in a.accepted] for ex, a in zip(chunk, anns)]
            queries = [p + a.accepted + a.rejected + [x for xs in al for x in xs] for p, a, al in zip(pred, anns, alts)]
            posterior = crf.posterior(emissions, mask)
            probs = crf.span_probs(emissions, mask, queries, posterior)
            types = posterior.unary @ collapse.to(device)  # (B, T, C)
            for b, (ex, ann, p, q) in enumerate(zip(chunk, anns, pred, probs)):
                n_pred, n_acc, n_rej = len(p), len(ann.accepted), len(ann.rejected)
                p_pred, p_acc = q[:n_pred], q[n_pred : n_pred + n_acc]
                p_rej, rest = q[n_pred + n_acc : n_pred + n_acc + n_rej], q[n_pred + n_acc + n_rej :]
                # log-odds of the best alternative to each piece of the annotation
                odds = []
                for pr, al in zip(p_acc, alts[b]):
                    p_alt, rest = rest[: len(al)], rest[len(al) :]
                    odds.append(_log(max(p_alt, default=0.0)) - _log(pr))
                odds += [_log(pr) - _log(1 - pr) for pr in p_rej]
                evidence = [("accept", s, pr, _surprise(pr)) for s, pr in zip(ann.accepted, p_acc)]
                evidence += [("reject", s, pr, _surprise(1 - pr)) for s, pr in zip(ann.rejected, p_rej)]
                if ann.complete:
                    acc = set(ann.accepted)
                    evidence += [("missing", s, pr, _surprise(1 - pr)) for s, pr in zip(p, p_pred) if s not in acc]
                    odds += [_log(pr) - _log(1 - pr) for s, pr in zip(p, p_pred) if s not in acc]
                # token self-confidence on the tokens whose entity type the annotation fixes
                cls = [0] * len(ex) if ann.complete else [-1] * len(ex)
                for s, e, label in ann.accepted:
                    cls[s : e + 1] = [classes.index(label)] * (e - s + 1)
                conf = [float(types[b, t, c]) for t, c in enumerate(cls) if c >= 0]
                loss = float(nll[b])
                scores = {
                    "span_odds": max(0.0, max(odds, default=0.0)),
                    "worst_span": max((ev[3] for ev in evidence), default=0.0),
                    "loss": loss,
                    "loss_per_span": loss / max(1, len(ann.accepted) + len(ann.rejected)),
                    "margin": max(0.0, float(best[b] - log_z_consistent[b])),
                    "f1": 1.0 - _f1(set(ann.accepted), set(ann.rejected), set(p), ann.complete),
                    "token": 1.0 - min(conf, default=1.0),
                }
                disagree = [(c, 1.0 - float(types[b, t, c])) for t, c in enumerate(cls) if c >= 0]
                reviews.append(Review(start_index + i + b, ex, scores, [(*s, pr) for s, pr in zip(p, p_pred)],
                                      evidence, accepted=list(ann.accepted), rejected=list(ann.rejected),
                                      type_probs=types[b, : len(ex)].cpu().numpy(), disagreement=disagree))  # fmt: skip
            bar.update(len(chunk))
    return add_relative_scores(reviews)


def _p_values(values: Sequence[float]) -> list[float]:
    """The empirical p-value of each value among ``values``: the fraction of them that are >= it."""
    import bisect

    ordered = sorted(values)
    n = len(ordered)
    return [(n - bisect.bisect_left(ordered, v)) / n for v in values]


def add_relative_scores(reviews: list[Review]) -> list[Review]:
    """Set the :data:`RELATIVE` scores of ``reviews`` from all of them together (in place; returns them).

    ``label_token`` divides each token's disagreement by its class's mean over ``reviews``;
    ``combined`` is the mean ``-log p`` of the :data:`COMBINED` scores' empirical p-values in ``reviews``. Call it again after
    putting together reviews scored apart (out-of-fold scoring does).
    """
    total: dict[int, float] = {}
    count: dict[int, int] = {}
    for r in reviews:
        for c, d in r.disagreement:
            total[c] = total.get(c, 0.0) + d
            count[c] = count.get(c, 0) + 1
    mean = {c: max(total[c] / count[c], EPS) for c in total}
    for r in reviews:
        r.scores["label_token"] = max((d / mean[c] for c, d in r.disagreement), default=0.0)
    parts = [_p_values([r.scores[s] for r in reviews]) for s in COMBINED]
    for r, *ps in zip(reviews, *parts):
        r.scores["combined"] = sum(-math.log(p) for p in ps) / len(ps)
    return reviews


def rank(reviews: Iterable[Review], score: str = DEFAULT_SCORE) -> list[Review]:
    """Hardest first (ties keep the data order)."""
    if score not in SCORES:
        raise ValueError(f"unknown score {score!r}; expected one of {SCORES}")
    return sorted(reviews, key=lambda r: (-r.scores[score], r.index))
