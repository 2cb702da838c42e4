"""``python -m sparse_ner.predict``: the command-line entry kept under this spelling (see ``sparse-ner predict --help``)."""

import sys

from sparse_ner.cli.predict import main

if __name__ == "__main__":
    sys.exit(main())
