"""``python -m sparse_ner.merge``: the command-line entry kept under this spelling (see ``sparse-ner merge --help``)."""

import sys

from sparse_ner.cli import entry

if __name__ == "__main__":
    sys.exit(entry("merge"))
