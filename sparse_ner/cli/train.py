"""``python -m sparse_ner.train --config configs/X.yaml [--section.option VALUE ...]`` (``sparse-ner train``).

The LightningCLI command line of :mod:`sparse_ner.training.train`: every option can be set in the
YAML or overridden on the command line (``--print_config`` shows them all). Parses, calls
:func:`~sparse_ner.training.train.run` and prints the best checkpoint, the dev/test reports and the
exported model folder (rank 0 only).
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from sparse_ner.core.metrics import format_report
    from sparse_ner.training.train import run, tagger_cli

    result = run(tagger_cli(argv))  # argv None: sys.argv
    if result.global_rank != 0:
        return 0
    if result.checkpoint is not None:
        score = "" if result.best_val_f1 is None else f" (val_f1 {result.best_val_f1:.4f})"
        print(f"best checkpoint: {result.checkpoint}{score}")
    for evaluation in result.evaluations:
        print(f"\n{evaluation.split}: {evaluation.path}\n{format_report(evaluation.result)}")
    print(f"\nexported model: {result.model}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
