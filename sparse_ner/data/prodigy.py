"""Read Prodigy ``db-out`` JSONL answers into one :class:`Example` per text, and write them back.

Records
    Each line is one answered task: ``text``, optional ``tokens`` (``text``, ``start``, ``end``,
    ``id``, ``ws``), ``spans`` (character ``start``/``end``, ``token_start``/``token_end``
    *inclusive*, ``label``), ``answer`` (accept / reject / ignore), ``_input_hash``, ``_task_hash``,
    ``_view_id``, ``meta``. ``tokens`` are used when given, else :func:`tokenize`. A span may give
    only token offsets; when it gives both, they must agree with the character offsets.

Views
    ``ner`` (and records without ``_view_id``) are *binary* tasks: an accept says each of its spans is
    an entity with exactly that label and those boundaries; a reject says the (single) span is not.
    ``ner_manual`` / ``spans_manual`` accepts are *complete* annotations: every token outside their
    spans is ``O``. Other views are counted as ``unsupported_view``.

Every record gets exactly one outcome in :attr:`ReadStats.counts` (they sum to ``total``): ``used``
or the reason it was not used. Spans dropped or merged inside records are also counted in
:attr:`ReadStats.span_counts`. Record-level reasons:

- ``ignored_answer``: answer ``ignore``.
- ``rejected_manual_answer``: a rejected ``ner_manual`` answer only says the whole annotation is
  wrong somewhere, which cannot be used.
- ``empty_text``, ``missing_field`` (text/answer/spans/label missing or of the wrong type),
  ``bad_tokens`` (tokens that do not match the text), ``unsupported_view``, ``no_spans`` (a binary
  task without spans), ``ambiguous_reject`` (a rejected binary task with several spans: which one is
  wrong is unknown), ``text_mismatch`` / ``token_mismatch`` (same ``_input_hash`` as an earlier
  record but different text or tokens).
- ``span_outside_text`` (outside the text, or empty), ``span_not_on_token_boundaries``,
  ``span_offsets_disagree`` (token offsets disagree with character offsets), ``unknown_label``
  (label not in ``labels``): a binary task is unusable if any of its spans is. In a manual
  annotation the first three make the record unusable (a complete annotation missing a span would
  teach ``O``); a span with an unknown label is dropped and the rest used, so a full annotation can
  train a tagger on a subset of labels (the dropped label's tokens become ``O``).
- ``overlapping_accepts``: a manual annotation whose spans overlap; or see the merge rules below.
- ``malformed_json``: with ``on_error="skip"``, a line that is not a JSON object.

Merging (all records sharing ``_input_hash``, else a hash of the text, make one Example)
    1. Manual accepts: if all give the same spans, the first is *the* annotation M, the others are
       duplicates. If they disagree, all are ``conflicting_answers`` (no guessing).
    2. A (token_start, token_end, label) both accepted (in M or a binary accept) and rejected: the
       annotator contradicted themselves; *every* answer about it is dropped as
       ``conflicting_answers``. If it was in M, the example is no longer complete.
    3. With M: binary accepts equal to a span of M are duplicates; binary accepts not in M are
       ``conflicting_answers`` (M is the deliberate annotation and wins). Binary rejects are kept.
    4. Without M: binary accepts are taken in file order; one overlapping an accepted span kept
       earlier (sharing a token, different span) is ``overlapping_accepts``.
    5. Repeats of the same answer are merged and counted in ``span_counts["duplicate_answer"]``;
       their records count as ``used``.
    A record is ``used`` when at least one of its spans survives (a manual annotation M always is);
    otherwise its outcome is the reason its first span was dropped. An Example is made for every text
    with at least one used record; ``Example.tasks`` holds *all* records of that text, in file order.
    ``complete`` is true when M survives intact, unless the ``complete`` argument overrides it.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Literal, Sequence

from sparse_ner.data.example import Example, Span, Token
from sparse_ner.data.hashes import input_hash, record_key, task_hash
from sparse_ner.data.io import DataError, read_jsonl
from sparse_ner.data.tokenize import tokenize

BINARY_VIEWS = ("ner",)
MANUAL_VIEWS = ("ner_manual", "spans_manual")
ANSWERS = ("accept", "reject", "ignore")

REASONS: dict[str, str] = {
    "used": "merged into an example",
    "ignored_answer": "answer 'ignore'",
    "rejected_manual_answer": "rejected manual annotation (unusable)",
    "empty_text": "empty text or no tokens",
    "missing_field": "missing or mistyped field",
    "bad_tokens": "tokens do not match the text",
    "unsupported_view": "_view_id is not ner / ner_manual / spans_manual",
    "no_spans": "binary task without spans",
    "ambiguous_reject": "rejected binary task with several spans",
    "text_mismatch": "same input hash, different text",
    "token_mismatch": "same input hash, different tokens",
    "span_outside_text": "span outside the text or empty",
    "span_not_on_token_boundaries": "span not on token boundaries",
    "span_offsets_disagree": "token offsets disagree with character offsets",
    "unknown_label": "label not in the label set",
    "conflicting_answers": "contradicted by another answer on the same text",
    "overlapping_accepts": "overlaps an accepted span",
    "duplicate_answer": "repeats an earlier answer (merged, used)",
    "malformed_json": "line is not a JSON object",
}


@dataclass
class ReadStats:
    """What happened to every record read: one outcome per record, plus span-level counts."""

    counts: Counter = field(default_factory=Counter)  # record outcome -> number of records
    span_counts: Counter = field(default_factory=Counter)  # span dropped/merged reason -> spans

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def used(self) -> int:
        return self.counts["used"]

    def report(self) -> str:
        """A printable table of record outcomes and span-level counts."""
        width = max(len(r) for r in REASONS)
        lines = [f"{'records':<{width}} {'count':>8}"]
        for reason, n in sorted(self.counts.items(), key=lambda kv: (kv[0] != "used", -kv[1])):
            lines.append(f"{reason:<{width}} {n:>8}  {REASONS.get(reason, '')}")
        lines.append(f"{'total':<{width}} {self.total:>8}")
        span_counts = {r: n for r, n in self.span_counts.items() if n}
        if span_counts:
            lines.append(f"{'spans dropped or merged':<{width}} {'count':>8}")
            for reason, n in sorted(span_counts.items(), key=lambda kv: -kv[1]):
                lines.append(f"{reason:<{width}} {n:>8}  {REASONS.get(reason, '')}")
        return "\n".join(lines)


# --- parsing one record -------------------------------------------------------------------------


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


_NO_WS = object()  # a token without "ws": whitespace after it in the text decides


@dataclass
class _Answer:
    index: int  # record index within its group
    manual: bool
    accept: bool
    spans: list[Span]


@dataclass
class _Group:
    key: int
    records: list[dict] = field(default_factory=list)
    text: str | None = None
    tokens: list[Token] | None = None
    answers: list[_Answer] = field(default_factory=list)
    outcome: dict[int, str] = field(default_factory=dict)  # record index -> outcome


def _parse_tokens(record: dict, text: str, tokenizer: Callable[[str], list[Token]]) -> list[Token] | str:
    raw = record.get("tokens")
    if raw is None:
        return tokenizer(text)
    if not isinstance(raw, list):
        return "bad_tokens"
    tokens = []
    n, prev_end = len(text), 0
    for t in raw:  # a stream's every task comes through here: plain ints take the short way (type is int)
        if type(t) is not dict and not isinstance(t, dict):
            return "bad_tokens"
        s, e = t.get("start"), t.get("end")
        if not ((type(s) is int or _is_int(s)) and (type(e) is int or _is_int(e)) and prev_end <= s < e <= n):
            return "bad_tokens"  # in order, inside the text
        piece = text[s:e]
        if t.get("text", piece) != piece:
            return "bad_tokens"
        ws = t.get("ws", _NO_WS)
        tokens.append(Token(piece, s, e, bool(e < n and text[e].isspace() if ws is _NO_WS else ws)))
        prev_end = e
    return tokens


def parse_tokens(task: dict, tokenizer: Callable[[str], list[Token]] = tokenize, where: str = "task") -> list[Token]:
    """The tokens of a task: its ``tokens`` (checked against its ``text``: in order, inside the
    text, each token's ``text`` equal to its slice), else ``tokenizer(text)``. The one token parser
    of the package; raises :class:`DataError` naming ``where`` and what is wrong."""
    text = task.get("text") if isinstance(task, dict) else None
    if not isinstance(text, str):
        raise DataError(f"{where}: no 'text' string in the task")
    tokens = _parse_tokens(task, text, tokenizer)
    if isinstance(tokens, str):
        raise DataError(f"{where}: tokens do not match the text (each needs start < end inside the text, in order, "
                        f"and its 'text' equal to that slice)")  # fmt: skip
    return tokens


def _map_span(sp: Any, text: str, tokens: list[Token], starts: dict, ends: dict) -> Span | str:
    """A span dict -> :class:`Span`, or the reason it cannot be used."""
    if not isinstance(sp, dict) or not isinstance(sp.get("label"), str) or not sp["label"]:
        return "missing_field"
    s, e, ts, te = (sp.get(k) for k in ("start", "end", "token_start", "token_end"))
    if any(x is not None and not _is_int(x) for x in (s, e, ts, te)):
        return "missing_field"
    if s is None or e is None:
        if ts is None or te is None:
            return "missing_field"
        if not (0 <= ts <= te < len(tokens)):
            return "span_outside_text"
        s, e = tokens[ts].start, tokens[te].end
    if not (0 <= s < e <= len(text)):
        return "span_outside_text"
    if s not in starts or e not in ends or starts[s] > ends[e]:
        return "span_not_on_token_boundaries"
    i, j = starts[s], ends[e]
    if (ts is not None and ts != i) or (te is not None and te != j):
        return "span_offsets_disagree"
    return Span(s, e, i, j, sp["label"])


def _parse(
    record: dict, labels: set[str] | None, tokenizer, stats: ReadStats
) -> tuple[str, list[Token], _Answer] | str:
    """Check one record; return ``(text, tokens, answer)`` or the reason it is unusable."""
    text, answer = record.get("text"), record.get("answer")
    if not isinstance(text, str) or answer not in ANSWERS:
        return "missing_field"
    if answer == "ignore":
        return "ignored_answer"
    view = record.get("_view_id", "ner")
    manual = view in MANUAL_VIEWS
    if not manual and view not in BINARY_VIEWS:
        return "unsupported_view"
    if manual and answer == "reject":
        return "rejected_manual_answer"
    if not text.strip():
        return "empty_text"
    tokens = _parse_tokens(record, text, tokenizer)
    if isinstance(tokens, str):
        return tokens
    if not tokens:
        return "empty_text"
    raw_spans = record.get("spans", [])
    if not isinstance(raw_spans, list):
        return "missing_field"
    if not manual and not raw_spans:
        return "no_spans"
    if not manual and answer == "reject" and len(raw_spans) > 1:
        return "ambiguous_reject"
    starts = {t.start: i for i, t in enumerate(tokens)}
    ends = {t.end: i for i, t in enumerate(tokens)}
    spans: list[Span] = []
    for sp in raw_spans:
        span = _map_span(sp, text, tokens, starts, ends)
        if isinstance(span, Span) and labels is not None and span.label not in labels:
            span = "unknown_label"
        if isinstance(span, str):
            if manual and span == "unknown_label":
                stats.span_counts["unknown_label"] += 1
                continue
            return span
        spans.append(span)
    if manual:
        taken = sorted(spans, key=lambda s: s.token_start)
        if any(a.token_end >= b.token_start for a, b in zip(taken, taken[1:])):
            return "overlapping_accepts"
    return text, tokens, _Answer(-1, manual, answer == "accept", spans)


# --- merging the answers on one text -----------------------------------------------------------


KEPT_REASONS = ("ignored_answer", "rejected_manual_answer")  # valid answers the reader does not use


def check_record(record: Any, labels: Iterable[str] | None = None) -> str | None:
    """Why one answered record is malformed (a reason of :data:`REASONS`), or None when it is a valid
    answer: the reader's checks of :func:`read_examples` on this record alone. Ignored answers and
    rejected manual answers are valid (their fields are checked all the same); the record must also
    be JSON-serializable, its ``meta`` a dict and its ``_task_hash`` an int when present."""
    if not isinstance(record, dict):
        return "malformed_json"
    try:
        json.dumps(record, ensure_ascii=False).encode("utf8")
    except (TypeError, ValueError):
        return "malformed_json"
    meta, thash = record.get("meta"), record.get("_task_hash")
    if (meta is not None and not isinstance(meta, dict)) or not (thash is None or _is_int(thash)):
        return "missing_field"
    probe = record
    if record.get("answer") == "ignore" or (record.get("answer") == "reject" and record.get("_view_id") in MANUAL_VIEWS):
        probe = {**record, "answer": "accept"}
    reason = _parse(probe, set(labels) if labels is not None else None, tokenize, ReadStats())
    return reason if isinstance(reason, str) and reason not in KEPT_REASONS else None


def _overlaps(a: Span, b: Span) -> bool:
    return a.token_start <= b.token_end and b.token_start <= a.token_end


def _resolve(g: _Group, complete: bool | None, stats: ReadStats) -> Example | None:
    """Apply the merge rules of the module docstring to one text; set each record's outcome."""
    kept: Counter = Counter()  # record index -> spans that survived
    first_drop: dict[int, str] = {}

    def drop(a: _Answer, reason: str) -> None:
        stats.span_counts[reason] += 1
        first_drop.setdefault(a.index, reason)

    manual = [a for a in g.answers if a.manual]
    binary = [a for a in g.answers if not a.manual]
    m_answer: _Answer | None = None
    if manual:
        keysets = {frozenset(s.key for s in a.spans) for a in manual}
        if len(keysets) == 1:
            m_answer = manual[0]
            stats.span_counts["duplicate_answer"] += sum(len(a.spans) for a in manual[1:])
            for a in manual:
                g.outcome[a.index] = "used"
        else:
            for a in manual:
                g.outcome[a.index] = "conflicting_answers"
    m_spans = {s.key: s for s in m_answer.spans} if m_answer else {}
    rejected_keys = {s.key for a in binary if not a.accept for s in a.spans}
    accepted_keys = set(m_spans) | {s.key for a in binary if a.accept for s in a.spans}
    contradicted = accepted_keys & rejected_keys
    intact = m_answer is not None
    for key in contradicted:
        if key in m_spans:
            del m_spans[key]
            stats.span_counts["conflicting_answers"] += 1
            intact = False

    accepted: dict[tuple, Span] = dict(m_spans)
    rejected: dict[tuple, Span] = {}
    for a in binary:
        for s in a.spans:
            if s.key in contradicted:
                drop(a, "conflicting_answers")
            elif not a.accept:
                if s.key in rejected:
                    stats.span_counts["duplicate_answer"] += 1
                rejected.setdefault(s.key, s)
                kept[a.index] += 1
            elif s.key in accepted:
                stats.span_counts["duplicate_answer"] += 1
                kept[a.index] += 1
            elif m_answer is not None:
                drop(a, "conflicting_answers")
            elif any(_overlaps(s, t) for t in accepted.values()):
                drop(a, "overlapping_accepts")
            else:
                accepted[s.key] = s
                kept[a.index] += 1
        g.outcome[a.index] = "used" if kept[a.index] else first_drop[a.index]

    if not any(o == "used" for o in g.outcome.values()):
        return None
    assert g.text is not None and g.tokens is not None
    return Example(
        text=g.text,
        tokens=g.tokens,
        accepted=sorted(accepted.values(), key=lambda s: s.token_start),
        rejected=sorted(rejected.values(), key=lambda s: s.key),
        complete=intact if complete is None else complete,
        input_hash=g.key,
        tasks=g.records,
    )


def read_examples(
    source: str | Path,
    labels: Sequence[str] | None = None,
    complete: bool | None = None,
    stats: ReadStats | None = None,
    tokenizer: Callable[[str], list[Token]] = tokenize,
    on_error: Literal["raise", "skip"] = "raise",
) -> list[Example]:
    """Read a db-out JSONL file into one :class:`Example` per text (see the module docstring).

    Pass a :class:`ReadStats` to see what was used and why the rest was not. ``complete`` forces
    every example complete (True) or sparse (False); None decides per example.
    """
    stats = ReadStats() if stats is None else stats
    records = (record for _, record in read_jsonl(source, on_error=on_error, stats=stats))
    return merge_records(records, labels, complete, stats, tokenizer)


def merge_records(
    records: Iterable[dict],
    labels: Sequence[str] | None = None,
    complete: bool | None = None,
    stats: ReadStats | None = None,
    tokenizer: Callable[[str], list[Token]] = tokenize,
) -> list[Example]:
    """Merge db-out record dicts (in order) into one :class:`Example` per text, exactly as
    :func:`read_examples` does for a file: same checks, merge rules and ``stats`` counts."""
    stats = ReadStats() if stats is None else stats
    label_set = set(labels) if labels is not None else None
    groups: dict[int, _Group] = {}
    for record in records:
        text = record.get("text")
        key = record_key(record) if _is_int(record.get("_input_hash")) or isinstance(text, str) else None
        parsed = _parse(record, label_set, tokenizer, stats)
        if key is None:  # no text and no hash: nothing to attach it to
            stats.counts[parsed if isinstance(parsed, str) else "missing_field"] += 1
            continue
        g = groups.setdefault(key, _Group(key))
        index = len(g.records)
        g.records.append(record)
        if isinstance(parsed, str):
            g.outcome[index] = parsed
            continue
        text, tokens, answer = parsed
        if g.text is None:
            g.text, g.tokens = text, tokens
        elif text != g.text:
            g.outcome[index] = "text_mismatch"
            continue
        elif [(t.start, t.end) for t in tokens] != [(t.start, t.end) for t in g.tokens]:
            g.outcome[index] = "token_mismatch"
            continue
        answer.index = index
        g.answers.append(answer)
    examples = []
    for g in groups.values():
        example = _resolve(g, complete, stats)
        stats.counts.update(g.outcome.values())
        if example is not None:
            examples.append(example)
    return examples


# --- writing ------------------------------------------------------------------------------------


def token_dicts(tokens: Sequence[Token]) -> list[dict]:
    return [{"text": t.text, "start": t.start, "end": t.end, "id": i, "ws": t.ws} for i, t in enumerate(tokens)]


def span_dict(span: Span) -> dict:
    return {
        "start": span.start,
        "end": span.end,
        "token_start": span.token_start,
        "token_end": span.token_end,
        "label": span.label,
    }


def make_task(example: Example, spans: list[Span], view: str, answer: str, meta: dict | None) -> dict:
    """One db-out record of ``example`` with ``spans``, hashed like Prodigy (``_input_hash``, ``_task_hash``)."""
    in_hash = example.input_hash if example.input_hash is not None else input_hash(example.text)
    span_dicts = [span_dict(s) for s in spans]
    task: dict[str, Any] = {"text": example.text, "tokens": token_dicts(example.tokens), "spans": span_dicts}
    if meta:
        task["meta"] = meta
    task.update(
        _input_hash=in_hash, _task_hash=task_hash(in_hash, view, span_dicts), _view_id=view, answer=answer
    )
    return task


def examples_to_tasks(examples: Iterable[Example]) -> Iterator[dict]:
    """Write Examples back as db-out records.

    A complete example -> one ``ner_manual`` accept with all accepted spans (``meta`` copied from its
    first task that has one). A sparse example -> its original ``tasks`` if any (hashes filled in
    where missing), else one binary ``ner`` task per accepted span (accept) and rejected span (reject).
    """
    for ex in examples:
        if ex.complete:
            meta = next((t["meta"] for t in ex.tasks if isinstance(t.get("meta"), dict)), None)
            yield make_task(ex, sorted(ex.accepted, key=lambda s: s.token_start), "ner_manual", "accept", meta)
        elif ex.tasks:
            for t in ex.tasks:
                if "_input_hash" not in t or "_task_hash" not in t:
                    t = dict(t)
                    in_hash = t.setdefault("_input_hash", input_hash(t.get("text", "")))
                    spans = [s for s in t.get("spans", []) if isinstance(s, dict) and {"start", "end", "label"} <= set(s)]
                    t.setdefault("_task_hash", task_hash(in_hash, t.get("_view_id", "ner"), spans))
                yield t
        else:
            for s in ex.accepted:
                yield make_task(ex, [s], "ner", "accept", None)
            for s in ex.rejected:
                yield make_task(ex, [s], "ner", "reject", None)
