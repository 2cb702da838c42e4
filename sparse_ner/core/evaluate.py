"""Entity P/R/F1 of an exported model on gold data.

``python -m sparse_ner.evaluate MODEL GOLD [--encoding iob1] [--json]``: GOLD is JSONL with complete
annotations (every entity in ``spans``) or a column file in ``--encoding``. Prints precision, recall
and F1 per label and micro-averaged (or the whole result as JSON).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sparse_ner.data.read import read_any


def evaluate(model: str | Path, gold: str | Path, encoding: str = "iob1", batch_size: int = 64) -> dict[str, float]:
    """``EntityF1.compute()`` of the model's predictions on ``gold`` (floats)."""
    from sparse_ner.core.export import load
    from sparse_ner.core.metrics import EntityF1

    tagger = load(model)
    examples = read_any(gold, gold=True, column_encoding=encoding, name="gold")
    metric = EntityF1(tagger.labels)
    preds = tagger.tag(examples, batch_size=batch_size)
    metric.update([[s[:3] for s in spans] for spans in preds], [[s.key for s in ex.accepted] for ex in examples])
    return {k: float(v) for k, v in metric.compute().items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sparse_ner.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="exported model folder")
    parser.add_argument("gold", help="gold JSONL (complete annotations) or column file; - for stdin (JSONL)")
    parser.add_argument("--encoding", default="iob1", help="tag encoding of a column file (default: iob1)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = parser.parse_args(argv)
    result = evaluate(args.model, args.gold, args.encoding, args.batch_size)
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        from sparse_ner.core.metrics import format_report

        print(format_report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
