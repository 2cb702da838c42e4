"""The answer memory of the annotation loop: every valid answer, merged per text into an example.

Answers are Prodigy task dicts (``accept`` / ``reject`` / ``ignore``; binary ``ner`` or complete
``ner_manual``), keyed by :func:`~sparse_ner.data.hashes.record_key` and merged per text with
every earlier answer by :func:`~sparse_ner.data.prodigy.merge_records` (the rules of
``read_examples``).

Malformed answers
    Each answer is checked before it is stored, with the reader's checks (:func:`check_answer`):
    one the reader could never use (not a JSON-able dict, a missing or mistyped field, a span
    outside the text, an unknown label, ...; ignored answers and rejected manual ones are valid and
    kept) is skipped, logged on one line and counted by the reader's reason name in ``skipped``
    (``last_skipped``: ``(index, reason)`` of the last call). :meth:`AnswerMemory.load` skips bad
    lines of a saved answer file the same way (``last_skipped`` holds their line numbers).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from sparse_ner.data.example import Example
from sparse_ner.data.hashes import record_key
from sparse_ner.data.prodigy import REASONS, check_record, merge_records

logger = logging.getLogger(__name__)
STARVED_AFTER = 200  # binary answers before a label can count as starved (starved_labels)
STARVED_SHARE = 0.2  # ... with fewer accepts than this share of the mean label's


def check_answer(task: Any, labels: set[str]) -> str | None:
    """Why ``task`` must not be stored (a reason of ``REASONS``), or None when it may
    (:func:`sparse_ner.data.prodigy.check_record`)."""
    return check_record(task, labels)


def _json_or_none(line: bytes) -> Any:
    try:
        return json.loads(line)
    except ValueError:  # UnicodeDecodeError included
        return None  # counted as malformed_json by check_answer


class AnswerMemory:
    """Answers by text, the merged example and encoder features of each text, and what was asked.

    ``featurize(words)`` is the encoder's; its result is cached per text for training."""

    def __init__(self, labels: Sequence[str], featurize: Callable[[list[str]], dict]):
        self.labels = list(labels)
        self.featurize = featurize
        self.records: dict[int, list[dict]] = {}  # input hash -> answered records, in answer order
        self.examples: dict[int, Example] = {}  # input hash -> the merged example
        self.features: dict[int, dict] = {}  # input hash -> featurize(words) of its example
        self.asked: set[tuple[int, int, int, str]] = set()  # (input hash, start, end, label) answered
        self.pattern_counts: dict[str, Counter] = {}  # pattern id -> {"accept": n, "reject": n}
        self.label_counts: dict[str, Counter] = {label: Counter() for label in self.labels}  # binary answers by label
        self.n_answers = 0
        self.skipped: Counter = Counter()  # reason (REASONS of data.prodigy) -> malformed answers skipped
        self.last_skipped: list[tuple[int, str]] = []  # (index in the batch / line, reason) of the last call

    def screen(self, records: Iterable[tuple[int, Any]], where: str) -> list[dict]:
        """The records of ``(index, record)`` that may be stored; the others are logged (``where``
        names the index, e.g. ``"update(): answer"``), counted in ``skipped`` and listed in
        ``last_skipped``."""
        kept: list[dict] = []
        self.last_skipped = []
        labels = set(self.labels)
        for i, record in records:
            reason = check_answer(record, labels)
            if reason is None:
                kept.append(record)
                continue
            self.skipped[reason] += 1
            self.last_skipped.append((i, reason))
            logger.warning("%s %d skipped: %s (%s)", where, i, reason, REASONS[reason])
        return kept

    def add(self, answers: Sequence[dict]) -> list[int]:
        """Store valid ``answers`` (see :meth:`screen`) and re-merge their texts; returns the keys of
        those texts that now have something to learn, in answer order."""
        touched: list[int] = []
        for task in answers:
            key = record_key(task, migrate=True)  # Prodigy's hash (re-keys answers saved with the MD5 fallback)
            if task.get("_input_hash") != key:  # one key per text, in memory and in the saved answers
                task = {**task, "_input_hash": key}
            self.records.setdefault(key, []).append(task)
            if key not in touched:
                touched.append(key)
            answer = task.get("answer")
            if answer in ("accept", "reject", "ignore") and task.get("_view_id", "ner") == "ner":
                for sp in task.get("spans", []):  # answered, ignored included: never asked again
                    if "token_start" in sp and "token_end" in sp:
                        self.asked.add((key, sp["token_start"], sp["token_end"], sp.get("label", "")))
            if answer in ("accept", "reject") and task.get("_view_id", "ner") == "ner":
                for sp in task.get("spans", []):
                    self.label_counts.setdefault(sp.get("label", ""), Counter())[answer] += 1
                pid = (task.get("meta") or {}).get("pattern")
                if pid is not None:
                    self.pattern_counts.setdefault(str(pid), Counter())[answer] += 1
        self.n_answers += len(answers)
        for key in touched:
            merged = merge_records(self.records[key], labels=self.labels)
            if merged:
                self.examples[key] = merged[0]
                if key not in self.features:
                    self.features[key] = self.featurize(merged[0].words)
            else:
                self.examples.pop(key, None)
                self.features.pop(key, None)
        return [k for k in touched if k in self.examples]

    def starved_labels(self, after: int | None = None, share: float | None = None) -> list[str]:
        """Labels the binary answers hardly reach: once ``after`` of them are given (default
        :data:`STARVED_AFTER`), those with fewer accepts than ``share`` (:data:`STARVED_SHARE`) of the
        mean label's. The questions follow the model, which suggests
        what it has learned, so a label without accepts early (no pattern matches it) tends to stay
        without them (BENCHMARKS.md: ORG on CoNLL-2003)."""
        after = STARVED_AFTER if after is None else after
        share = STARVED_SHARE if share is None else share
        binary = sum(sum(c.values()) for c in self.label_counts.values())
        if binary < after:
            return []
        accepts = {label: self.label_counts[label]["accept"] for label in self.labels}
        mean = sum(accepts.values()) / max(1, len(accepts))
        return [label for label, n in accepts.items() if n < share * mean]

    # -- saving --------------------------------------------------------------------------------

    def state(self) -> dict:
        """The counts :meth:`load` restores (JSON)."""
        return {"n_answers": self.n_answers, "pattern_counts": {k: dict(v) for k, v in self.pattern_counts.items()},
                "skipped": dict(self.skipped)}  # fmt: skip

    def write(self, path: Path) -> None:
        """Every stored answer, one JSON line each, in answer order per text."""
        with open(path, "w", encoding="utf8") as f:
            for records in self.records.values():
                for r in records:
                    f.write(json.dumps(r, ensure_ascii=False) + "\n")

    def load(self, path: Path, state: dict) -> None:
        """Add the answers :meth:`write` saved in ``path`` (when it exists; bad lines are skipped and
        counted), then restore the counts of :meth:`state`."""
        self.skipped.update(state.get("skipped", {}))
        if path.exists():
            with open(path, "rb") as f:  # bytes: a line that is not UTF-8 is one bad line
                lines = [(i, _json_or_none(line)) for i, line in enumerate(f, 1) if line.strip()]
            self.add(self.screen(lines, f"{path}: line"))
        self.pattern_counts = {k: Counter(v) for k, v in state.get("pattern_counts", {}).items()}
        self.n_answers = state.get("n_answers", sum(len(v) for v in self.records.values()))


__all__ = ["AnswerMemory", "check_answer"]
