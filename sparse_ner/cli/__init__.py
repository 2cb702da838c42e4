"""The ``sparse-ner`` console script: ``sparse-ner SUBCOMMAND [ARGS...]``.

Each subcommand is a module of this package with a ``main(argv)`` function that parses ``argv``,
calls the library function of its wing and prints; the ``python -m sparse_ner.NAME`` shims call the
same ``main``. Library code never calls a ``main``: it calls :func:`~sparse_ner.training.train.fit`,
:func:`~sparse_ner.review.run.review`, :func:`~sparse_ner.review.merge.merge`, ...
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Callable

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "train": ("sparse_ner.cli.train", "train a tagger from a YAML config (LightningCLI)"),
    "predict": ("sparse_ner.cli.predict", "tag a JSONL file with an exported model"),
    "export": ("sparse_ner.cli.export", "make a model folder from a training checkpoint"),
    "to-spacy": ("sparse_ner.cli.to_spacy", "turn an exported model into a spaCy pipeline folder"),
    "evaluate": ("sparse_ner.cli.evaluate", "entity P/R/F1 of a model on gold JSONL or a column file"),
    "convert": ("sparse_ner.cli.convert", "convert between db-out JSONL and column files"),
    "simulate-teach": ("sparse_ner.cli.simulate_teach", "turn a gold corpus into simulated ner.teach answers"),
    "review": ("sparse_ner.cli.review", "rank training examples hardest first for review (Prodigy JSONL + HTML)"),
    "merge": ("sparse_ner.cli.merge", "merge reviewed corrections back into the original answers"),
    "simulate": ("sparse_ner.cli.simulate", "simulate the annotation loop and compare selection strategies"),
}


def usage() -> str:
    lines = ["usage: sparse-ner SUBCOMMAND [ARGS...] [--verbose] | sparse-ner --version", "", "subcommands:"]
    lines += [f"  {name:<15} {help_}" for name, (_, help_) in SUBCOMMANDS.items()]
    return "\n".join(lines)


# ordinary mistakes (a missing or mistyped file, a folder given as a file, a malformed line, a bad
# value): one line saying what is wrong, no traceback unless --verbose or SPARSE_NER_DEBUG=1
USER_ERRORS: tuple[type[BaseException], ...] = (FileNotFoundError, IsADirectoryError, NotADirectoryError,
                                                 PermissionError, ValueError)  # fmt: skip


def run(name: str, command: Callable[[list[str]], int | None], argv: list[str]) -> int:
    """Run a subcommand's ``main(argv)``; an ordinary mistake prints ``sparse-ner NAME: error: ...``
    on one line and returns 2 (``--verbose`` or ``SPARSE_NER_DEBUG=1``: the traceback as well)."""
    verbose = "--verbose" in argv or os.environ.get("SPARSE_NER_DEBUG") == "1"
    argv = [a for a in argv if a != "--verbose"]
    try:
        return command(argv) or 0
    except USER_ERRORS as err:
        if verbose:
            raise
        message = str(err)
        print(f"sparse-ner {name}: error: {message.splitlines()[0] if message else type(err).__name__}"
              " (--verbose for the traceback)", file=sys.stderr)  # fmt: skip
        return 2


def entry(name: str) -> int:
    """``python -m sparse_ner.NAME`` (the shims): the same as ``sparse-ner NAME``."""
    return main([name, *sys.argv[1:]])


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from importlib.metadata import version

        print(f"sparse-ner {version('sparse-ner')}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"sparse-ner: unknown subcommand {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    return run(name, module.main, rest)


if __name__ == "__main__":
    sys.exit(main())
