"""``python -m sparse_ner.review DATA -o REVIEW.jsonl (--model MODEL | --config CFG [--folds K])``.

Parses, calls :func:`sparse_ner.review.run.review` (rank training examples hardest first, write them
as Prodigy review tasks and an HTML report) and prints the summary. With ``--config``, unknown
``--section.option[=]VALUE`` arguments become the ``training`` section overrides (values read as YAML,
as the training command line reads them).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

# sparse_ner.review.score's, spelled out so that --help imports no torch (tests/test_cli_help.py)
SCORES = ("span_odds", "worst_span", "loss", "loss_per_span", "margin", "f1", "token", "label_token", "combined")
DEFAULT_SCORE = "combined"


def training_overrides(extra: list[str]) -> dict[str, Any]:
    """``["--trainer.max_epochs=5", "--model.lr", "1e-3"]`` -> ``{"trainer": {"max_epochs": 5}, "model": {"lr": "1e-3"}}``."""
    import inspect

    import yaml

    from sparse_ner.training.train import fit

    sections = [name for name, p in inspect.signature(fit).parameters.items() if p.kind is p.KEYWORD_ONLY]
    out: dict[str, Any] = {}
    args = iter(extra)
    for arg in args:
        if not arg.startswith("--"):
            raise ValueError(f"expected --section.option VALUE, got {arg!r}")
        key, eq, value = arg[2:].partition("=")
        if not eq:
            value = next(args, None)
            if value is None:
                raise ValueError(f"{arg} needs a value")
        *path, leaf = key.split(".")
        if (path[0] if path else leaf) not in sections:
            raise ValueError(f"unknown training option {arg!r}: its section is one of {', '.join(sections)}")
        node = out
        for name in path:
            node = node.setdefault(name, {})
        node[leaf] = yaml.safe_load(value)
    return out


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
    parser.add_argument("--encoding", default="iob1", help="tag encoding of a column-file DATA (default iob1)")
    parser.add_argument("--models-dir", default=None, help="keep the fold models here (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=0, help="fold assignment seed")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (shown where stderr is a terminal)")
    args, extra = parser.parse_known_args(argv)
    if extra and not args.config:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.model and args.folds is not None:
        parser.error("--folds needs --config (a model given with --model is not retrained)")
    try:
        training = training_overrides(extra)
    except ValueError as err:
        parser.error(str(err))

    from jsonargparse import ArgumentError

    from sparse_ner.core.progress import wanted
    from sparse_ner.review.report import summary
    from sparse_ner.review.run import review

    try:
        result = review(args.data, args.output, model=args.model, config=args.config, folds=args.folds,
                        score=args.score, top=args.top, html=args.html, report_top=args.report_top,
                        column_encoding=args.encoding, training=training, models_dir=args.models_dir,
                        seed=args.seed, batch_size=args.batch_size, progress=wanted(args.no_progress))  # fmt: skip
    except ArgumentError as err:  # a training override the config's typed options refuse
        parser.error(f"training options: {err}")
    except ValueError as err:
        print(f"review: {err}", file=sys.stderr)
        return 1
    print(summary(result.ranked, result.score, source=result.source), file=sys.stderr)
    if result.html is not None:
        print(f"\nreview tasks: {result.tasks}\nHTML report: {result.html}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
