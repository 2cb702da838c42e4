"""``python -m sparse_ner.review DATA -o REVIEW.jsonl (--model MODEL | --config CFG [--folds K])``.

Rank training examples hardest first (:mod:`sparse_ner.review.score`), write them as Prodigy review
tasks (:mod:`sparse_ner.review.tasks`) and an HTML report (:mod:`sparse_ner.review.report`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from sparse_ner.data.example import Example
from sparse_ner.review.score import DEFAULT_SCORE, SCORES, rank, score_examples
from sparse_ner.review.tasks import write_tasks


def read_data(path: str | Path, labels: Sequence[str] | None = None, column_encoding: str = "iob1") -> list[Example]:
    """Examples of a db-out JSONL file (merged per text) or a column file; the reader's report to stderr."""
    from sparse_ner.data.read import read_any

    return read_any(path, gold=False, labels=labels, column_encoding=column_encoding, name="review")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sparse_ner.review",
        description="Rank training examples hardest first for review (Prodigy spans_manual JSONL + HTML report).",
        epilog="With --config, unknown --section.option arguments are passed to training "
               "(e.g. --trainer.max_epochs=5).",
    )  # fmt: skip
    parser.add_argument("data", help="db-out JSONL (binary or complete answers) or a column file")
    parser.add_argument("-o", "--output", required=True, help="review JSONL, hardest first (- for stdout)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="score with this exported model (in-sample when it was trained on DATA)")
    source.add_argument("--config", help="training YAML: train --folds models and score out-of-fold")
    parser.add_argument("--folds", type=int, default=None, help="out-of-fold models (default: 3)")
    parser.add_argument("--score", choices=SCORES, default=DEFAULT_SCORE, help=f"ranking score (default {DEFAULT_SCORE})")
    parser.add_argument("--top", type=int, default=None, help="write only the N hardest examples")
    parser.add_argument("--html", default=None, help="HTML report path (default: OUTPUT with .html)")
    parser.add_argument("--report-top", type=int, default=50, help="examples shown in the HTML report")
    parser.add_argument("--column-encoding", default="iob1", help="tag encoding of a column-file DATA")
    parser.add_argument("--models-dir", default=None, help="keep the fold models here (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=0, help="fold assignment seed")
    parser.add_argument("--batch-size", type=int, default=64)
    args, extra = parser.parse_known_args(argv)
    if extra and not args.config:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.model and args.folds is not None:
        parser.error("--folds needs --config (a model given with --model is not retrained)")

    if args.model:
        from sparse_ner.core.export import load

        tagger = load(args.model)
        examples = read_data(args.data, tagger.labels, args.column_encoding)
        reviews = score_examples(tagger, examples, args.batch_size)
        source_note = f"model {args.model} (in-sample if it was trained on this data)"
    else:
        from sparse_ner.review.folds import out_of_fold

        examples = read_data(args.data, None, args.column_encoding)
        folds = args.folds if args.folds is not None else DEFAULT_FOLDS
        reviews = out_of_fold(examples, args.config, folds, extra, models_dir=args.models_dir, seed=args.seed,
                              batch_size=args.batch_size)  # fmt: skip
        source_note = f"{folds}-fold out-of-fold models trained with {args.config}"
    if not reviews:
        print("no usable examples in the data", file=sys.stderr)
        return 1
    write_tasks(reviews, args.output, args.score, args.top)

    from sparse_ner.review.report import html_report, summary

    ranked = rank(reviews, args.score)
    print(summary(ranked, args.score, source=source_note), file=sys.stderr)
    if args.output != "-" or args.html:
        html = Path(args.html) if args.html else Path(args.output).with_suffix(".html")
        html.write_text(html_report(ranked, args.score, top=args.report_top, source=source_note), encoding="utf8")
        print(f"\nreview tasks: {args.output}\nHTML report: {html}", file=sys.stderr)
    return 0


DEFAULT_FOLDS = 3  # scripts/bench_review.py: best AUPRC of K in {2, 3} under the 3x-cost budget (K=5 costs >= 4x)


if __name__ == "__main__":
    sys.exit(main())
