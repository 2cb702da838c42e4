"""``python -m sparse_ner.simulate``: the command-line entry kept under this spelling (see ``sparse-ner simulate --help``)."""

import sys

from sparse_ner.cli.simulate import main

if __name__ == "__main__":
    sys.exit(main())
