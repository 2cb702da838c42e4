"""Merge reviewed corrections back into the original answers, keeping everything else as it was.

:func:`merge` works on files (``python -m sparse_ner.merge ORIGINAL.jsonl CORRECTIONS.jsonl -o MERGED.jsonl
[--key input|task]``, :mod:`sparse_ner.cli.merge`), :func:`merge_corrections` on records.

- Records are matched by ``_input_hash`` (default; a record without one gets the hash of its text, as
  :func:`sparse_ner.data.prodigy.read_examples` does), or by ``_task_hash`` with ``key="task"``.
- Every original record whose key has a correction is *replaced*: the corrections of that key are
  written where its first original record was. Every other original record is *kept*, byte for byte
  the same JSON object, in its original order. Corrections whose key matches no original record are
  *unmatched*: appended at the end (nothing is lost), or dropped with ``drop_unmatched``.
- A correction answered ``ignore`` (the reviewer skipped it) does not replace anything.
- Corrections are cleaned as :func:`sparse_ner.review.strip_predicted` would (for corrections saved
  without the recipe's ``before_db``): ``LABEL:PREDICTED`` spans are dropped, and a text whose original
  annotation was binary is saved as a binary ``ner`` accept, followed by ``ner`` rejects of its
  original rejected spans that the reviewer did not accept (kept in ``_review``).
- When a review task was answered several times, the last answer counts (``superseded``).
- ``replaced=FILE`` writes the replaced original records, so that the merge can be undone.

The counts of replaced, kept, unmatched, ignored and superseded records are returned.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Literal

from sparse_ner.data.hashes import input_hash, task_hash
from sparse_ner.data.io import open_atomic, read_jsonl
from sparse_ner.data.prodigy import REASONS, check_record
from sparse_ner.review.tasks import PREDICTED, strip_predicted

log = logging.getLogger(__name__)
Key = Literal["input", "task"]


def key_of(record: dict, key: Key = "input") -> Any:
    if key == "task":  # a review answer carries the task hash of the one original answer it reviews
        review = record.get("_review")
        original = review.get("task_hash") if isinstance(review, dict) else None
        return original if original is not None else record.get("_task_hash")
    h = record.get("_input_hash")
    if isinstance(h, int) and not isinstance(h, bool):
        return h
    text = record.get("text")
    return input_hash(text) if isinstance(text, str) else None


def clean_correction(record: dict) -> list[dict]:
    """The db-out records a correction stands for (see the module docstring)."""
    if any(str(s.get("label", "")).endswith(PREDICTED) for s in record.get("spans", []) if isinstance(s, dict)) or (
        record.get("_review", {}).get("complete") is False and record.get("_view_id") != "ner"
    ):
        (record,) = strip_predicted([record])
    review = record.get("_review")
    if not isinstance(review, dict) or review.get("complete") is not False or record.get("answer") != "accept":
        return [record]
    out = [record] if record.get("spans") else []  # a binary accept of nothing says nothing
    accepted = {(s["start"], s["end"], s["label"]) for s in record.get("spans", [])}
    in_hash = record.get("_input_hash")
    for span in review.get("rejected", []):
        if (span["start"], span["end"], span["label"]) in accepted:
            continue  # the reviewer now accepts what was rejected
        reject = {"text": record["text"], "tokens": record.get("tokens"), "spans": [span], "answer": "reject",
                  "_input_hash": in_hash, "_view_id": "ner"}  # fmt: skip
        if record.get("meta"):
            reject["meta"] = record["meta"]
        reject["_task_hash"] = task_hash(in_hash, "ner", [span]) if isinstance(in_hash, int) else None
        out.append({k: v for k, v in reject.items() if v is not None})
    return out


def _malformed(correction: Any) -> str | None:
    """Why a correction cannot be used (a reason of the reader's ``REASONS``), or None: its spans
    must be span dicts, and every record it stands for (:func:`clean_correction`) must pass the
    reader's checks (:func:`~sparse_ner.data.prodigy.check_record`)."""
    if not isinstance(correction, dict):
        return "malformed_json"
    spans = correction.get("spans", [])
    if not isinstance(spans, list) or not all(isinstance(sp, dict) for sp in spans):
        return "missing_field"
    return next((r for r in map(check_record, clean_correction(correction)) if r is not None), None)


def merge_corrections(
    original: Iterable[dict], corrections: Iterable[dict], key: Key = "input", drop_unmatched: bool = False
) -> tuple[list[dict], list[dict], Counter]:
    """``(merged records, replaced original records, counts)``."""
    counts: Counter = Counter()
    order: dict[Any, dict[Any, dict]] = {}  # key -> review task -> its last answer
    for rec in corrections:
        counts["corrections"] += 1
        reason = _malformed(rec)  # the reader's checks: a malformed correction replaces nothing
        if reason is not None:
            counts["malformed"] += 1
            counts[f"malformed: {reason}"] += 1
            log.warning("skipped a malformed correction (%s): %.120s", REASONS.get(reason, reason), json.dumps(rec))
            continue
        if rec.get("answer") == "ignore":
            counts["ignored"] += 1
            continue
        k = key_of(rec, key)
        if k is None:
            raise ValueError(f"a correction has no {'_task_hash' if key == 'task' else '_input_hash or text'}")
        tasks = order.setdefault(k, {})
        tkey = rec.get("_task_hash", len(tasks))
        if tkey in tasks:
            counts["superseded"] += 1
        tasks[tkey] = rec
    by_key = {k: [r for rec in tasks.values() for r in clean_correction(rec)] for k, tasks in order.items()}

    merged, replaced, written = [], [], set()
    for rec in original:
        k = key_of(rec, key)
        if k in by_key:
            replaced.append(rec)
            counts["replaced"] += 1
            if k not in written:
                merged.extend(by_key[k])
                written.add(k)
        else:
            merged.append(rec)
            counts["kept"] += 1
    unmatched = [k for k in by_key if k not in written]
    counts["unmatched"] = len(unmatched)
    if not drop_unmatched:
        for k in unmatched:
            merged.extend(by_key[k])
    counts["written"] = len(merged)
    return merged, replaced, counts


def merge(
    original: str | Path,
    corrections: str | Path,
    output: str | Path,
    key: Key = "input",
    drop_unmatched: bool = False,
    replaced: str | Path | None = None,
) -> Counter[str]:
    """Merge the corrections file into the original db-out file, writing ``output`` (``-``: stdout).

    Returns the counts of :func:`merge_corrections` (``replaced``, ``kept``, ``corrections``,
    ``unmatched`` keys, ``ignored``, ``superseded``, ``written``). ``replaced`` also writes the replaced
    original records there.
    """
    if key not in ("input", "task"):
        raise ValueError(f"key must be 'input' or 'task', not {key!r}")
    numbered = list(read_jsonl(original))
    originals = [r for _, r in numbered]
    fixes = [r for _, r in read_jsonl(corrections)]
    merged, old, counts = merge_corrections(originals, fixes, key, drop_unmatched)
    lines = _lines(original)  # kept records are written as their original line, byte for byte
    raw = {id(r): lines[n - 1] for n, r in numbered if lines is not None and n - 1 < len(lines)}
    with open_atomic(output, inputs=[original, corrections]) as out:
        for r in merged:
            out.write((raw[id(r)] if id(r) in raw else json.dumps(r, ensure_ascii=False)) + "\n")
    if replaced is not None:
        with open_atomic(replaced, inputs=[original, corrections, output]) as out:
            for r in old:
                out.write((raw[id(r)] if id(r) in raw else json.dumps(r, ensure_ascii=False)) + "\n")
    return counts


def _lines(path: str | Path) -> list[str] | None:
    """The lines of a file as text without their line ends (None for stdin, which cannot be re-read)."""
    if str(path) == "-":
        return None
    text = Path(path).read_bytes().decode("utf8", errors="replace")
    return text.removeprefix("\ufeff").split("\n")
