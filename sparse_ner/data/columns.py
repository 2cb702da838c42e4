"""Read and write CoNLL-style column files (one token per line, the tag in a column).

Decisions:

- Columns are split on TAB when the line has one (tokens may then contain spaces), else on runs of
  whitespace. The token is the first column, the tag is ``column`` (default the last).
- A blank line, or a line of whitespace only (WNUT-17 uses a lone TAB), ends a sentence.
- A ``-DOCSTART-`` line starts a new document and is not a token. :func:`read_documents` groups
  sentences by document (a file without ``-DOCSTART-`` is one document).
- The text is the tokens joined by ``sep``. With ``sep=None`` it is ``""`` for a sentence whose tokens
  are all one character long and include a CJK character (character-level Chinese corpora, where
  digits and Latin letters are single-character tokens too), else ``" "``. Offsets are exact.
- Every example is gold: ``complete=True``, ``accepted`` = spans decoded from the tags with
  :func:`decode_tags` (lenient, like conlleval), ``tasks=[]``.
- A line with a single column, or a tag that is malformed or has a prefix foreign to the encoding
  (``B I`` for IOB; ``B I M E S L U`` for BIOES/BMES), raises :class:`DataError` naming file and line.
- :func:`write_columns` writes ``token tag`` lines and refuses sparse examples: unannotated tokens
  have no tag to write.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterable, Iterator

from sparse_ner.data.example import Example, Span, Token
from sparse_ner.data.io import DataError, open_atomic
from sparse_ner.data.tokenize import is_cjk
from sparse_ner.tags import decode_tags, encode_spans, split_tag

ENCODINGS = ("iob1", "iob2", "bio", "bioes", "bmes")
DOCSTART = "-DOCSTART-"
PREFIXES = {"iob1": "BI", "iob2": "BI", "bio": "BI", "bioes": "BIMESLU", "bmes": "BIMESLU"}


def _check_encoding(encoding: str) -> str:
    enc = encoding.lower()
    if enc not in ENCODINGS:
        raise ValueError(f"unknown tag encoding {encoding!r}; expected one of {ENCODINGS}")
    return enc


def make_example(words: list[str], tags: list[str], encoding: str = "iob2", sep: str | None = None) -> Example:
    """A complete gold :class:`Example` from tokens and their tags."""
    if sep is None:
        sep = "" if all(len(w) == 1 for w in words) and any(is_cjk(w) for w in words) else " "
    tokens, pos = [], 0
    for i, w in enumerate(words):
        last = i == len(words) - 1
        tokens.append(Token(w, pos, pos + len(w), ws=bool(sep) and not last and sep.isspace()))
        pos += len(w) + (0 if last else len(sep))
    text = sep.join(words)
    spans = [
        Span(tokens[s].start, tokens[e].end, s, e, label) for s, e, label in decode_tags(tags, encoding)
    ]
    return Example(text=text, tokens=tokens, accepted=spans, complete=True)


def _encoding_hint(prefix: str) -> str:
    """What to do about a tag prefix the given encoding does not have (the file is in another one)."""
    likely = "bmes" if prefix == "M" else "bioes"
    return f"the file looks {likely}: give --encoding {likely} (in training: --data.encoding {likely})"


def _read(source: str | Path, encoding: str, column: int, sep: str | None) -> Iterator[tuple[int, Example]]:
    """Yield ``(document_index, example)``."""
    enc = _check_encoding(encoding)
    name = "<stdin>" if str(source) == "-" else str(source)
    f = sys.stdin if str(source) == "-" else open(source, encoding="utf8")
    doc, in_doc, words, tags = 0, 0, [], []  # in_doc: sentences yielded in the current document
    try:
        for lineno, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            parts = line.split("\t") if "\t" in line else line.split()
            if not line.strip() or parts[0] == DOCSTART:
                if words:
                    yield doc, make_example(words, tags, enc, sep)
                    in_doc += 1
                words, tags = [], []
                if line.strip() and in_doc:  # a -DOCSTART- after sentences: next document
                    doc, in_doc = doc + 1, 0
                continue
            if len(parts) < 2 or not parts[0]:
                raise DataError(f"{name}:{lineno}: expected 'token ... tag', got {line!r}")
            try:
                tag = parts[column]
                prefix, _ = split_tag(tag)
                if prefix != "O" and prefix not in PREFIXES[enc]:
                    raise ValueError(f"prefix {prefix!r} is not valid in {enc}: {_encoding_hint(prefix)}")
            except (IndexError, ValueError) as err:
                raise DataError(f"{name}:{lineno}: bad tag column {column} in {line!r}: {err}") from None
            words.append(parts[0])
            tags.append(tag)
        if words:
            yield doc, make_example(words, tags, enc, sep)
    finally:
        if f is not sys.stdin:
            f.close()


def read_columns(
    source: str | Path, encoding: str = "iob1", column: int = -1, sep: str | None = None
) -> Iterator[Example]:
    """Stream the sentences of a column file (``-`` is stdin) as complete gold Examples."""
    for _, example in _read(source, encoding, column, sep):
        yield example


def read_documents(
    source: str | Path, encoding: str = "iob1", column: int = -1, sep: str | None = None
) -> list[list[Example]]:
    """The sentences of a column file grouped by ``-DOCSTART-`` document, in file order."""
    docs: list[list[Example]] = []
    last = None
    for doc, example in _read(source, encoding, column, sep):
        if doc != last:
            docs.append([])
            last = doc
        docs[-1].append(example)
    return docs


def write_columns(examples: Iterable[Example], path: str | Path, encoding: str = "iob2",
                  inputs: Iterable[str | Path] = ()) -> int:  # fmt: skip
    """Write complete examples as ``token tag`` lines, a blank line after each; return the count.

    ``path`` ``-`` is stdout; the file is written atomically and never over one of ``inputs``. Raises ValueError for a sparse example or a token containing whitespace.
    """
    enc = _check_encoding(encoding)
    n = 0
    with open_atomic(path, inputs) as f:  # a failure leaves an existing file as it was
        for i, ex in enumerate(examples):
            if not ex.complete:
                raise ValueError(
                    f"example {i} ({ex.text[:40]!r}) is sparse (complete=False): a column file needs a "
                    "tag for every token; keep it as JSONL or read it with complete=True"
                )
            tags = encode_spans(len(ex.tokens), [s.key for s in ex.accepted], enc)
            for tok, tag in zip(ex.tokens, tags):
                if not tok.text or any(c.isspace() for c in tok.text):
                    raise ValueError(f"example {i}: token {tok.text!r} is empty or contains whitespace")
                f.write(f"{tok.text} {tag}\n")
            f.write("\n")
            n += 1
    return n
