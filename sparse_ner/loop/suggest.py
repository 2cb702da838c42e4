"""Questions for the annotator: suggested spans of a stream, each with its exact probability.

:class:`Suggester` yields ``(score, task)`` with one span per task. ``meta.score`` is the model's
exact probability that the span is an entity (CRF marginals); ``score``, what sorters sort by, is
that probability calibrated to the chance of an accept (``calibrate``: a Platt scaling fitted to
the answers to this object's own suggestions, :mod:`sparse_ner.loop.calibration`; also in
``meta.calibrated``). Suggestions are the spans with a start marginal of at least ``threshold``
(:func:`~sparse_ner.loop.selection.candidate_spans`). Pattern matches
(:mod:`sparse_ner.loop.patterns`) are offered as tasks with ``meta.pattern``; while the model is
cold their ``score`` is pulled to 0.5 (uncertain, so sorters show them), moving to the model's
probability over the first ``pattern_warmup`` answers (or, with ``pattern_patience``, once that many
of the pattern's own matches are answered, whichever is sooner); a pattern whose answers are mostly rejects
(precision below ``min_pattern_precision`` after 5 answers) is no longer offered. Spans already
answered are not asked again. Texts are scored ``batch_size`` at a time, 32 at once sorted by
length.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import OrderedDict
from typing import Any, Callable, Iterable, Iterator, Sequence

import torch

from sparse_ner.core.tagger import Tagger, make_batch
from sparse_ner.data.example import Example, Span, Token
from sparse_ner.data.hashes import record_key, set_hashes
from sparse_ner.data.io import DataError
from sparse_ner.data.prodigy import parse_tokens, span_dict, token_dicts
from sparse_ner.loop.calibration import PlattCalibrator
from sparse_ner.loop.defaults import DEFAULTS
from sparse_ner.loop.memory import AnswerMemory
from sparse_ner.loop.patterns import PatternMatcher
from sparse_ner.loop.selection import candidate_spans

OFFERED_MAX = 100_000  # model probabilities of offered tasks kept for calibration, by task hash
CHUNK = 32  # texts scored at once
log = logging.getLogger(__name__)


def tokens_of(task: dict) -> list[Token]:
    """The task's ``tokens`` as given (checked against its text by :func:`parse_tokens`), else its
    text tokenized. A task whose tokens do not fit its text raises :class:`DataError`."""
    return parse_tokens(task, where="stream task")


def format_task(task: dict, ex: Example, key: int, s: int, e: int, label: str, meta: dict) -> dict:
    """``task`` asking about the one span ``(s, e, label)`` of ``ex``, with its own task hash."""
    spans = [span_dict(Span(ex.tokens[s].start, ex.tokens[e].end, s, e, label))]
    out = {k: v for k, v in task.items() if k not in ("spans", "answer", "_task_hash")}
    out.update(text=ex.text, tokens=task.get("tokens") or token_dicts(ex.tokens), spans=spans, meta=meta)
    set_hashes(out, overwrite=True)  # the task hash of this question (Prodigy's where installed)
    out["_input_hash"] = key
    return out



def chunks(items: Iterable[dict], size: int) -> Iterator[list[dict]]:
    """``items`` in lists of ``size`` (the last may be shorter), lazily."""
    it = iter(items)
    while batch := list(itertools.islice(it, size)):
        yield batch

class Suggester:
    """Scores streams with ``tagger`` (module docstring); ``memory`` says what was asked and how
    patterns fared. ``lock`` is held while a batch is scored; ``autocast()`` wraps the encoder.
    ``weights()`` wraps each batch of :meth:`predict` (the learner's averaged weights); the stream is
    scored with the weights as they are (the raw ones: questions from the averaged weights were no
    better in the simulation, BENCHMARKS.md)."""

    def __init__(self, tagger: Tagger, memory: AnswerMemory, lock: threading.RLock | None = None,
                 autocast: Callable[[], Any] | None = None, matcher: PatternMatcher | None = None, *,
                 threshold: float = DEFAULTS["threshold"], max_len: int = DEFAULTS["max_len"],
                 max_suggestions: int | None = DEFAULTS["max_suggestions"],
                 pattern_warmup: int = DEFAULTS["pattern_warmup"],
                 pattern_patience: int | None = DEFAULTS["pattern_patience"],
                 min_pattern_precision: float = DEFAULTS["min_pattern_precision"],
                 calibrate: bool = DEFAULTS["calibrate"], calibration_window: int = DEFAULTS["calibration_window"],
                 batch_size: int = DEFAULTS["batch_size"], weights: Callable[[], Any] | None = None):  # fmt: skip
        from contextlib import nullcontext

        self.tagger, self.memory, self.matcher = tagger, memory, matcher
        self.lock = lock if lock is not None else threading.RLock()
        self.autocast, self.weights = autocast or nullcontext, weights or nullcontext
        self.threshold, self.max_len, self.max_suggestions = threshold, max_len, max_suggestions
        self.pattern_warmup, self.min_pattern_precision = pattern_warmup, min_pattern_precision
        self.pattern_patience = pattern_patience
        self.calibrate, self.batch_size = calibrate, batch_size
        self.skipped_tasks = 0  # stream tasks whose tokens do not fit their text
        self.calibrator = PlattCalibrator(calibration_window)
        self._offered: OrderedDict[int, float] = OrderedDict()  # task hash -> model probability when offered

    def pattern_answers(self, pid: str) -> tuple[int, int]:
        """``(accepts, accepts + rejects)`` of the answers to pattern ``pid``'s matches."""
        c = self.memory.pattern_counts.get(pid) or {}
        return c.get("accept", 0), c.get("accept", 0) + c.get("reject", 0)

    def pattern_ok(self, pid: str) -> bool:
        """A pattern is offered until 5+ answers show a precision below ``min_pattern_precision``."""
        accepts, answered = self.pattern_answers(pid)
        return answered < 5 or accepts / answered >= self.min_pattern_precision

    def pattern_heard(self, pid: str) -> float:
        """How far the answers to pattern ``pid``'s own matches have moved its score to the model's:
        answered matches / ``pattern_patience`` (at most 1; 0 when ``pattern_patience`` is None)."""
        if not self.pattern_patience:
            return 0.0
        return min(1.0, self.pattern_answers(pid)[1] / self.pattern_patience)

    def score(self, examples: list[Example], extra: Sequence[Iterable[tuple[int, int, str]]]
              ) -> list[list[tuple[int, int, str, float]]]:  # fmt: skip
        """Candidate spans (plus the ``extra`` spans of each example) with their exact probability."""
        tagger = self.tagger
        with self.lock:
            inputs = tagger.to_device(make_batch(tagger.encoder, examples))["inputs"]
            mask = inputs["word_mask"]  # (B, T)
            with torch.no_grad(), self.autocast():
                emissions = tagger.emissions(inputs)  # (B, T, K) float32
            posterior = tagger.crf.posterior(emissions, mask)  # one pass: candidates and their probabilities
            lengths = mask.sum(1).tolist()
            cands = candidate_spans(posterior.unary, lengths, tagger.tags, tagger.scheme, self.threshold, self.max_len,
                                    self.max_suggestions)  # fmt: skip
            for c, more in zip(cands, extra):
                c.extend(span for span in more if span not in c)
            probs = tagger.crf.span_probs(emissions, mask, cands, posterior)
        return [[(s, e, lab, p) for (s, e, lab), p in zip(c, ps)] for c, ps in zip(cands, probs)]

    def __call__(self, stream: Iterable[dict]) -> Iterator[tuple[float, dict]]:
        """``(score, task)`` for each suggested span of each text of ``stream`` (module docstring)."""
        for batch in chunks(stream, self.batch_size):
            yield from self.suggest(batch)

    def _example(self, task: dict) -> Example:
        """The task as an :class:`Example`; one whose tokens do not fit its text is logged, counted in
        ``skipped_tasks`` and left without tokens (so nothing is asked about it)."""
        try:
            return Example(task["text"], tokens_of(task))
        except (DataError, KeyError, TypeError) as e:
            self.skipped_tasks += 1
            log.warning("%s; skipped (%d stream task(s) skipped so far)", e, self.skipped_tasks)
            return Example(task.get("text") if isinstance(task.get("text"), str) else "", [])

    def suggest(self, tasks: list[dict]) -> Iterator[tuple[float, dict]]:
        """``(score, task)`` for the suggested spans of ``tasks``, scored together."""
        examples = [self._example(t) for t in tasks]
        matches = [{m[:3]: m.pattern for m in self.matcher(ex.words) if self.pattern_ok(m.pattern)}
                   if self.matcher is not None and ex.tokens else {} for ex in examples]  # fmt: skip
        order = sorted((i for i, ex in enumerate(examples) if ex.tokens), key=lambda i: len(examples[i]))
        scored: dict[int, list[tuple[int, int, str, float]]] = {}
        for j in range(0, len(order), CHUNK):
            idx = order[j : j + CHUNK]
            scored.update(zip(idx, self.score([examples[i] for i in idx], [list(matches[i]) for i in idx])))
        warm = min(1.0, self.memory.n_answers / max(1, self.pattern_warmup))
        for i, task in enumerate(tasks):
            if i not in scored:
                continue
            key = record_key(task)
            for s, e, label, p in scored[i]:
                if (key, s, e, label) in self.memory.asked:
                    continue
                pid = matches[i].get((s, e, label))
                if pid is None and p < self.threshold:
                    continue
                meta = dict(task.get("meta") or {})
                meta["score"] = round(p, 6)  # the exact CRF probability
                score = p
                if self.calibrate:
                    score = self.calibrator(p)
                    meta["calibrated"] = round(score, 6)
                if pid is not None:
                    w = max(warm, self.pattern_heard(pid))
                    score = (1.0 - w) * 0.5 + w * score
                    meta["pattern"] = pid
                out = format_task(task, examples[i], key, s, e, label, meta)
                if pid is None:
                    self._offer(out["_task_hash"], p)
                yield score, out

    def _offer(self, key: int, p: float) -> None:
        with self.lock:
            self._offered[key] = p
            self._offered.move_to_end(key)
            if len(self._offered) > OFFERED_MAX:
                self._offered.popitem(last=False)

    def observe(self, answers: Iterable[dict]) -> None:
        """Answers to this object's own model suggestions (not pattern matches) feed the calibrator,
        which is refitted when ``calibrate``."""
        for task in answers:
            if task.get("answer") in ("accept", "reject") and task.get("_view_id", "ner") == "ner":
                p = self._offered.pop(task.get("_task_hash"), None)
                if p is not None:
                    self.calibrator.add(p, task["answer"] == "accept")
        if self.calibrate:
            self.calibrator.fit()

    def predict(self, tasks: Iterable[dict]) -> Iterator[dict]:
        """Each task with the model's best spans filled in (``ner_manual`` pre-annotation)."""
        for batch in chunks(tasks, self.batch_size):
            yield from self._predict(batch)

    def _predict(self, tasks: list[dict]) -> list[dict]:
        from sparse_ner.core.predict import predict_tasks

        with self.lock, self.weights():
            return list(predict_tasks(self.tagger, tasks, batch_size=self.batch_size))


__all__ = ["Suggester", "format_task", "tokens_of"]
