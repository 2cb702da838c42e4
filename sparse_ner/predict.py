"""``python -m sparse_ner.predict``: the command-line entry kept under this spelling (see ``sparse-ner predict --help``)."""

import sys

from sparse_ner.cli import entry

if __name__ == "__main__":
    sys.exit(entry("predict"))
