"""``python -m sparse_ner.evaluate MODEL GOLD [--encoding iob1] [--json]`` (``sparse-ner evaluate``).

Parses, calls :func:`sparse_ner.core.evaluate.evaluate` and prints precision, recall and F1 per label
and micro-averaged (or the whole result as one JSON object).
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sparse_ner.evaluate",
                                     description="Entity P/R/F1 of an exported model on gold data; on db-out binary "
                                                 "answers, what the answers can say (detected, reported as such).")  # fmt: skip
    parser.add_argument("model", help="exported model folder")
    parser.add_argument("gold", help="gold JSONL (complete annotations), db-out JSONL of binary answers, "
                        "or a column file; - for stdin (JSONL)")
    parser.add_argument("--encoding", default="iob1", help="tag encoding of a column file (default: iob1)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (shown where stderr is a terminal)")
    args = parser.parse_args(argv)

    from sparse_ner.core.evaluate import evaluate
    from sparse_ner.core.metrics import format_report
    from sparse_ner.core.progress import wanted

    result = evaluate(args.model, args.gold, args.encoding, args.batch_size, progress=wanted(args.no_progress))
    print(json.dumps(result, indent=2, sort_keys=True) if args.json else format_report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
