"""Read any supported file into examples: db-out / gold JSONL (merged per text) or a column file."""

from __future__ import annotations

import contextlib
import itertools
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Sequence

from sparse_ner.data.example import Example


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def is_jsonl(path: str | Path) -> bool:
    return str(path) == "-" or Path(path).suffix.lower() in (".jsonl", ".json")


def read_any(
    path: str | Path,
    *,
    gold: bool | Literal["auto"],
    complete: bool | None = None,
    labels: Sequence[str] | None = None,
    max_records: int | None = None,
    column_encoding: str = "iob1",
    name: str = "",
    report: Callable[[str], None] | None = None,
) -> list[Example]:
    """Examples from a db-out/gold JSONL file or a column file; prints the reader's report.

    ``gold`` marks dev/test data: every JSONL example is complete. ``"auto"`` (evaluation data that
    may be binary answers): a file with any binary task (``_view_id`` ``ner`` or a rejected answer) is
    read as answers, each text complete only if it has a manual annotation (see :func:`is_binary`);
    any other JSONL file is complete gold. ``max_records`` keeps the first N
    JSONL records (before merging by ``_input_hash``) or the first N column-file sentences.
    ``report`` prints the reader's report (default: to stderr).
    """
    report = report or _stderr
    if is_jsonl(path):
        from sparse_ner.data.prodigy import ReadStats, read_examples

        stats = ReadStats()
        forced = complete if gold is False else (True if gold is True else None)
        with _first_records(path, max_records) as source:
            examples = read_examples(source, labels=labels, complete=forced, stats=stats)
        unknown = stats.counts["unknown_label"] + stats.span_counts["unknown_label"]
        known = f"\n{unknown} record(s)/span(s) had a label outside the label set {', '.join(labels)}" if unknown and labels else ""
        kind = ""
        if gold == "auto":
            if is_binary(examples):
                binary = sum(not ex.complete for ex in examples)
                kind = (f"\nbinary answers: {binary} of {len(examples)} texts have no complete annotation; they are "
                        "scored on their answers only (accepted spans found, rejected spans avoided), not as gold")  # fmt: skip
            else:
                for ex in examples:
                    ex.complete = True
        report(f"[{name or path}] {path}\n{stats.report()}{known}{kind}")
        return examples
    from sparse_ner.data.columns import read_columns

    examples = list(itertools.islice(read_columns(path, encoding=column_encoding), max_records))
    if labels is not None:  # keep only the requested labels (the others become O)
        keep = set(labels)
        for ex in examples:
            ex.accepted = [s for s in ex.accepted if s.label in keep]
    n_spans = sum(len(ex.accepted) for ex in examples)
    report(f"[{name or path}] {path}: {len(examples)} complete sentences, {n_spans} entities ({column_encoding})")
    return examples


def read_texts(
    path: str | Path,
    *,
    skip: Sequence[Example] = (),
    max_texts: int | None = None,
    name: str = "",
    report: Callable[[str], None] | None = None,
) -> list[Example]:
    """Unanswered texts from a JSONL file of tasks (a Prodigy source: ``text``, optionally ``tokens``
    and ``_input_hash``; of a db-out file only the texts are read): one :class:`Example` without spans
    per distinct text, in file order, at most ``max_texts``. The texts of ``skip`` (matched by
    ``_input_hash`` or by text) and repeats are left out, and so is a record without a non-empty
    ``text``; each is counted in the report. A line that is not a JSON object, or tokens that do not
    fit their text, raise :class:`~sparse_ner.data.io.DataError` naming the line.
    ``report`` prints the counts (default: to stderr)."""
    from sparse_ner.data.hashes import set_hashes
    from sparse_ner.data.io import read_jsonl
    from sparse_ner.data.prodigy import parse_tokens

    if not is_jsonl(path):
        raise ValueError(f"{path}: unanswered texts are read from JSONL (one task with a 'text' per line)")
    report = report or _stderr
    hashes = {ex.input_hash for ex in skip if ex.input_hash is not None}
    texts = {ex.text for ex in skip}
    seen: set[int] = set()  # input hashes of the texts kept
    out: list[Example] = []
    answered = repeated = empty = 0
    capped = ""
    for lineno, task in read_jsonl(path):
        if max_texts is not None and len(out) >= max_texts:
            capped = f"; stopped at max {max_texts}"
            break
        text = task.get("text")
        if not isinstance(text, str) or not text.strip():
            empty += 1
            continue
        key = set_hashes(dict(task))["_input_hash"]
        if key in hashes or text in texts:
            answered += 1
            continue
        if key in seen:
            repeated += 1
            continue
        seen.add(key)
        tokens = parse_tokens(task, where=f"{path}:{lineno}")
        if not tokens:  # nothing the tokenizer keeps
            empty += 1
            continue
        out.append(Example(text, tokens, input_hash=key))
    report(f"[{name or path}] {path}: {len(out)} unanswered texts (left out: {answered} already in the training or "
           f"evaluation data, {repeated} repeated, {empty} without text{capped})")  # fmt: skip
    return out


def is_binary(examples: Sequence[Example]) -> bool:
    """Whether examples read from JSONL hold binary answers: some record is a ``ner`` (teach) task or
    a rejected answer. A file of accepted records without ``_view_id`` is taken for complete gold
    (the format ``sparse-ner convert`` and most gold exports write)."""
    return any(task.get("_view_id") == "ner" or task.get("answer") == "reject" or ex.rejected
               for ex in examples for task in ex.tasks)  # fmt: skip


@contextlib.contextmanager
def _first_records(path: str | Path, max_records: int | None) -> Iterator[str | Path]:
    """``path`` itself, or a temporary copy of its first ``max_records`` non-blank lines."""
    if max_records is None:
        yield path
        return
    with tempfile.TemporaryDirectory() as tmp, open_text(path) as f:
        head = Path(tmp) / "head.jsonl"
        lines = itertools.islice((line for line in f if line.strip()), max_records)
        head.write_text("".join(line if line.endswith("\n") else line + "\n" for line in lines), encoding="utf8")
        yield head


@contextlib.contextmanager
def open_text(path: str | Path) -> Iterator[Any]:
    """Open a text file for reading; ``-`` is stdin (left open)."""
    if str(path) == "-":
        yield sys.stdin
    else:
        with open(path, encoding="utf8") as f:
            yield f
