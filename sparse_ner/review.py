"""Review the hardest training examples: score every example's annotation against a model.

``python -m sparse_ner.review DATA -o REVIEW.jsonl --model MODEL`` scores with a trained model;
``python -m sparse_ner.review DATA -o REVIEW.jsonl --config CFG --folds K`` trains K models on the
other folds and scores each example with the model that did not see it (out-of-fold scores,
:mod:`sparse_ner.folds`). DATA is db-out JSONL (binary ``ner.teach`` answers or complete manual
annotations, merged per text) or a column file.

Scores (higher = more likely an annotation mistake; ``--score``). ``P(span)`` is the CRF's exact
probability that a span is an entity (:meth:`sparse_ner.crf.CRF.span_probs`):

- ``span_odds`` (default; the best AUPRC in ``scripts/bench_review.py``): the log-odds, in nats, that
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

The output is one ``spans_manual`` task per text, hardest first: the annotation's spans, plus the
model's spans labelled ``LABEL:PREDICTED`` with their probability (``score``), ``meta`` with the
review score, and ``_review`` with what :func:`strip_predicted` (Prodigy ``before_db``) and
:mod:`sparse_ner.merge` need to save the reviewed annotation faithfully. Run it in Prodigy with the
recipe ``sparse_ner.review`` (:mod:`sparse_ner.prodigy_recipes`): ``prodigy sparse_ner.review DATASET REVIEW.jsonl``.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from sparse_ner.data.example import Example

SCORES = ("span_odds", "worst_span", "loss", "loss_per_span", "margin", "f1", "token")
DEFAULT_SCORE = "span_odds"
PREDICTED = ":PREDICTED"
EPS = 1e-12  # floor of probabilities inside logs

TokenSpan = tuple[int, int, str]


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


def _path_scores(crf: Any, emissions: Any, paths: list[list[int]]) -> Any:
    """The unnormalized score of one tag path per example, ``(B,)`` (``log P(path) + log Z``)."""
    import torch

    scores = crf._scores(emissions)  # (B, T, K): log-softmaxed for the softmax head
    out = []
    for b, path in enumerate(paths):
        p = torch.tensor(path, device=emissions.device)  # (n,)
        n = len(path)
        out.append(crf.start_transitions[p[0]] + scores[b, torch.arange(n, device=p.device), p].sum()
                   + crf.transitions[p[:-1], p[1:]].sum() + crf.end_transitions[p[-1]])  # fmt: skip
    return torch.stack(out)


def score_examples(tagger: Any, examples: Sequence[Example], batch_size: int = 64,
                   start_index: int = 0) -> list[Review]:  # fmt: skip
    """Score ``examples`` with ``tagger`` (a :class:`~sparse_ner.model.Tagger`): one :class:`Review` each.

    Spans with labels the tagger does not know are left out of the annotation it is scored on.
    """
    import torch

    from sparse_ner.constraints import Annotation, build_lattice
    from sparse_ner.tags import decode_tags, split_tag

    crf, known = tagger.crf, set(tagger.labels)
    classes = ["O", *tagger.labels]
    # (K, C): tag -> entity-type class, to collapse B-/I- marginals as cleanlab expects
    collapse = torch.zeros(len(tagger.tags), len(classes))
    for k, tag in enumerate(tagger.tags):
        collapse[k, classes.index(split_tag(tag)[1] or "O")] = 1.0
    was_training = tagger.training
    tagger.eval()
    device = tagger.emit.weight.device
    reviews: list[Review] = []
    try:
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
                emissions = tagger.emissions(inputs)  # (B, T, K)
                lattice = build_lattice(anns, tagger.tags, tagger.scheme, length=T).to(device)
                log_z, log_z_consistent = crf.log_partitions(emissions, lattice)  # (B,), (B,)
                paths = crf.decode(emissions, mask)
                best = _path_scores(crf, emissions, paths)  # (B,): the Viterbi path's score
            pred = [decode_tags([tagger.tags[k] for k in path], tagger.scheme) for path in paths]
            alts = [[_alternatives(span, len(ex), tagger.labels) for span in a.accepted] for ex, a in zip(chunk, anns)]
            queries = [p + a.accepted + a.rejected + [x for xs in al for x in xs] for p, a, al in zip(pred, anns, alts)]
            probs = crf.span_probs(emissions, mask, queries)
            types = crf.marginals(emissions, mask) @ collapse.to(device)  # (B, T, C)
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
                loss = float(log_z[b] - log_z_consistent[b])
                scores = {
                    "span_odds": max(0.0, max(odds, default=0.0)),
                    "worst_span": max((ev[3] for ev in evidence), default=0.0),
                    "loss": loss,
                    "loss_per_span": loss / max(1, len(ann.accepted) + len(ann.rejected)),
                    "margin": max(0.0, float(best[b] - log_z_consistent[b])),
                    "f1": 1.0 - _f1(set(ann.accepted), set(ann.rejected), set(p), ann.complete),
                    "token": 1.0 - min(conf, default=1.0),
                }
                reviews.append(Review(start_index + i + b, ex, scores, [(*s, pr) for s, pr in zip(p, p_pred)],
                                      evidence, accepted=list(ann.accepted), rejected=list(ann.rejected),
                                      type_probs=types[b, : len(ex)].cpu().numpy()))  # fmt: skip
    finally:
        tagger.train(was_training)
    return reviews


def rank(reviews: Iterable[Review], score: str = DEFAULT_SCORE) -> list[Review]:
    """Hardest first (ties keep the data order)."""
    if score not in SCORES:
        raise ValueError(f"unknown score {score!r}; expected one of {SCORES}")
    return sorted(reviews, key=lambda r: (-r.scores[score], r.index))


# --- Prodigy tasks ----------------------------------------------------------------------------


def _span(ex: Example, s: int, e: int, label: str, **extra: Any) -> dict:
    return {"start": ex.tokens[s].start, "end": ex.tokens[e].end, "token_start": s, "token_end": e,
            "label": label, **extra}  # fmt: skip


def review_task(review: Review, score: str = DEFAULT_SCORE, rank_: int | None = None) -> dict:
    """The ``spans_manual`` task of one reviewed example (see the module docstring)."""
    from sparse_ner.data.hashes import REVIEW_TASK_KEYS, set_hashes
    from sparse_ner.data.prodigy import input_hash, token_dicts

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
    original rejects stay in ``_review`` and :mod:`sparse_ner.merge` writes them back.
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


# --- reading and the command line ---------------------------------------------------------------


def read_data(path: str | Path, labels: Sequence[str] | None = None, column_encoding: str = "iob1") -> list[Example]:
    """Examples of a db-out JSONL file (merged per text) or a column file; the reader's report to stderr."""
    from sparse_ner.datamodule import read_any

    return read_any(path, gold=False, labels=labels, column_encoding=column_encoding, name="review")


def write_tasks(reviews: Sequence[Review], path: str | Path, score: str = DEFAULT_SCORE,
                top: int | None = None) -> list[dict]:  # fmt: skip
    """Write the ranked review tasks (``-`` is stdout); return them."""
    from sparse_ner.data.prodigy import write_jsonl

    tasks = [review_task(r, score, i + 1) for i, r in enumerate(rank(reviews, score)[:top])]
    write_jsonl(tasks, path)
    return tasks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sparse_ner.review",
        description="Rank training examples hardest first for review (Prodigy spans_manual JSONL + HTML report).",
        epilog="With --config, unknown --section.option arguments are passed to training "
               "(e.g. --trainer.max_epochs=5).",
    )  # fmt: skip
    parser.add_argument("data", help="db-out JSONL (binary or complete answers) or a column file")
    parser.add_argument("-o", "--output", required=True, help="review JSONL, hardest first (- for stdout)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="score with this exported model (in-sample when it was trained on DATA)")
    source.add_argument("--config", help="training YAML: train --folds models and score out-of-fold")
    parser.add_argument("--folds", type=int, default=None, help="out-of-fold models (default: 3)")
    parser.add_argument("--score", choices=SCORES, default=DEFAULT_SCORE, help=f"ranking score (default {DEFAULT_SCORE})")
    parser.add_argument("--top", type=int, default=None, help="write only the N hardest examples")
    parser.add_argument("--html", default=None, help="HTML report path (default: OUTPUT with .html)")
    parser.add_argument("--report-top", type=int, default=50, help="examples shown in the HTML report")
    parser.add_argument("--column-encoding", default="iob1", help="tag encoding of a column-file DATA")
    parser.add_argument("--models-dir", default=None, help="keep the fold models here (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=0, help="fold assignment seed")
    parser.add_argument("--batch-size", type=int, default=64)
    args, extra = parser.parse_known_args(argv)
    if extra and not args.config:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.model and args.folds is not None:
        parser.error("--folds needs --config (a model given with --model is not retrained)")

    if args.model:
        from sparse_ner.export import load

        tagger = load(args.model)
        examples = read_data(args.data, tagger.labels, args.column_encoding)
        reviews = score_examples(tagger, examples, args.batch_size)
        source_note = f"model {args.model} (in-sample if it was trained on this data)"
    else:
        from sparse_ner.folds import out_of_fold

        examples = read_data(args.data, None, args.column_encoding)
        folds = args.folds if args.folds is not None else DEFAULT_FOLDS
        reviews = out_of_fold(examples, args.config, folds, extra, models_dir=args.models_dir, seed=args.seed,
                              batch_size=args.batch_size)  # fmt: skip
        source_note = f"{folds}-fold out-of-fold models trained with {args.config}"
    if not reviews:
        print("no usable examples in the data", file=sys.stderr)
        return 1
    write_tasks(reviews, args.output, args.score, args.top)

    from sparse_ner.report import html_report, summary

    ranked = rank(reviews, args.score)
    print(summary(ranked, args.score, source=source_note), file=sys.stderr)
    if args.output != "-" or args.html:
        html = Path(args.html) if args.html else Path(args.output).with_suffix(".html")
        html.write_text(html_report(ranked, args.score, top=args.report_top, source=source_note), encoding="utf8")
        print(f"\nreview tasks: {args.output}\nHTML report: {html}", file=sys.stderr)
    return 0


DEFAULT_FOLDS = 3  # scripts/bench_review.py: best AUPRC of K in {2, 3} under the 3x-cost budget (K=5 costs >= 4x)


if __name__ == "__main__":
    sys.exit(main())
