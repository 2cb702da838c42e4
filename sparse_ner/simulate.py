"""``python -m sparse_ner.simulate``: the command-line entry kept under this spelling (see ``sparse-ner simulate --help``)."""

import sys

from sparse_ner.cli import entry

if __name__ == "__main__":
    sys.exit(entry("simulate"))
