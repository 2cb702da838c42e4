"""The one JSONL reader and writer of the package.

- :func:`read_jsonl` streams ``(line_number, record)``: a UTF-8 BOM on the first line is accepted,
  blank lines are skipped, and a line that is not valid UTF-8 or not a JSON object raises
  :class:`DataError` naming the file and line (or, with ``on_error="skip"``, is counted as
  ``malformed_json``: never silently dropped).
- :func:`write_jsonl` (and every other writer, through :func:`open_atomic`) writes to a temporary file in the target folder and renames it over the
  target only when every record is written, so a failure never leaves an emptied or half-written
  file; it refuses to write over one of its own inputs.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Literal



class DataError(ValueError):
    """A malformed input file; the message names the file and line."""


def read_jsonl(source: str | Path, on_error: Literal["raise", "skip"] = "raise", stats: Any = None
               ) -> Iterator[tuple[int, dict]]:  # fmt: skip
    """Stream ``(line_number, record)`` from a JSONL file (``-`` is stdin), skipping blank lines.

    ``stats`` (a :class:`~sparse_ner.data.prodigy.ReadStats`) counts skipped lines as ``malformed_json``.
    """
    import srsly  # here, not at the top: command lines' --help imports this module

    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
    name = "<stdin>" if str(source) == "-" else str(source)
    if str(source) != "-" and Path(source).is_dir():
        raise DataError(f"{name} is a folder, not a JSONL file")
    if str(source) == "-":  # a text stream without a byte buffer (tests, notebooks) is read as text
        buffer = getattr(sys.stdin, "buffer", None)
        f: Any = None
        lines: Iterable[bytes] = buffer if buffer is not None else (line.encode("utf8") for line in sys.stdin)
    else:
        f = lines = open(source, "rb")
    try:
        for lineno, raw in enumerate(lines, start=1):
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # a UTF-8 byte order mark
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf8")
                record = srsly.json_loads(line)
                if not isinstance(record, dict):
                    raise ValueError(f"expected a JSON object, got {type(record).__name__}")
            except UnicodeDecodeError as err:
                if on_error == "raise":
                    raise DataError(f"{name}:{lineno}: not valid UTF-8 (byte {err.start}): re-encode the file as UTF-8") from None
                _count(stats)
                continue
            except ValueError as err:
                if on_error == "raise":
                    raise DataError(f"{name}:{lineno}: malformed JSON line: {err}") from None
                _count(stats)
                continue
            yield lineno, record
    finally:
        if f is not None:
            f.close()


def _count(stats: Any) -> None:
    if stats is not None:
        stats.counts["malformed_json"] += 1


@contextlib.contextmanager
def open_atomic(path: str | Path, inputs: Iterable[str | Path] = ()) -> Iterator[IO[str]]:
    """A text file to write ``path`` through (``-``: stdout): written to a temporary file in the
    target folder and renamed over ``path`` only when the ``with`` block ends without an error, so
    a failure never leaves an emptied or half-written file. Writing over one of ``inputs`` is refused."""
    if str(path) == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    target = Path(path)
    for other in inputs:
        if str(other) != "-" and Path(other).exists() and target.exists() and target.resolve() == Path(other).resolve():
            raise DataError(f"refusing to write {target} over its own input: give another output path")
    if target.is_dir():
        raise DataError(f"{target} is a folder: give a file path for the output")
    folder = target.parent if str(target.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf8") as out:
            yield out
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_jsonl(records: Iterable[dict], path: str | Path, inputs: Iterable[str | Path] = ()) -> int:
    """Write ``records`` as JSONL (``-``: stdout), UTF-8 unescaped, atomically (:func:`open_atomic`);
    return how many. ``inputs``: the files the records are read from (never written over)."""
    n = 0
    with open_atomic(path, inputs) as out:
        for n, record in enumerate(records, 1):
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return n


__all__ = ["DataError", "open_atomic", "read_jsonl", "write_jsonl"]
