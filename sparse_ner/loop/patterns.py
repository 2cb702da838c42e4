"""Match patterns (Prodigy / spaCy ``patterns.jsonl``) over pre-tokenized texts, for a cold start.

Each line of a patterns file is ``{"label": "ORG", "pattern": ...}`` with an optional ``"id"``:

- a string pattern is an exact phrase (case-sensitive, like Prodigy's default): it is tokenized both
  by spaCy's English tokenizer and by :func:`sparse_ner.data.tokenize.tokenize`, so it matches texts
  tokenized either way (CoNLL's ``U.S.`` is one token for spaCy, four for ours);
- a list pattern is a spaCy ``Matcher`` token pattern, e.g. ``[{"lower": "apple"}]`` or
  ``[{"IS_TITLE": true}, {"LOWER": "corp"}]``. Attributes that need a trained pipeline (``POS``,
  ``TAG``, ``LEMMA``, ``DEP``, ``ENT_TYPE``, ...) are refused when the file is read: matching runs
  on ``spacy.blank`` tokens.

Matching uses spaCy's ``Matcher`` / ``PhraseMatcher`` on a ``Doc`` built from the text's own
tokens, so match offsets are the tokens the tagger sees. Needs ``pip install spacy`` (the
``online`` extra); no spaCy model is downloaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, NamedTuple, Sequence

from sparse_ner.data.io import DataError
from sparse_ner.data.tokenize import tokenize

# token attributes whose values only a trained pipeline sets
NEEDS_PIPELINE = frozenset({"POS", "TAG", "MORPH", "LEMMA", "DEP", "ENT_TYPE", "ENT_IOB", "ENT_ID",
                            "ENT_KB_ID", "SENT_START", "IS_SENT_START", "HEAD"})  # fmt: skip


@dataclass(frozen=True)
class Pattern:
    """One line of a patterns file; ``id`` is the line's ``"id"`` or its 1-based line number."""

    id: str
    label: str
    pattern: str | list[dict[str, Any]]


class Match(NamedTuple):
    """A pattern match in a text: token offsets (``end`` inclusive), label, pattern id."""

    start: int
    end: int
    label: str
    pattern: str


def _check(obj: Any, where: str, labels: set[str] | None) -> Pattern:
    if not isinstance(obj, dict) or not isinstance(obj.get("label"), str) or "pattern" not in obj:
        raise DataError(f"{where}: expected an object with 'label' and 'pattern'")
    label, pattern = obj["label"], obj["pattern"]
    if labels is not None and label not in labels:
        raise DataError(f"{where}: label {label!r} is not one of {sorted(labels)}")
    if isinstance(pattern, str):
        if not pattern.strip():
            raise DataError(f"{where}: empty phrase pattern")
    elif isinstance(pattern, list) and pattern and all(isinstance(t, dict) for t in pattern):
        for token in pattern:
            bad = sorted(k for k in token if k.upper() in NEEDS_PIPELINE)
            if bad:
                raise DataError(f"{where}: attribute(s) {bad} need a trained spaCy pipeline; "
                                "patterns are matched on blank tokens")  # fmt: skip
    else:
        raise DataError(f"{where}: 'pattern' must be a phrase string or a non-empty list of token dicts")
    return Pattern(str(obj.get("id", where.rsplit(":", 1)[-1])), label, pattern)


def read_patterns(path: str | Path, labels: Sequence[str] | None = None) -> list[Pattern]:
    """Read a patterns JSONL file; a bad line raises :class:`DataError` naming file and line."""
    label_set = set(labels) if labels is not None else None
    out = []
    with open(path, encoding="utf8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as err:
                raise DataError(f"{path}:{lineno}: malformed JSON line: {err}") from None
            out.append(_check(obj, f"{path}:{lineno}", label_set))
    return out


def as_patterns(items: Iterable[Pattern | dict], labels: Sequence[str] | None = None) -> list[Pattern]:
    """Pattern objects from patterns or pattern dicts (ids default to the 1-based position)."""
    label_set = set(labels) if labels is not None else None
    return [p if isinstance(p, Pattern) else _check(p, f"<patterns>:{i}", label_set)
            for i, p in enumerate(items, start=1)]  # fmt: skip


class PatternMatcher:
    """spaCy ``Matcher`` + ``PhraseMatcher`` over word lists: ``matcher(words) -> [Match, ...]``.

    Matches are unique per ``(start, end, label)`` (the first pattern in file order names it) and
    sorted by position; overlapping matches are all kept, each is its own question.
    """

    def __init__(self, patterns: Iterable[Pattern | dict], labels: Sequence[str] | None = None):
        try:
            import spacy
            from spacy.matcher import Matcher, PhraseMatcher
        except ImportError as err:  # pragma: no cover - exercised only without spaCy
            raise ImportError("match patterns need spaCy: pip install 'sparse-ner[online]'") from err
        self.patterns = as_patterns(patterns, labels)
        self.nlp = spacy.blank("en")
        self.by_id = {p.id: p for p in self.patterns}
        if len(self.by_id) != len(self.patterns):
            raise ValueError("duplicate pattern ids")
        self._order = {p.id: i for i, p in enumerate(self.patterns)}
        self._token = Matcher(self.nlp.vocab, validate=True)
        self._phrase = PhraseMatcher(self.nlp.vocab, attr="ORTH")
        from spacy.tokens import Doc

        for p in self.patterns:
            if isinstance(p.pattern, str):
                variants = {tuple(t.text for t in self.nlp.make_doc(p.pattern)),
                            tuple(t.text for t in tokenize(p.pattern))}  # fmt: skip
                self._phrase.add(p.id, [Doc(self.nlp.vocab, words=list(v)) for v in sorted(variants)])
            else:
                self._token.add(p.id, [p.pattern])

    def __len__(self) -> int:
        return len(self.patterns)

    def __call__(self, words: Sequence[str]) -> list[Match]:
        from spacy.tokens import Doc

        if not words:
            return []
        doc = Doc(self.nlp.vocab, words=list(words))
        strings = self.nlp.vocab.strings
        found: dict[tuple[int, int, str], str] = {}
        raw = [*(self._token(doc) if len(self._token) else []), *(self._phrase(doc) if len(self._phrase) else [])]
        hits = sorted(((strings[k], s, e) for k, s, e in raw),
                      key=lambda h: (self._order[h[0]], h[1], h[2]))  # fmt: skip
        for pid, s, e in hits:
            found.setdefault((s, e - 1, self.by_id[pid].label), pid)
        return [Match(s, e, label, pid) for (s, e, label), pid in sorted(found.items())]

    def to_jsonl(self) -> str:
        """The patterns as JSONL lines (with their ids), to save next to a model."""
        lines = [json.dumps({"id": p.id, "label": p.label, "pattern": p.pattern}, ensure_ascii=False)
                 for p in self.patterns]  # fmt: skip
        return "".join(line + "\n" for line in lines)


__all__ = ["Match", "Pattern", "PatternMatcher", "as_patterns", "read_patterns"]
