"""``python -m sparse_ner.train``: the command-line entry kept under this spelling (see ``sparse-ner train --help``)."""

import sys

from sparse_ner.cli import entry

if __name__ == "__main__":
    sys.exit(entry("train"))
