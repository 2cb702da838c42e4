"""``python -m sparse_ner.review``: rank examples hardest first (see :mod:`sparse_ner.review.score`)."""

import sys

from sparse_ner.cli import entry

if __name__ == "__main__":
    sys.exit(entry("review"))
