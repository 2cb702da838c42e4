"""``sparse-ner to-spacy MODEL OUT_DIR [--lang en] [--name ner]``: an exported model as a spaCy pipeline folder.

Parses and calls :func:`sparse_ner.integrations.spacy.write_pipeline`; ``spacy.load(OUT_DIR)`` then
works wherever ``sparse_ner`` is installed (the component's factory is a ``spacy_factories`` entry point).
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sparse-ner to-spacy",
                                     description="Turn an exported model into a spaCy pipeline folder.")  # fmt: skip
    parser.add_argument("model", help="exported model folder (sparse-ner train's export_dir)")
    parser.add_argument("out_dir", help="the spaCy pipeline folder to write (spacy.load(OUT_DIR))")
    parser.add_argument("--lang", default="en", help="spaCy language of the tokenizer, as in spacy.blank(LANG) "
                                                     "(default: en; zh: one token per character)")  # fmt: skip
    parser.add_argument("--name", default="ner", help="name of the component in the pipeline (default: ner)")
    parser.add_argument("--spans-key", default=None,
                        help="doc.spans key of the scored spans (default: sparse_ner)")  # fmt: skip
    parser.add_argument("--force", action="store_true", help="replace OUT_DIR when it exists and is not empty")
    args = parser.parse_args(argv)

    from sparse_ner.integrations.spacy import SPANS_KEY, write_pipeline

    out = write_pipeline(args.model, args.out_dir, lang=args.lang, name=args.name,
                         spans_key=args.spans_key or SPANS_KEY, force=args.force)  # fmt: skip
    print(f"to-spacy: wrote {out} (spacy.load({str(out)!r}); component {args.name!r})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
