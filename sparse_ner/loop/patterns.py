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
tokens, so match offsets are the tokens the tagger sees. A token pattern that is a plain phrase
(every token ``{"lower": word}``, or every token ``{"orth": word}``: what Prodigy's
``terms.to-patterns`` writes) runs on a ``PhraseMatcher`` instead, with the same matches (2,000 such
patterns: 0.04 ms per CoNLL sentence instead of 3 ms; ``scripts/bench_patterns.py``), and a text
holding none of the words that some pattern's match must contain (:func:`key_words`) is not matched
at all. Needs ``pip install spacy`` (the ``online`` extra); no spaCy model is downloaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, NamedTuple, Sequence

from sparse_ner.data.columns import make_example
from sparse_ner.data.example import Example
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


class KeyWords(NamedTuple):
    """Words one of which every match needs: for each pattern, one word its match must contain, exact
    (``ORTH`` / ``TEXT``, phrase patterns) or lower-cased (``LOWER``). A text with none of them has no
    match, so it is not matched at all."""

    exact: frozenset[str]
    lower: frozenset[str]

    def could_match(self, words: Sequence[str]) -> bool:
        return not self.exact.isdisjoint(words) or not self.lower.isdisjoint(w.lower() for w in words)


def as_phrase(pattern: list[dict[str, Any]]) -> tuple[str, list[str]] | None:
    """A token pattern that is a plain phrase, as ``(attr, words)``: every token ``{"ORTH": word}``
    (or ``TEXT``), or every token ``{"LOWER": word}`` with ``word`` in lower case (an upper-case
    ``LOWER`` value never matches in spaCy, so that pattern is left to the ``Matcher``); else None."""
    keys = {k.upper() for token in pattern for k in token}
    values = [v for token in pattern for v in token.values()]
    if any(len(token) != 1 for token in pattern) or not all(isinstance(v, str) and v for v in values):
        return None
    if keys <= {"ORTH", "TEXT"}:
        return "ORTH", values
    if keys == {"LOWER"} and all(v == v.lower() for v in values):
        return "LOWER", values
    return None


def phrase_variants(phrase: str, nlp: Any) -> list[list[str]]:
    """The words of a phrase pattern as spaCy's tokenizer and as :func:`tokenize` split it (each once)."""
    variants = {tuple(t.text for t in nlp.make_doc(phrase)), tuple(t.text for t in tokenize(phrase))}
    return [list(v) for v in sorted(variants)]


def _pinned(token: dict[str, Any]) -> tuple[str, list[str]] | None:
    """``("exact" | "lower", words)`` when a token pattern must match one of ``words``: it occurs at
    least once (no ``OP``, or ``+``) and its ``ORTH`` / ``TEXT`` / ``LOWER`` is a word or ``{"IN": [...]}``."""
    token = {k.upper(): v for k, v in token.items()}
    if token.get("OP", "+") != "+":  # ?, *, !, {n,m}: the token may be absent
        return None
    for key, kind in (("ORTH", "exact"), ("TEXT", "exact"), ("LOWER", "lower")):
        value = token.get(key)
        if isinstance(value, dict):  # {"IN": [...]}; any other predicate does not pin the word
            value = {k.upper(): v for k, v in value.items()}.get("IN") if len(value) == 1 else None
        words = [value] if isinstance(value, str) else value
        if isinstance(words, list) and words and all(isinstance(w, str) for w in words):
            return kind, words
    return None


def key_words(patterns: Sequence[Pattern], nlp: Any) -> KeyWords | None:
    """:class:`KeyWords` of ``patterns`` (a phrase's first word; a token pattern's first token that
    must occur and is pinned to words, wherever it stands), or None where some token pattern has no
    such token (e.g. only ``IS_TITLE``, ``REGEX`` or optional tokens): then every text is matched."""
    exact: set[str] = set()
    lower: set[str] = set()
    for p in patterns:
        if isinstance(p.pattern, str):
            exact.update(words[0] for words in phrase_variants(p.pattern, nlp) if words)
            continue
        pinned = next((found for token in p.pattern if (found := _pinned(token)) is not None), None)
        if pinned is None:
            return None
        kind, words = pinned
        (exact if kind == "exact" else lower).update(words)
    return KeyWords(frozenset(exact), frozenset(lower))


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
        self._lower = PhraseMatcher(self.nlp.vocab, attr="LOWER")  # token patterns of LOWER words only
        from spacy.tokens import Doc

        for p in self.patterns:
            if isinstance(p.pattern, str):
                self._phrase.add(p.id, [Doc(self.nlp.vocab, words=v) for v in phrase_variants(p.pattern, self.nlp)])
            elif (phrase := as_phrase(p.pattern)) is not None:  # the same matches, far faster than Matcher
                attr, words = phrase
                into = self._phrase if attr == "ORTH" else self._lower
                into.add(p.id, [Doc(self.nlp.vocab, words=words)])
            else:
                self._token.add(p.id, [p.pattern])
        self._keys = key_words(self.patterns, self.nlp)

    def __len__(self) -> int:
        return len(self.patterns)

    def __call__(self, words: Sequence[str]) -> list[Match]:
        from spacy.tokens import Doc

        if not words or self._keys is not None and not self._keys.could_match(words):
            return []
        doc = Doc(self.nlp.vocab, words=list(words))
        strings = self.nlp.vocab.strings
        found: dict[tuple[int, int, str], str] = {}
        raw = [m for matcher in (self._token, self._phrase, self._lower) if len(matcher) for m in matcher(doc)]
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


def match_examples(matcher: PatternMatcher, texts: Iterable[Sequence[str]]) -> list[Example]:
    """The texts (word lists) that ``matcher`` matches, each as a partial :class:`Example` whose accepted
    spans are its matches (where matches overlap, the longest, then the first; the other words unannotated):
    the patterns' guesses as binary accepts, for :meth:`~sparse_ner.loop.online.OnlineTagger.warm_start`."""
    out = []
    for words in texts:
        words = list(words)
        kept: list[Match] = []
        for m in sorted(matcher(words), key=lambda m: (m.start - m.end, m.start)):  # longest first
            if all(m.end < k.start or m.start > k.end for k in kept):
                kept.append(m)
        if not kept:
            continue
        tags = ["O"] * len(words)
        for m in kept:
            tags[m.start : m.end + 1] = [f"B-{m.label}"] + [f"I-{m.label}"] * (m.end - m.start)
        out.append(replace(make_example(words, tags, "bio"), complete=False))  # only the matches are known
    return out


__all__ = ["KeyWords", "Match", "Pattern", "PatternMatcher", "as_patterns", "as_phrase", "key_words", "match_examples",
           "phrase_variants", "read_patterns"]
