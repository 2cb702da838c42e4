"""``sparse-ner convert INPUT OUTPUT``: convert between db-out JSONL and column files.

Formats: ``jsonl`` (Prodigy db-out; inferred from a ``.jsonl`` extension) or a column-file tag
encoding ``iob1``, ``iob2``/``bio``, ``bioes``, ``bmes`` (give it with ``--from``/``--to``). ``-`` is
stdin/stdout. JSONL input is merged per text (:func:`read_examples`) and its read report is printed
to stderr. Writing a column file needs complete examples; sparse ``ner.teach`` answers cannot become
one (use ``--complete`` only if the accepts really are the full annotation).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Iterable

import srsly

from sparse_ner.data.columns import ENCODINGS, read_columns, write_columns
from sparse_ner.data.example import Example
from sparse_ner.data.prodigy import DataError, ReadStats, examples_to_tasks, read_examples

FORMATS = ("jsonl",) + ENCODINGS


def infer_format(path: str, given: str | None, flag: str) -> str:
    if given is not None:
        return given
    if Path(path).suffix.lower() == ".jsonl":
        return "jsonl"
    raise SystemExit(f"convert: cannot infer the format of {path!r}; give {flag} one of {', '.join(FORMATS)}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="sparse-ner convert", description=__doc__.split("\n")[0])
    p.add_argument("input", help="input file, or - for stdin")
    p.add_argument("output", help="output file, or - for stdout")
    p.add_argument("--from", dest="src", choices=FORMATS, help="input format (default: from extension)")
    p.add_argument("--to", dest="dst", choices=FORMATS, help="output format (default: from extension)")
    p.add_argument("--labels", help="comma-separated labels to keep (JSONL input)")
    p.add_argument("--column", type=int, default=-1, help="tag column of a column file (default: last)")
    p.add_argument("--sep", choices=("space", "none"), help="join column tokens with a space or nothing")
    complete = p.add_mutually_exclusive_group()
    complete.add_argument("--complete", dest="complete", action="store_true", default=None)
    complete.add_argument("--sparse", dest="complete", action="store_false")
    p.add_argument("--skip-malformed", action="store_true", help="count malformed JSON lines instead of failing")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    src = infer_format(args.input, args.src, "--from")
    dst = infer_format(args.output, args.dst, "--to")
    examples: Iterable[Example]
    try:
        if src == "jsonl":
            stats = ReadStats()
            labels = args.labels.split(",") if args.labels else None
            on_error = "skip" if args.skip_malformed else "raise"
            examples = read_examples(args.input, labels, args.complete, stats, on_error=on_error)
            print(stats.report(), file=sys.stderr)
        else:
            sep = {"space": " ", "none": "", None: None}[args.sep]
            examples = read_columns(args.input, src, args.column, sep)
        if dst == "jsonl":
            srsly.write_jsonl(args.output, examples_to_tasks(examples))
        else:
            n = write_columns(examples, args.output, dst)
            print(f"convert: wrote {n} sentences to {args.output}", file=sys.stderr)
    except (DataError, ValueError) as err:
        print(f"convert: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
