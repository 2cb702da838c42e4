"""``python -m sparse_ner SUBCOMMAND``: the same as the ``sparse-ner`` console script."""

import sys

from sparse_ner.cli import main

if __name__ == "__main__":
    sys.exit(main())
