"""Convert between db-out JSONL and column files: :func:`convert`.

Formats (:data:`FORMATS`): ``jsonl`` (Prodigy db-out; inferred from a ``.jsonl`` extension) or a
column-file tag encoding ``iob1``, ``iob2``/``bio``, ``bioes``, ``bmes``. ``-`` is stdin/stdout. JSONL
input is merged per text (:func:`~sparse_ner.data.prodigy.read_examples`). Writing a column file
needs complete examples; sparse ``ner.teach`` answers cannot become one (read them with
``complete=True`` only if the accepts really are the full annotation). The command line is
``sparse-ner convert INPUT OUTPUT [--from ...] [--to ...]`` (:mod:`sparse_ner.cli.convert`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Literal, Sequence

from sparse_ner.data.columns import ENCODINGS, read_columns, write_columns
from sparse_ner.data.example import Example
from sparse_ner.data.io import write_jsonl
from sparse_ner.data.prodigy import ReadStats, examples_to_tasks, read_examples

FORMATS = ("jsonl",) + ENCODINGS


def infer_format(path: str | Path, given: str | None = None) -> str:
    """``given``, else ``jsonl`` for a ``.jsonl`` file; ``ValueError`` when there is nothing to go by."""
    if given is not None:
        if given not in FORMATS:
            raise ValueError(f"unknown format {given!r}; expected one of {', '.join(FORMATS)}")
        return given
    if Path(path).suffix.lower() == ".jsonl":
        return "jsonl"
    raise ValueError(f"cannot infer the format of {str(path)!r}; expected one of {', '.join(FORMATS)}")


def convert(
    input: str | Path,
    output: str | Path,
    src: str | None = None,
    dst: str | None = None,
    *,
    labels: Sequence[str] | None = None,
    complete: bool | None = None,
    column: int = -1,
    sep: str | None = None,
    on_error: Literal["raise", "skip"] = "raise",
    stats: ReadStats | None = None,
) -> int:
    """Convert ``input`` (format ``src``) to ``output`` (format ``dst``); return how many records or
    sentences were written. Formats are inferred from a ``.jsonl`` extension when not given.

    JSONL input: ``labels`` keeps only those labels, ``complete`` forces examples complete or sparse,
    ``on_error="skip"`` counts malformed lines instead of raising, and ``stats`` (a
    :class:`~sparse_ner.data.prodigy.ReadStats`) receives the reader's counts. Column input: the tag
    ``column`` (default: last) and ``sep``, the string that joins tokens into the text (default: a
    space). Raises ``ValueError`` (a :class:`~sparse_ner.data.io.DataError` for a malformed file) on
    input that cannot be converted, e.g. sparse examples to a column file.
    """
    src, dst = infer_format(input, src), infer_format(output, dst)
    examples: Iterable[Example]
    if src == "jsonl":
        examples = read_examples(input, labels, complete, ReadStats() if stats is None else stats, on_error=on_error)
    else:
        examples = read_columns(input, src, column, sep)
    if dst == "jsonl":
        return write_jsonl(examples_to_tasks(examples), output, inputs=[input])
    return write_columns(examples, output, dst, inputs=[input])
