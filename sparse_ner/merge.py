"""``python -m sparse_ner.merge``: the command-line entry kept under this spelling (see ``sparse-ner merge --help``)."""

import sys

from sparse_ner.cli.merge import main

if __name__ == "__main__":
    sys.exit(main())
