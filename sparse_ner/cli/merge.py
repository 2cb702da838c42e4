"""``python -m sparse_ner.merge ORIGINAL.jsonl CORRECTIONS.jsonl -o MERGED.jsonl [--key input|task]``.

Parses, calls :func:`sparse_ner.review.merge.merge` (corrections replace the original answers on
their texts, everything else is kept as it was) and prints the counts.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sparse_ner.merge",
                                     description="Replace original answers by reviewed corrections.")  # fmt: skip
    parser.add_argument("original", help="the original db-out JSONL")
    parser.add_argument("corrections", help="the corrections (db-out of the review dataset)")
    parser.add_argument("-o", "--output", required=True, help="merged JSONL (- for stdout)")
    parser.add_argument("--key", choices=("input", "task"), default="input",
                        help="match by _input_hash (default) or _task_hash")  # fmt: skip
    parser.add_argument("--drop-unmatched", action="store_true", help="do not append unmatched corrections")
    parser.add_argument("--replaced", default=None, help="also write the replaced original records here")
    args = parser.parse_args(argv)

    from sparse_ner.review.merge import merge

    counts = merge(args.original, args.corrections, args.output, key=args.key, drop_unmatched=args.drop_unmatched,
                   replaced=args.replaced)  # fmt: skip
    unmatched = "dropped" if args.drop_unmatched else "appended"
    print(f"originals: {counts['replaced'] + counts['kept']} records: {counts['replaced']} replaced, "
          f"{counts['kept']} kept\n"
          f"corrections: {counts['corrections']} records: {counts['unmatched']} keys unmatched ({unmatched}), "
          f"{counts['ignored']} ignored, {counts['superseded']} superseded\n"
          f"written: {counts['written']} records to {args.output}", file=sys.stderr)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
