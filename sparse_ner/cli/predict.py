"""``python -m sparse_ner.predict MODEL INPUT.jsonl -o OUT.jsonl`` (``sparse-ner predict``).

Parses and calls :func:`sparse_ner.core.predict.predict_file`: each task is written back with
``tokens`` and the predicted ``spans``, each with ``score`` = P(span is an entity).
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sparse_ner.predict", description="Tag texts with an exported model.")
    parser.add_argument("model", help="exported model folder")
    parser.add_argument("input", help="JSONL tasks with 'text' (and optionally 'tokens'); - for stdin")
    parser.add_argument("-o", "--output", default="-", help="output JSONL (default: - for stdout)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    from sparse_ner.core.predict import predict_file
    from sparse_ner.core.progress import wanted

    progress = wanted(args.no_progress)
    predict_file(args.model, args.input, args.output, args.batch_size, device=args.device, progress=progress)
    return 0


if __name__ == "__main__":
    sys.exit(main())
