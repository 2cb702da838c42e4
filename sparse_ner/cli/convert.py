"""``sparse-ner convert INPUT OUTPUT [--from FORMAT] [--to FORMAT]``: db-out JSONL <-> column files.

Parses, calls :func:`sparse_ner.data.convert.convert` and prints the reader's report (JSONL input)
and what was written, to stderr.
"""

from __future__ import annotations

import argparse
import sys

from sparse_ner.data.convert import FORMATS


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="sparse-ner convert",
                                description="Convert between db-out JSONL and column files.")  # fmt: skip
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
    from sparse_ner.data.convert import convert, infer_format
    from sparse_ner.data.prodigy import ReadStats

    args = parse_args(argv)
    formats = []
    for path, given, flag in ((args.input, args.src, "--from"), (args.output, args.dst, "--to")):
        try:
            formats.append(infer_format(path, given))
        except ValueError as err:
            raise SystemExit(f"convert: {err}: give {flag}") from None
    src, dst = formats
    stats = ReadStats()
    try:
        n = convert(args.input, args.output, src, dst, labels=args.labels.split(",") if args.labels else None,
                    complete=args.complete, column=args.column, sep={"space": " ", "none": ""}.get(args.sep),
                    on_error="skip" if args.skip_malformed else "raise", stats=stats)  # fmt: skip
    except ValueError as err:  # DataError included
        print(f"convert: {err}", file=sys.stderr)
        return 1
    finally:
        if src == "jsonl" and stats.total:
            print(stats.report(), file=sys.stderr)
    what = "records" if dst == "jsonl" else "sentences"
    print(f"convert: wrote {n} {what} to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
