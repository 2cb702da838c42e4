"""``sparse-ner convert INPUT -o OUTPUT [--encoding ENC | --from FORMAT --to FORMAT]``: db-out JSONL <-> column files.

Parses, calls :func:`sparse_ner.data.convert.convert` and prints the reader's report (JSONL input)
and what was written, to stderr. ``--encoding`` is the tag encoding of the column file, as in every
other command; ``--from``/``--to`` name a format (``jsonl`` or an encoding) per side, for a column
file to a column file. ``OUTPUT`` may also be given second, without ``-o``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# sparse_ner.data.convert.FORMATS, spelled out so that --help imports no torch (tests/test_cli_help.py)
ENCODINGS = ("iob1", "iob2", "bio", "bioes", "bmes")
FORMATS = ("jsonl", *ENCODINGS)


def one_output(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """``-o OUTPUT``, or the older positional ``OUTPUT``; one of them, once."""
    if args.output and args.output_positional and args.output != args.output_positional:
        parser.error(f"two outputs: {args.output_positional} and -o {args.output}")
    output = args.output or args.output_positional
    if not output:
        parser.error("give the output file: -o OUTPUT (- for stdout)")
    return output


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="sparse-ner convert",
                                description="Convert between db-out JSONL and column files.")  # fmt: skip
    p.add_argument("input", help="input file, or - for stdin")
    p.add_argument("output_positional", nargs="?", help=argparse.SUPPRESS)
    p.add_argument("-o", "--output", help="output file, or - for stdout")
    p.add_argument("--encoding", choices=ENCODINGS,
                   help="tag encoding of the column file (the side that is not JSONL)")  # fmt: skip
    p.add_argument("--from", dest="src", choices=FORMATS, help="input format (default: from --encoding or a .jsonl extension)")
    p.add_argument("--to", dest="dst", choices=FORMATS, help="output format (default: from --encoding or a .jsonl extension)")
    p.add_argument("--labels", help="comma-separated labels to keep (JSONL input)")
    p.add_argument("--column", type=int, default=-1, help="tag column of a column file (default: last)")
    p.add_argument("--sep", choices=("space", "none"), help="join column tokens with a space or nothing")
    complete = p.add_mutually_exclusive_group()
    complete.add_argument("--complete", dest="complete", action="store_true", default=None)
    complete.add_argument("--sparse", dest="complete", action="store_false")
    p.add_argument("--skip-malformed", action="store_true", help="count malformed JSON lines instead of failing")
    args = p.parse_args(argv)
    args.output = one_output(p, args)
    if args.encoding:  # the column side's format: the side that is not (given or named) JSONL
        jsonl = [given == "jsonl" or (given is None and Path(path).suffix.lower() == ".jsonl")
                 for path, given in ((args.input, args.src), (args.output, args.dst))]  # fmt: skip
        if jsonl == [True, False] and args.dst in (None, args.encoding):
            args.dst = args.encoding
        elif jsonl == [False, True] and args.src in (None, args.encoding):
            args.src = args.encoding
        else:
            p.error("--encoding is the column file's encoding when the other side is JSONL; "
                    "from a column file to a column file give --from ENC --to ENC")  # fmt: skip
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    from sparse_ner.data.convert import convert, infer_format
    from sparse_ner.data.prodigy import ReadStats

    formats = []
    for path, given, flag in ((args.input, args.src, "--from"), (args.output, args.dst, "--to")):
        try:
            formats.append(infer_format(path, given))
        except ValueError as err:
            raise ValueError(f"{err}: give --encoding ENC (the column file's) or {flag} FORMAT") from None
    src, dst = formats
    stats = ReadStats()
    try:
        n = convert(args.input, args.output, src, dst, labels=args.labels.split(",") if args.labels else None,
                    complete=args.complete, column=args.column, sep={"space": " ", "none": ""}.get(args.sep),
                    on_error="skip" if args.skip_malformed else "raise", stats=stats)  # fmt: skip
    finally:  # a ValueError (DataError included) goes to sparse_ner.cli.run: one line, status 2
        if src == "jsonl" and stats.total:
            print(stats.report(), file=sys.stderr)
    what = "records" if dst == "jsonl" else "sentences"
    print(f"convert: wrote {n} {what} to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
