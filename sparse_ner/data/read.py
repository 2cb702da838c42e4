"""Read any supported file into examples: db-out / gold JSONL (merged per text) or a column file."""

from __future__ import annotations

import contextlib
import itertools
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from sparse_ner.data.example import Example


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def is_jsonl(path: str | Path) -> bool:
    return str(path) == "-" or Path(path).suffix.lower() in (".jsonl", ".json")


def read_any(
    path: str | Path,
    *,
    gold: bool,
    complete: bool | None = None,
    labels: Sequence[str] | None = None,
    max_records: int | None = None,
    column_encoding: str = "iob1",
    name: str = "",
    report: Callable[[str], None] | None = None,
) -> list[Example]:
    """Examples from a db-out/gold JSONL file or a column file; prints the reader's report.

    ``gold`` marks dev/test data: every JSONL example is complete. ``max_records`` keeps the first N
    JSONL records (before merging by ``_input_hash``) or the first N column-file sentences.
    ``report`` prints the reader's report (default: to stderr).
    """
    report = report or _stderr
    if is_jsonl(path):
        from sparse_ner.data.prodigy import ReadStats, read_examples

        stats = ReadStats()
        with _first_records(path, max_records) as source:
            examples = read_examples(source, labels=labels, complete=True if gold else complete, stats=stats)
        unknown = stats.counts["unknown_label"] + stats.span_counts["unknown_label"]
        known = f"\n{unknown} record(s)/span(s) had a label outside the label set {', '.join(labels)}" if unknown and labels else ""
        report(f"[{name or path}] {path}\n{stats.report()}{known}")
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
