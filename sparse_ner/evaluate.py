"""``python -m sparse_ner.evaluate``: the command-line entry kept under this spelling (see ``sparse-ner evaluate --help``)."""

import sys

from sparse_ner.cli.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
